"""modules/proxy_host planned offline: squid allows only what the design needs."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest
import tftest

from tests.terraform.harness import REPO, Terraform, copy_configuration
from tests.terraform.inventory import planned_outputs, planned_resources
from tests.terraform.stub_aws_provider import ACCOUNT_STATE_ENV, AMI_ID, AccountStore

ROOT = """
provider "aws" {
  region = "%(region)s"
}

module "proxy" {
  source               = "../modules/proxy_host"
  vpc_id               = "vpc-0123456789abcdef0"
  subnet_id            = "subnet-0123456789abcdef0"
  allowed_source_cidrs = ["52.1.2.3/32", "52.4.5.6/32"]
  kinesis_region       = "%(region)s"
  kms_key_arn          = "arn:%(partition)s:kms:%(region)s:123456789012:key/example"
  port                 = %(port)s
  alarm_actions        = ["arn:%(partition)s:sns:%(region)s:123456789012:ddb-replication-alarms"]
  %(extra)s
}

output "squid_config" {
  value = module.proxy.squid_config
}

output "user_data" {
  value = module.proxy.user_data
}
"""
AL2023 = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
PARTITIONS = {
    "cn-north-1": ("aws-cn", "amazonaws.com.cn"),
    "ap-southeast-1": ("aws", "amazonaws.com"),
}


def root_configuration(tmp_path: Path, region: str, port: int = 3128, extra: str = "") -> Path:
    if not (tmp_path / "modules").exists():
        copy_configuration(REPO / "modules", tmp_path / "modules")
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    values = {"region": region, "partition": PARTITIONS[region][0], "port": port, "extra": extra}
    (root / "main.tf").write_text(ROOT % values)
    return root


def plan(terraform: Terraform, tmp_path: Path, region: str, port: int = 3128, extra: str = ""):
    tf = terraform.test(root_configuration(tmp_path, region, port, extra))
    tf.setup()
    return tf.plan(output=True)


@pytest.mark.parametrize("region", PARTITIONS)
def test_squid_tunnels_only_to_this_regions_kinesis_from_the_peer(terraform, tmp_path, region):
    config = planned_outputs(plan(terraform, tmp_path, region))["squid_config"]
    rules = [line for line in config.splitlines() if line.startswith("http_access")]

    assert f"acl kinesis dstdomain kinesis.{region}.{PARTITIONS[region][1]}" in config
    assert "acl peer_senders src 52.1.2.3/32 52.4.5.6/32" in config
    assert "http_port 3128" in config
    assert rules == [
        "http_access deny instance_metadata",
        "http_access deny !CONNECT",
        "http_access deny !tls_port",
        "http_access allow peer_senders kinesis",
        "http_access deny all",
    ]
    assert "acl instance_metadata dst 169.254.169.254" in config


@pytest.mark.parametrize("region", PARTITIONS)
def test_no_ssh_imdsv2_encrypted_and_only_the_peer_can_connect(terraform, tmp_path, region):
    resources = planned_resources(plan(terraform, tmp_path, region))
    instance = resources["module.proxy.aws_instance.proxy"]
    assert instance["metadata_options"][0]["http_tokens"] == "required"
    assert instance["root_block_device"][0]["encrypted"] is True
    assert instance.get("key_name") in (None, "")

    ingress = [v for a, v in resources.items() if "aws_vpc_security_group_ingress_rule" in a]
    assert sorted(rule["cidr_ipv4"] for rule in ingress) == ["52.1.2.3/32", "52.4.5.6/32"]
    assert {(rule["from_port"], rule["to_port"]) for rule in ingress} == {(3128, 3128)}

    attachment = resources["module.proxy.aws_iam_role_policy_attachment.session_manager"]
    partition = PARTITIONS[region][0]
    assert (
        attachment["policy_arn"] == f"arn:{partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
    )


def test_a_public_web_port_is_refused(terraform, tmp_path):
    with pytest.raises(tftest.TerraformTestError, match="Use a port other than 80 and 443"):
        plan(terraform, tmp_path, "cn-north-1", port=80)


@pytest.mark.parametrize("cidr", ["0.0.0.0/0", "::/0"])
def test_a_proxy_open_to_everyone_is_refused(terraform, tmp_path, cidr):
    extra = f'allowed_source_cidrs = ["52.1.2.3/32", "{cidr}"]'
    root = root_configuration(tmp_path, "cn-north-1")
    (root / "main.tf").write_text(
        (root / "main.tf")
        .read_text()
        .replace('allowed_source_cidrs = ["52.1.2.3/32", "52.4.5.6/32"]', extra)
    )
    tf = terraform.test(root)
    tf.setup()
    with pytest.raises(tftest.TerraformTestError) as refused:
        tf.plan(output=True)
    message = " ".join(str(refused.value).replace("│", " ").split())
    assert "allowed_source_cidrs must not include 0.0.0.0/0 or ::/0" in message


@pytest.mark.parametrize("region", PARTITIONS)
def test_security_updates_install_themselves(terraform, tmp_path, region):
    user_data = planned_outputs(plan(terraform, tmp_path, region))["user_data"]
    lines = [line.strip() for line in user_data.splitlines()]
    # AL2023's repositories are locked to the AMI's release unless told to follow the latest.
    assert "echo latest > /etc/dnf/vars/releasever" in lines
    assert "dnf install -y squid dnf-automatic" in lines
    assert "upgrade_type = security" in lines
    assert "apply_updates = yes" in lines
    assert "systemctl enable --now dnf-automatic.timer" in lines
    assert lines.index("echo latest > /etc/dnf/vars/releasever") < lines.index(
        "dnf install -y squid dnf-automatic"
    )


@pytest.mark.parametrize("region", PARTITIONS)
def test_the_instance_recovers_from_a_failed_host(terraform, tmp_path, region):
    partition = PARTITIONS[region][0]
    resources = planned_resources(plan(terraform, tmp_path, region))
    instance = resources["module.proxy.aws_instance.proxy"]
    assert instance["maintenance_options"] == [{"auto_recovery": "default"}]
    alarm = resources["module.proxy.aws_cloudwatch_metric_alarm.recover"]
    assert (alarm["namespace"], alarm["metric_name"]) == ("AWS/EC2", "StatusCheckFailed_System")
    assert (alarm["statistic"], alarm["period"], alarm["evaluation_periods"]) == ("Maximum", 60, 2)
    assert (alarm["comparison_operator"], alarm["threshold"]) == ("GreaterThanThreshold", 0)
    topic = f"arn:{partition}:sns:{region}:123456789012:ddb-replication-alarms"
    assert alarm["alarm_actions"] == [f"arn:{partition}:automate:{region}:ec2:recover", topic]
    assert alarm["ok_actions"] == [topic]


@pytest.mark.skipif(
    os.environ.get("TF_PLAN_TESTS_REAL_PROVIDER", "") not in ("", "0", "false"),
    reason="publishes an AMI in the stand-in's simulated account",
)
def test_a_new_ami_never_replaces_the_proxy_but_pinning_one_does(terraform, tmp_path):
    store = tmp_path / "account.json"
    tf = dataclasses.replace(terraform, env={**terraform.env, ACCOUNT_STATE_ENV: str(store)})
    root = root_configuration(tmp_path, "cn-north-1")

    def run(*args: str):
        result = tf.run(*args, "-no-color", cwd=root)
        assert result.returncode in (0, 2), result.stdout + result.stderr
        return result

    run("init")
    run("apply", "-auto-approve")
    shown = json.loads(run("show", "-json").stdout)["values"]["root_module"]["child_modules"]
    [instance] = [r for r in shown[0]["resources"] if r["type"] == "aws_instance"]
    assert instance["values"]["ami"] == AMI_ID

    # Amazon publishes a newer image under the same public parameter: a routine plan is empty.
    AccountStore(store).put_parameter("cn-north-1", AL2023, "ami-0fedcba9876543210", "String")
    routine = run("plan", "-detailed-exitcode")
    assert routine.returncode == 0, routine.stdout

    # Pinning an image is the deliberate roll: the instance is replaced with it.
    root_configuration(tmp_path, "cn-north-1", extra='ami_id = "ami-0a1b2c3d4e5f60789"')
    run("plan", "-out=tfplan")
    planned = json.loads(run("show", "-json", "tfplan").stdout)
    [change] = [
        c for c in planned["resource_changes"] if c["address"] == "module.proxy.aws_instance.proxy"
    ]
    assert change["change"]["actions"] == ["delete", "create"]
    assert change["action_reason"] == "replace_by_triggers"
    assert change["change"]["after"]["ami"] == "ami-0a1b2c3d4e5f60789"


def test_an_ami_id_must_look_like_one(terraform, tmp_path):
    with pytest.raises(tftest.TerraformTestError, match="ami_id must be an AMI ID"):
        plan(terraform, tmp_path, "cn-north-1", extra='ami_id = "al2023"')
