"""The schema-only AWS stand-in, proven through real Terraform: its data sources answer from the
provider configuration, aws_iam_policy_document renders as the real provider renders it, and a
planned resource leaves its computed attributes unknown.

Terraform and the stand-in's installation come from the harness (the session's `terraform`
fixture); the configuration here is the tests' own.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable

import pytest

from tests.terraform.harness import PROVIDER_VERSION, Terraform

ENVIRONMENT_REGION = "eu-west-1"  # what a provider block without `region` falls back to

pytestmark = pytest.mark.skipif(
    os.environ.get("TF_PLAN_TESTS_REAL_PROVIDER", "") not in ("", "0", "false"),
    reason="these tests prove the stand-in, which real-provider runs don't use",
)

CONFIGURATION = """
terraform {
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "%(version)s"
    }
  }
}

variable "region" {
  type = string
}

provider "aws" {
  region = var.region
  default_tags {
    tags = { project = "ddb-replication" }
  }
}

provider "aws" {
  alias = "from_environment"
}

data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_availability_zones" "available" {}

data "aws_service_principal" "lambda" {
  service_name = "lambda"
}

data "aws_service_principal" "logs" {
  service_name = "logs"
}

data "aws_region" "from_environment" {
  provider = aws.from_environment
}

data "aws_ssm_parameter" "al2023" {
  name = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
}

locals {
  partition = data.aws_partition.current.partition
  account   = data.aws_caller_identity.current.account_id
  region    = data.aws_region.current.region
}

resource "aws_dynamodb_table" "replicated" {
  name             = "user"
  billing_mode     = "PAY_PER_REQUEST"
  hash_key         = "PK"
  stream_enabled   = true
  stream_view_type = "NEW_AND_OLD_IMAGES"
  attribute {
    name = "PK"
    type = "S"
  }
  tags = { Name = "user" }
}

data "aws_iam_policy_document" "peer_writer" {
  statement {
    sid       = "PutRecords"
    actions   = ["kinesis:PutRecord", "kinesis:DescribeStreamSummary", "kinesis:PutRecords"]
    resources = ["arn:${local.partition}:kinesis:${local.region}:${local.account}:stream/peer"]
  }
  statement {
    sid     = "AssumeFromLambda"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.${data.aws_partition.current.dns_suffix}"]
    }
    principals {
      type        = "AWS"
      identifiers = ["111122223333", "arn:${local.partition}:iam::${local.account}:root"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:lambda:*:*:function:b", "arn:*:lambda:*:*:function:a"]
    }
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["home/&{aws:username}/*"]
    }
  }
  statement {
    effect      = "Deny"
    not_actions = ["iam:*"]
    resources   = ["*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
  }
}

data "aws_iam_policy_document" "table_writer" {
  statement {
    actions   = ["dynamodb:PutItem"]
    resources = [aws_dynamodb_table.replicated.arn]
  }
}

output "partition" {
  value = [local.partition, data.aws_partition.current.dns_suffix]
}
output "table_arn" {
  value = "arn:${local.partition}:dynamodb:${local.region}:${local.account}:table/user"
}
output "caller_arn" {
  value = data.aws_caller_identity.current.arn
}
output "region" {
  value = [local.region, data.aws_region.current.endpoint, data.aws_region.current.description]
}
output "environment_region" {
  value = data.aws_region.from_environment.region
}
output "availability_zones" {
  value = data.aws_availability_zones.available.names
}
output "service_principals" {
  value = [
    data.aws_service_principal.lambda.name,
    data.aws_service_principal.logs.name,
    data.aws_service_principal.logs.id,
  ]
}
output "ami" {
  value     = data.aws_ssm_parameter.al2023.value
  sensitive = true
}
output "peer_writer_policy" {
  value = data.aws_iam_policy_document.peer_writer.json
}
output "peer_writer_policy_minified" {
  value = data.aws_iam_policy_document.peer_writer.minified_json
}
output "table_writer_policy" {
  value = data.aws_iam_policy_document.table_writer.json
}
"""

REGIONS = {
    # region: (partition, DNS suffix, description)
    "cn-north-1": ("aws-cn", "amazonaws.com.cn", "China (Beijing)"),
    "ap-southeast-1": ("aws", "amazonaws.com", "Asia Pacific (Singapore)"),
}


@pytest.fixture(scope="module")
def plan(terraform: Terraform, tmp_path_factory) -> Callable[[str], dict]:
    """`terraform show -json` of CONFIGURATION planned in a region; one init for all regions."""
    root = tmp_path_factory.mktemp("stub-provider")
    (root / "main.tf").write_text(CONFIGURATION % {"version": PROVIDER_VERSION})
    # What a provider block without `region` falls back to.
    env = {
        **terraform.env,
        "AWS_REGION": ENVIRONMENT_REGION,
        "AWS_DEFAULT_REGION": ENVIRONMENT_REGION,
    }

    def run(*args: str) -> str:
        result = subprocess.run(
            [terraform.binary, *args],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode != 0:
            pytest.fail(f"terraform {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
        return result.stdout

    run("init", "-no-color")
    plans: dict[str, dict] = {}

    def planned(region: str) -> dict:
        if region not in plans:
            run("plan", "-no-color", "-lock=false", f"-var=region={region}", "-out=tfplan")
            plans[region] = json.loads(run("show", "-json", "tfplan"))
        return plans[region]

    return planned


def outputs(planned: dict) -> dict:
    """The known output values (an unknown one has no value in the plan)."""
    return {
        name: output["value"]
        for name, output in planned["planned_values"]["outputs"].items()
        if "value" in output
    }


@pytest.mark.parametrize("region", REGIONS)
def test_partition_caller_and_region_answer_for_the_configured_region(plan, region):
    partition, dns_suffix, description = REGIONS[region]
    values = outputs(plan(region))
    assert values["partition"] == [partition, dns_suffix]
    assert values["table_arn"] == f"arn:{partition}:dynamodb:{region}:123456789012:table/user"
    assert values["caller_arn"] == f"arn:{partition}:iam::123456789012:user/stub"
    assert values["region"] == [region, f"ec2.{region}.{dns_suffix}", description]
    assert values["availability_zones"] == [f"{region}a", f"{region}b", f"{region}c"]
    assert values["ami"].startswith("ami-")


@pytest.mark.parametrize("region", REGIONS)
def test_service_principals_follow_the_providers_partition_rule(plan, region):
    dns_suffix = REGIONS[region][1]
    values = outputs(plan(region))
    # In aws-cn only a few services (logs among them) take the partition's suffix.
    assert values["service_principals"] == [
        "lambda.amazonaws.com",
        f"logs.{dns_suffix}",
        f"logs.{region}.{dns_suffix}",
    ]


def test_a_provider_block_without_region_takes_it_from_the_environment(plan):
    assert outputs(plan("cn-north-1"))["environment_region"] == ENVIRONMENT_REGION


@pytest.mark.parametrize("region", REGIONS)
def test_policy_document_renders_as_the_provider_does(plan, region):
    partition, dns_suffix, _ = REGIONS[region]
    expected = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "PutRecords",
                "Effect": "Allow",
                # a set of actions: reverse-sorted, as the provider writes it
                "Action": [
                    "kinesis:PutRecords",
                    "kinesis:PutRecord",
                    "kinesis:DescribeStreamSummary",
                ],
                "Resource": f"arn:{partition}:kinesis:{region}:123456789012:stream/peer",
            },
            {
                "Sid": "AssumeFromLambda",
                "Effect": "Allow",
                "Action": "sts:AssumeRole",  # a single element becomes a string
                "Principal": {
                    "AWS": [f"arn:{partition}:iam::123456789012:root", "111122223333"],
                    "Service": f"lambda.{dns_suffix}",
                },
                "Condition": {
                    "ArnLike": {  # condition values keep their order
                        "aws:SourceArn": [
                            f"arn:{partition}:lambda:*:*:function:b",
                            "arn:*:lambda:*:*:function:a",
                        ]
                    },
                    "StringEquals": {"aws:SourceAccount": "123456789012"},
                    "StringLike": {"s3:prefix": "home/${aws:username}/*"},
                },
            },
            {"Effect": "Deny", "NotAction": "iam:*", "Resource": "*", "Principal": "*"},
        ],
    }
    values = outputs(plan(region))
    assert json.loads(values["peer_writer_policy"]) == expected
    # Byte for byte too: the provider's key order and two-space indent, minified without spaces.
    assert values["peer_writer_policy"] == json.dumps(expected, indent=2)
    assert values["peer_writer_policy_minified"] == json.dumps(expected, separators=(",", ":"))


def test_policy_document_with_unknown_input_is_unknown_until_apply(plan):
    changes = plan("cn-north-1")["output_changes"]
    assert changes["table_writer_policy"]["after_unknown"] is True


def test_planned_table_has_computed_attributes_unknown(plan):
    planned = plan("cn-north-1")
    (change,) = [
        c["change"]
        for c in planned["resource_changes"]
        if c["address"] == "aws_dynamodb_table.replicated"
    ]
    assert change["actions"] == ["create"]
    assert change["after_unknown"]["arn"] is True
    assert change["after_unknown"]["stream_arn"] is True
    assert change["after"]["name"] == "user"
    # Known at plan time, as the real provider plans them:
    assert change["after"]["region"] == "cn-north-1"
    assert change["after"]["tags_all"] == {"Name": "user", "project": "ddb-replication"}


# ------------------------------------------------------------------------------- DynamoDB tables

TABLES = """
terraform {
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "%(version)s"
    }
  }
}

provider "aws" {
  region = "cn-north-1"
}

%(body)s
"""

# A table an application's Terraform created: composite key, a GSI and an LSI, its own key.
ORDERS = {
    "hash_key": "customer_id",
    "range_key": "order_no",
    "attribute": [
        {"name": "customer_id", "type": "S"},
        {"name": "order_no", "type": "N"},
        {"name": "status", "type": "S"},
        {"name": "placed_at", "type": "N"},
    ],
    "billing_mode": "PAY_PER_REQUEST",
    "stream_enabled": True,
    "stream_view_type": "NEW_AND_OLD_IMAGES",
    "global_secondary_index": [
        {"name": "by-status", "hash_key": "status", "projection_type": "KEYS_ONLY"}
    ],
    "local_secondary_index": [
        {
            "name": "by-placed-at",
            "range_key": "placed_at",
            "projection_type": "INCLUDE",
            "non_key_attributes": ["total"],
        }
    ],
    "server_side_encryption": [
        {"enabled": True, "kms_key_arn": "arn:aws-cn:kms:cn-north-1:123456789012:key/app"}
    ],
}

ORDERS_RESOURCE = """
resource "aws_dynamodb_table" "orders" {
  name         = "orders-cn"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "customer_id"
  range_key    = "order_no"
  attribute {
    name = "customer_id"
    type = "S"
  }
  attribute {
    name = "order_no"
    type = "N"
  }
  attribute {
    name = "status"
    type = "S"
  }
  attribute {
    name = "placed_at"
    type = "N"
  }
  global_secondary_index {
    name            = "by-status"
    hash_key        = "status"
    projection_type = "KEYS_ONLY"
  }
  local_secondary_index {
    name               = "by-placed-at"
    range_key          = "placed_at"
    projection_type    = "%(lsi_projection)s"
    non_key_attributes = %(lsi_attributes)s
  }
}
"""


@pytest.fixture
def account(terraform: Terraform, tmp_path) -> Callable[..., subprocess.CompletedProcess]:
    """Runs Terraform on a configuration body in tmp_path, against a simulated account holding
    orders-cn (ORDERS) and a table with no stream."""
    from tests.terraform.stub_aws_provider import ACCOUNT_STATE_ENV, AccountStore

    store = AccountStore(tmp_path / "account.json")
    store.put_table("cn-north-1", "orders-cn", **ORDERS)
    store.put_table(
        "cn-north-1", "audit-cn", hash_key="id", attribute=[{"name": "id", "type": "S"}]
    )
    root = tmp_path / "root"
    root.mkdir()
    env = {**terraform.env, ACCOUNT_STATE_ENV: str(store.path)}

    def run(body: str | None, *args: str) -> subprocess.CompletedProcess:
        if body is not None:
            (root / "main.tf").write_text(TABLES % {"version": PROVIDER_VERSION, "body": body})
        if not (root / ".terraform").exists():
            init = subprocess.run([terraform.binary, "init", "-no-color"], cwd=root, env=env)
            assert init.returncode == 0
        return subprocess.run(
            [terraform.binary, *args], cwd=root, env=env, capture_output=True, text=True
        )

    return run


def test_an_existing_table_is_read_from_the_simulated_account(account):
    body = """
data "aws_dynamodb_table" "orders" {
  name = "orders-cn"
}
data "aws_dynamodb_table" "audit" {
  name = "audit-cn"
}
output "orders" {
  value = data.aws_dynamodb_table.orders
}
output "audit" {
  value = data.aws_dynamodb_table.audit
}
"""
    planned = account(body, "plan", "-no-color", "-out=tfplan")
    assert planned.returncode == 0, planned.stderr
    values = outputs(json.loads(account(None, "show", "-json", "tfplan").stdout))
    orders, audit = values["orders"], values["audit"]
    arn = "arn:aws-cn:dynamodb:cn-north-1:123456789012:table/orders-cn"
    assert orders["arn"] == arn
    assert orders["stream_arn"].startswith(f"{arn}/stream/")
    assert orders["stream_arn"].endswith(orders["stream_label"])
    assert (orders["stream_enabled"], orders["stream_view_type"]) == (True, "NEW_AND_OLD_IMAGES")
    assert (orders["hash_key"], orders["range_key"]) == ("customer_id", "order_no")
    [gsi] = orders["global_secondary_index"]
    assert (gsi["name"], gsi["hash_key"], gsi["projection_type"]) == (
        "by-status",
        "status",
        "KEYS_ONLY",
    )
    assert orders["server_side_encryption"] == ORDERS["server_side_encryption"]
    # A table without a stream reads as the provider reads it: disabled, no view type; and
    # what AWS leaves out is Go's zero value, not a placeholder.
    assert (audit["stream_enabled"], audit["stream_view_type"], audit["stream_arn"]) == (
        False,
        "",
        "",
    )
    assert (audit["billing_mode"], audit["range_key"], audit["server_side_encryption"]) == (
        "PROVISIONED",
        "",
        [],
    )


def test_a_table_the_account_lacks_fails_as_the_provider_does(account):
    body = 'data "aws_dynamodb_table" "missing" {\n  name = "missing-cn"\n}\n'
    result = account(body, "plan", "-no-color")
    assert result.returncode != 0
    assert "reading Dynamodb Table (missing-cn): couldn't find resource" in result.stderr


def test_the_account_describes_tables_in_the_providers_attribute_names(account, tmp_path):
    from tests.terraform.stub_aws_provider import AccountStore

    AccountStore(tmp_path / "account.json").put_table("cn-north-1", "odd-cn", streamViewType="X")
    result = account('data "aws_dynamodb_table" "odd" {\n  name = "odd-cn"\n}\n', "plan")
    assert result.returncode != 0
    assert "odd-cn has streamViewType, which aws_dynamodb_table doesn't have" in result.stderr


def test_an_imported_table_is_replaced_only_when_a_local_index_changes(account):
    same = ORDERS_RESOURCE % {"lsi_projection": "INCLUDE", "lsi_attributes": '["total"]'}
    imported = account(same, "import", "-no-color", "aws_dynamodb_table.orders", "orders-cn")
    assert imported.returncode == 0, imported.stderr

    def change() -> dict:
        planned = account(None, "plan", "-no-color", "-out=tfplan")
        assert planned.returncode == 0, planned.stderr
        shown = json.loads(account(None, "show", "-json", "tfplan").stdout)
        [found] = [c for c in shown["resource_changes"] if c["type"] == "aws_dynamodb_table"]
        return found

    # The same indexes: the table is updated in place (encryption, here), its indexes untouched.
    kept = change()
    assert kept["change"]["actions"] == ["update"]
    for index in ("global_secondary_index", "local_secondary_index"):
        assert kept["change"]["before"][index] == kept["change"]["after"][index]
    # A local secondary index exists only from the table's creation: changing one replaces it.
    account(ORDERS_RESOURCE % {"lsi_projection": "ALL", "lsi_attributes": "null"}, "version")
    replaced = change()
    assert replaced["change"]["actions"] == ["delete", "create"]
    assert replaced["action_reason"] == "replace_because_cannot_update"
    assert replaced["change"]["replace_paths"] == [["local_secondary_index"]]


def test_attribute_definitions_must_each_be_a_key(account):
    body = ORDERS_RESOURCE % {"lsi_projection": "ALL", "lsi_attributes": "null"}
    unused = body.replace(
        "  global_secondary_index {",
        '  attribute {\n    name = "note"\n    type = "S"\n  }\n  global_secondary_index {',
    )
    result = account(unused, "plan", "-no-color")
    assert result.returncode != 0
    assert "all attributes must be indexed. Unused attributes: [note]" in result.stderr
