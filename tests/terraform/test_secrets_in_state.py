"""No secret in Terraform state or plan, ever, even after a refresh.

The real provider reads an aws_ssm_parameter's value back into state on every refresh
(GetParameter WithDecryption), unless it was written write-only. So a parameter Terraform
creates with a placeholder, and tools/peer_keys.py later fills, would put the SecretKey into
terraform.tfstate at the next refresh. The stand-in models that against a simulated account
(STUB_AWS_ACCOUNT_STATE); these tests prove it does, with the old form of the peer-key
parameters as the control, then show that the environments, which no longer manage the
parameters at all, keep every secret out of state, and that a deployment which applied the
old form forgets the parameters on upgrade without deleting them.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import secrets
import shutil
import string
from pathlib import Path

import pytest

from tests.terraform.harness import REPO, Terraform, repository_copy
from tests.terraform.stub_aws_provider import ACCOUNT_STATE_ENV, AccountStore

pytestmark = pytest.mark.skipif(
    os.environ.get("TF_PLAN_TESTS_REAL_PROVIDER", "") not in ("", "0", "false"),
    reason="these tests write into the stand-in's simulated account, which the real provider "
    "doesn't read",
)

DEFAULTS = json.loads((REPO / "defaults.json").read_text())
ENVS = ("cn-north-1", "ap-southeast-1")
PLACEHOLDER = "unset: run tools/peer_keys.py"
PARAMETER = "/DDBReplication/TableSG/SecretKey"

CONTROL = """
terraform {
  required_version = ">= 1.11"
  required_providers {
    aws = {
      source = "hashicorp/aws"
    }
  }
}

provider "aws" {
  region = "cn-north-1"
}

%(parameter)s
"""

# What modules/replication_node created before: a placeholder, its value then ignored.
OLD_FORM = """
resource "aws_ssm_parameter" "secret" {
  name   = "%(name)s"
  type   = "SecureString"
  value  = "%(placeholder)s"

  lifecycle {
    ignore_changes = [value]
  }
}
"""

# The write-only form (provider 6.x, Terraform 1.11): the value is sent, never stored. The
# ephemeral variable can only be given to a write-only argument, so Terraform accepting it
# proves the stand-in serves value_wo as write-only.
WRITE_ONLY_FORM = """
variable "initial_value" {
  type      = string
  ephemeral = true
}

resource "aws_ssm_parameter" "secret" {
  name             = "%(name)s"
  type             = "SecureString"
  value_wo         = var.initial_value
  value_wo_version = 1
}
"""


def with_account(terraform: Terraform, store: Path) -> Terraform:
    """The same Terraform, its stand-in keeping Parameter Store in `store`."""
    return dataclasses.replace(terraform, env={**terraform.env, ACCOUNT_STATE_ENV: str(store)})


def run(terraform: Terraform, directory: Path, *args: str) -> str:
    result = terraform.run(*args, "-no-color", cwd=directory)
    assert result.returncode == 0, f"terraform {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result.stdout


def secret() -> str:
    """A secret access key no configuration could hold by chance."""
    return secrets.token_urlsafe(30)


def control(tmp_path: Path, form: str) -> Path:
    root = tmp_path / "control"
    root.mkdir()
    parameter = form % {"name": PARAMETER, "placeholder": PLACEHOLDER}
    (root / "main.tf").write_text(CONTROL % {"parameter": parameter})
    return root


def everything_terraform_keeps(terraform: Terraform, directory: Path) -> str:
    """The state file and `terraform show -json` of it, which prints sensitive values."""
    shown = run(terraform, directory, "show", "-json")
    return (directory / "terraform.tfstate").read_text() + shown


# ------------------------------------------------------------------------------- the control


def test_the_old_form_carries_an_out_of_band_secret_into_state(terraform, tmp_path):
    """Proves the stand-in models the provider's read-back: the placeholder form, refreshed
    after the key was stored out of band, holds the secret in state."""
    store = tmp_path / "account.json"
    tf = with_account(terraform, store)
    root = control(tmp_path, OLD_FORM)
    run(tf, root, "init")
    run(tf, root, "apply", "-auto-approve")
    account = AccountStore(store)
    assert account.parameter("cn-north-1", PARAMETER)["value"] == PLACEHOLDER

    key = secret()
    account.put_parameter("cn-north-1", PARAMETER, key)  # as tools/peer_keys.py does
    run(tf, root, "apply", "-refresh-only", "-auto-approve")

    assert key in (root / "terraform.tfstate").read_text()
    assert key in everything_terraform_keeps(tf, root)
    # ignore_changes only stops Terraform writing the placeholder back: nothing to do.
    result = tf.run("plan", "-detailed-exitcode", "-no-color", cwd=root)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_write_only_form_keeps_the_secret_out_of_state(terraform, tmp_path):
    store = tmp_path / "account.json"
    tf = with_account(terraform, store)
    root = control(tmp_path, WRITE_ONLY_FORM)
    first = secret()
    run(tf, root, "init")
    run(tf, root, "apply", "-auto-approve", f"-var=initial_value={first}")
    account = AccountStore(store)
    assert account.parameter("cn-north-1", PARAMETER)["value"] == first

    key = secret()
    account.put_parameter("cn-north-1", PARAMETER, key)
    run(tf, root, "apply", "-refresh-only", "-auto-approve", f"-var=initial_value={first}")

    kept = everything_terraform_keeps(tf, root)
    assert first not in kept
    assert key not in kept
    [resource] = json.loads((root / "terraform.tfstate").read_text())["resources"]
    [instance] = resource["instances"]
    assert instance["attributes"]["value"] is None
    assert instance["attributes"]["value_wo"] is None
    assert instance["attributes"]["has_value_wo"] is True
    assert instance["attributes"]["version"] == 2  # the refresh saw the out-of-band write


def test_a_parameter_gone_from_the_account_leaves_the_state(terraform, tmp_path):
    store = tmp_path / "account.json"
    tf = with_account(terraform, store)
    root = control(tmp_path, OLD_FORM)
    run(tf, root, "init")
    run(tf, root, "apply", "-auto-approve")
    AccountStore(store).delete_parameter("cn-north-1", PARAMETER)
    run(tf, root, "apply", "-refresh-only", "-auto-approve")
    assert json.loads((root / "terraform.tfstate").read_text())["resources"] == []


def test_a_parameter_needs_exactly_one_value(terraform, tmp_path):
    root = control(tmp_path, OLD_FORM.replace("value  =", 'insecure_value = "x"\n  value  ='))
    run(terraform, root, "init")
    result = terraform.run("validate", "-no-color", cwd=root)
    assert result.returncode != 0
    assert "one of `insecure_value,value,value_wo` must be specified" in result.stderr


# ------------------------------------------------------------------------------- the environments


@pytest.fixture(scope="module")
def repository(tmp_path_factory) -> Path:
    return repository_copy(tmp_path_factory.mktemp("secrets") / "repository")


def environment(repository: Path, tmp_path: Path, name: str) -> Path:
    """A copy of the repository one test may apply and change: the environment's directory."""
    return shutil.copytree(repository, tmp_path / "repository") / "envs" / name


def store_the_keys(account: AccountStore, region: str) -> list[str]:
    """What an operator stores out of band in `region`, as tools/peer_keys.py and the signing
    key tool do: the peer writer's key pair and the signing key ring. The secrets, returned."""
    prefix = DEFAULTS["regions"][region]["peer_credentials_prefix"]
    access_key_id = "AKIA" + "".join(secrets.choice(string.ascii_uppercase) for _ in range(16))
    secret_key = secret()
    signing_key = base64.b64encode(secrets.token_bytes(32)).decode()
    ring = json.dumps({"current": "k1", "keys": {"k1": signing_key}})
    account.put_parameter(
        region, f"{prefix}AccessKey", access_key_id, key_id="alias/ddb-replication"
    )
    account.put_parameter(region, f"{prefix}SecretKey", secret_key, key_id="alias/ddb-replication")
    account.put_parameter(
        region, DEFAULTS["signing_keys_parameter"], ring, key_id="alias/ddb-replication"
    )
    return [access_key_id, secret_key, signing_key]


def managed_types(directory: Path) -> set[str]:
    state = json.loads((directory / "terraform.tfstate").read_text())
    return {r["type"] for r in state["resources"] if r["mode"] == "managed"}


@pytest.mark.parametrize("name", ENVS)
def test_an_environment_keeps_the_keys_out_of_state_and_plan(terraform, repository, tmp_path, name):
    store = tmp_path / "account.json"
    tf = with_account(terraform, store)
    directory = environment(repository, tmp_path, name)
    run(tf, directory, "init")
    run(tf, directory, "apply", "-auto-approve")
    kept_secrets = store_the_keys(AccountStore(store), name)

    run(tf, directory, "apply", "-refresh-only", "-auto-approve")
    run(tf, directory, "plan", "-out=tfplan")
    kept = everything_terraform_keeps(tf, directory) + run(tf, directory, "show", "-json", "tfplan")

    for value in kept_secrets:
        assert value not in kept
    assert "aws_ssm_parameter" not in managed_types(directory)
    # The outputs still name the parameters, for the tools.
    outputs = json.loads(run(tf, directory, "output", "-json"))
    prefix = DEFAULTS["regions"][name]["peer_credentials_prefix"]
    assert outputs["peer_credentials_parameters"]["value"] == {
        "AccessKey": f"{prefix}AccessKey",
        "SecretKey": f"{prefix}SecretKey",
    }


# What modules/replication_node/peer_writer.tf declared before the tools owned every secret.
OLD_PEER_KEYS = """
resource "aws_ssm_parameter" "peer_keys" {
  for_each = toset(["AccessKey", "SecretKey"])

  name        = "${var.peer_credentials_prefix}${each.key}"
  description = "${each.key} of the ${var.peer_region} writer user; set with tools/peer_keys.py"
  type        = "SecureString"
  key_id      = aws_kms_key.node.arn
  value       = "unset: run tools/peer_keys.py"

  lifecycle {
    ignore_changes = [value]
  }
}
"""


def test_upgrading_forgets_the_old_parameters_without_deleting_them(
    terraform, repository, tmp_path
):
    name = "cn-north-1"
    store = tmp_path / "account.json"
    tf = with_account(terraform, store)
    directory = environment(repository, tmp_path, name)
    module = directory.parent.parent / "modules" / "replication_node"
    upgrades = module / "upgrades.tf"
    current = upgrades.read_text()

    # A deployment of the older release: the module created the parameters.
    upgrades.unlink()
    (module / "old_peer_keys.tf").write_text(OLD_PEER_KEYS)
    run(tf, directory, "init")
    run(tf, directory, "apply", "-auto-approve")
    account = AccountStore(store)
    kept_secrets = store_the_keys(account, name)
    run(tf, directory, "apply", "-refresh-only", "-auto-approve")
    assert kept_secrets[1] in (directory / "terraform.tfstate").read_text()  # the leak
    prefix = DEFAULTS["regions"][name]["peer_credentials_prefix"]
    before = {
        part: account.parameter(name, f"{prefix}{part}") for part in ("AccessKey", "SecretKey")
    }

    # The upgrade.
    (module / "old_peer_keys.tf").unlink()
    upgrades.write_text(current)
    output = run(tf, directory, "apply", "-auto-approve")

    assert "will no longer be managed by Terraform" in output
    assert "0 destroyed" in output
    assert "aws_ssm_parameter" not in managed_types(directory)
    kept = everything_terraform_keeps(tf, directory)
    for value in kept_secrets:
        assert value not in kept
    # Still in the account, untouched: the sender keeps working.
    after = {
        part: account.parameter(name, f"{prefix}{part}") for part in ("AccessKey", "SecretKey")
    }
    assert after == before
    assert after["SecretKey"]["value"] == kept_secrets[1]
    # The state Terraform kept from before the upgrade still holds the secret, which is why the
    # README has the key rotated and old state versions purged.
    assert kept_secrets[1] in (directory / "terraform.tfstate.backup").read_text()
