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

import dataclasses
import json
import os
import secrets
from pathlib import Path

import pytest

from tests.terraform.harness import Terraform
from tests.terraform.stub_aws_provider import ACCOUNT_STATE_ENV, AccountStore

pytestmark = pytest.mark.skipif(
    os.environ.get("TF_PLAN_TESTS_REAL_PROVIDER", "") not in ("", "0", "false"),
    reason="these tests write into the stand-in's simulated account, which the real provider "
    "doesn't read",
)

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
