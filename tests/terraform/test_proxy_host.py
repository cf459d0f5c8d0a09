"""modules/proxy_host planned offline: squid allows only what the design needs."""

from __future__ import annotations

from pathlib import Path

import pytest
import tftest

from tests.terraform.harness import REPO, Terraform, copy_configuration
from tests.terraform.inventory import planned_outputs, planned_resources

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
}

output "squid_config" {
  value = module.proxy.squid_config
}
"""
PARTITIONS = {
    "cn-north-1": ("aws-cn", "amazonaws.com.cn"),
    "ap-southeast-1": ("aws", "amazonaws.com"),
}


def plan(terraform: Terraform, tmp_path: Path, region: str, port: int = 3128):
    copy_configuration(REPO / "modules", tmp_path / "modules")
    root = tmp_path / "root"
    root.mkdir()
    partition = PARTITIONS[region][0]
    (root / "main.tf").write_text(ROOT % {"region": region, "partition": partition, "port": port})
    tf = terraform.test(root)
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
