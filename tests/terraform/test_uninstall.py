"""The uninstall of docs/uninstalling.md, on the stand-in: a region applied with its defaults,
then `terraform state rm` of the application tables and the node's key, then a destroy plan.
The plan must delete the rest and neither of those; without the key's removal Terraform refuses
the whole destroy (prevent_destroy)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.terraform.harness import Terraform

# The addresses docs/uninstalling.md names, for cn-north-1's default table.
TABLE = 'module.node.aws_dynamodb_table.replicated["user-cn"]'
TABLES = "module.node.aws_dynamodb_table.replicated"
KEY = "module.node.aws_kms_key.node"
BOOKKEEPING = {
    'module.node.aws_dynamodb_table.bookkeeping["stats"]',
    'module.node.aws_dynamodb_table.bookkeeping["tombstones"]',
}


def run(terraform: Terraform, directory: Path, *args: str) -> str:
    result = terraform.run(*args, "-no-color", cwd=directory)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def applied(terraform: Terraform, repository: Path, tmp_path_factory) -> Path:
    """envs/cn-north-1 applied with its defaults, in a copy of its own."""
    copy = shutil.copytree(repository, tmp_path_factory.mktemp("uninstall") / "repository")
    directory = copy / "envs" / "cn-north-1"
    run(terraform, directory, "init")
    run(terraform, directory, "apply", "-auto-approve")
    return directory


@pytest.fixture
def deployed(applied: Path, tmp_path) -> Path:
    """A copy of the applied environment (its state included) that one test may change."""
    copy = shutil.copytree(applied.parent.parent, tmp_path / "repository", symlinks=True)
    return copy / "envs" / "cn-north-1"


def destroy_plan(terraform: Terraform, directory: Path) -> dict[str, list[str]]:
    """Address -> actions of `terraform plan -destroy`, for every resource it would change."""
    run(terraform, directory, "plan", "-destroy", "-out=destroy.tfplan")
    shown = json.loads(run(terraform, directory, "show", "-json", "destroy.tfplan"))
    return {
        change["address"]: change["change"]["actions"]
        for change in shown.get("resource_changes", [])
        if change["change"]["actions"] != ["no-op"]
    }


def test_destroy_is_refused_while_terraform_manages_the_key(terraform, deployed):
    result = terraform.run("plan", "-destroy", "-no-color", cwd=deployed)
    assert result.returncode != 0
    message = " ".join(result.stderr.replace("│", " ").split())
    assert "Instance cannot be destroyed" in message
    assert "aws_kms_key.node" in message


def test_the_documented_addresses_are_in_the_state(terraform, deployed):
    listed = run(terraform, deployed, "state", "list").split()
    assert TABLE in listed and KEY in listed and set(listed) >= BOOKKEEPING


@pytest.mark.parametrize("address", [TABLE, TABLES], ids=["one table", "every table"])
def test_state_rm_keeps_the_tables_and_the_key_out_of_the_destroy(terraform, deployed, address):
    run(terraform, deployed, "state", "rm", address, KEY)
    listed = run(terraform, deployed, "state", "list").split()
    assert TABLE not in listed and KEY not in listed

    planned = destroy_plan(terraform, deployed)
    assert TABLE not in planned
    assert KEY not in planned
    assert not [a for a in planned if a.startswith(TABLES)]
    # Everything else goes: the bookkeeping tables, the functions, the stream, the alias.
    for address in (
        *BOOKKEEPING,
        'module.node.aws_lambda_function.function["sender"]',
        "module.node.aws_kinesis_stream.replication",
        "module.node.aws_kms_alias.node",
        "module.node.aws_iam_user.peer_writer",
        'module.node.aws_lambda_event_source_mapping.stream["sender/user-cn"]',
    ):
        assert planned.get(address) == ["delete"], address
    assert all(actions == ["delete"] for actions in planned.values())
