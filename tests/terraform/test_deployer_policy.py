"""docs/iam/deployer-policy.json: what the identity running `terraform apply` for one region
needs, checked against the modules. Every `resource "aws_*"` and `data "aws_*"` the modules
declare must be in REQUIRED below (a new one fails here until it is added), and every action
listed for it must be allowed by a statement whose resources cover an example ARN of it, in
both partitions. Resource ARNs use the module's default names."""

from __future__ import annotations

import json
import re
from fnmatch import fnmatchcase

import pytest

from tests.terraform.harness import REPO

POLICY_FILE = REPO / "docs" / "iam" / "deployer-policy.json"
PARTITIONS = ("aws", "aws-cn")
REGION, ACCOUNT = "cn-north-1", "111122223333"
ANY = "*"  # an action AWS only authorizes on every resource (creates, lists, describes)

KEY = "arn:{p}:kms:{r}:{a}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
TABLE = "arn:{p}:dynamodb:{r}:{a}:table/user-cn"
STREAM = "arn:{p}:kinesis:{r}:{a}:stream/ddb_replication_stream_cn"
CAPTURE_STREAM = "arn:{p}:kinesis:{r}:{a}:stream/ddb_capture_stream_cn"
QUEUE = "arn:{p}:sqs:{r}:{a}:ddbreplicatorcn"
FUNCTION = "arn:{p}:lambda:{r}:{a}:function:ddb_send_to_kinesis"
MAPPING = "arn:{p}:lambda:{r}:{a}:event-source-mapping:14e0db71-5d35-4eb5-b481-8945cf9d10c2"
FUNCTION_ROLE = "arn:{p}:iam::{a}:role/replicator_ddb_role"
PROXY_ROLE = "arn:{p}:iam::{a}:role/ddb-replication-proxy"
LOG_GROUP = "arn:{p}:logs:{r}:{a}:log-group:/aws/lambda/replicator_ddb"
INSTANCE = "arn:{p}:ec2:{r}:{a}:instance/i-0123456789abcdef0"
SECURITY_GROUP = "arn:{p}:ec2:{r}:{a}:security-group/sg-0123456789abcdef0"

TAGS = "TagResource", "UntagResource"

# Resource (or data source) type -> (example ARN, the actions Terraform's provider calls on it
# to create, read, update and delete it, tags included: the environments set default_tags).
REQUIRED: dict[str, list[tuple[str, list[str]]]] = {
    "aws_kms_key": [
        (ANY, ["kms:CreateKey"]),
        (
            KEY,
            [
                "kms:DescribeKey",
                "kms:GetKeyPolicy",
                "kms:PutKeyPolicy",
                "kms:TagResource",
                "kms:UntagResource",
                "kms:ListResourceTags",
                "kms:EnableKeyRotation",
                "kms:GetKeyRotationStatus",
                "kms:UpdateKeyDescription",
                "kms:ScheduleKeyDeletion",
            ],
        ),
    ],  # fmt: skip
    "aws_kms_alias": [
        (ANY, ["kms:ListAliases"]),
        ("arn:{p}:kms:{r}:{a}:alias/ddb-replication", ["kms:CreateAlias", "kms:DeleteAlias"]),
        (KEY, ["kms:CreateAlias", "kms:DeleteAlias", "kms:UpdateAlias"]),
    ],
    "aws_dynamodb_table": [
        (
            TABLE,
            [
                "dynamodb:CreateTable",
                "dynamodb:DescribeTable",
                "dynamodb:UpdateTable",
                "dynamodb:DeleteTable",
                "dynamodb:DescribeContinuousBackups",
                "dynamodb:UpdateContinuousBackups",
                "dynamodb:DescribeTimeToLive",
                "dynamodb:UpdateTimeToLive",
                "dynamodb:ListTagsOfResource",
                "dynamodb:TagResource",
                "dynamodb:UntagResource",
            ],
        ),
        # A table encrypted with the node's key: DynamoDB takes a grant on the caller's behalf.
        (KEY, ["kms:CreateGrant", "kms:DescribeKey"]),
    ],  # fmt: skip
    "data.aws_dynamodb_table": [
        (
            TABLE,
            [
                "dynamodb:DescribeTable",
                "dynamodb:DescribeContinuousBackups",
                "dynamodb:DescribeTimeToLive",
                "dynamodb:ListTagsOfResource",
            ],
        ),
    ],  # fmt: skip
    # The replication stream, and the capture stream (created alike when a table has kinesis
    # capture).
    "aws_kinesis_stream": [
        (
            stream,
            [
                "kinesis:CreateStream",
                "kinesis:DescribeStreamSummary",
                "kinesis:DeleteStream",
                "kinesis:StartStreamEncryption",
                "kinesis:IncreaseStreamRetentionPeriod",
                "kinesis:DecreaseStreamRetentionPeriod",
                "kinesis:UpdateShardCount",
                "kinesis:UpdateStreamMode",
                "kinesis:ListTagsForStream",
                "kinesis:AddTagsToStream",
                "kinesis:RemoveTagsFromStream",
            ],
        )
        for stream in (STREAM, CAPTURE_STREAM)
    ]
    + [(KEY, ["kms:GenerateDataKey", "kms:DescribeKey"])],  # fmt: skip
    # Enabling a table's destination: DynamoDB checks that the caller could write the stream
    # itself (AWS's "IAM policies for Kinesis Data Streams and DynamoDB"). The provider replaces
    # a destination rather than updating it; Update is listed as AWS documents the resource.
    "aws_dynamodb_kinesis_streaming_destination": [
        (
            TABLE,
            [
                "dynamodb:EnableKinesisStreamingDestination",
                "dynamodb:DescribeKinesisStreamingDestination",
                "dynamodb:DisableKinesisStreamingDestination",
                "dynamodb:UpdateKinesisStreamingDestination",
            ],
        ),
        (
            CAPTURE_STREAM,
            [
                "kinesis:PutRecord",
                "kinesis:PutRecords",
                "kinesis:DescribeStream",
                "kinesis:DescribeStreamSummary",
            ],
        ),
        (ANY, ["kinesis:ListStreams"]),
    ],  # fmt: skip
    "aws_sqs_queue": [
        (
            QUEUE,
            [
                "sqs:CreateQueue",
                "sqs:GetQueueAttributes",
                "sqs:SetQueueAttributes",
                "sqs:DeleteQueue",
                "sqs:ListQueueTags",
                "sqs:TagQueue",
                "sqs:UntagQueue",
            ],
        ),
    ],  # fmt: skip
    "aws_lambda_function": [
        (
            FUNCTION,
            [
                "lambda:CreateFunction",
                "lambda:GetFunction",
                "lambda:GetFunctionCodeSigningConfig",
                "lambda:ListVersionsByFunction",
                "lambda:UpdateFunctionCode",
                "lambda:UpdateFunctionConfiguration",
                "lambda:DeleteFunction",
                "lambda:ListTags",
                "lambda:TagResource",
                "lambda:UntagResource",
            ],
        ),
        (FUNCTION_ROLE, ["iam:PassRole"]),  # the function's role is handed to Lambda
        (ANY, ["ec2:DescribeSecurityGroups", "ec2:DescribeSubnets", "ec2:DescribeVpcs"]),  # VPC
    ],  # fmt: skip
    "aws_lambda_event_source_mapping": [
        (ANY, ["lambda:CreateEventSourceMapping", "lambda:ListEventSourceMappings"]),
        (
            MAPPING,
            [
                "lambda:GetEventSourceMapping",
                "lambda:UpdateEventSourceMapping",
                "lambda:DeleteEventSourceMapping",
                "lambda:ListTags",
            ],
        ),
    ],  # fmt: skip
    "aws_lambda_permission": [
        (FUNCTION, ["lambda:AddPermission", "lambda:GetPolicy", "lambda:RemovePermission"]),
    ],
    "aws_cloudwatch_log_group": [
        (
            LOG_GROUP,
            [
                "logs:CreateLogGroup",
                "logs:PutRetentionPolicy",
                "logs:AssociateKmsKey",
                "logs:DeleteLogGroup",
                "logs:ListTagsForResource",
                "logs:TagResource",
                "logs:UntagResource",
            ],
        ),
        (ANY, ["logs:DescribeLogGroups"]),
    ],  # fmt: skip
    "aws_cloudwatch_event_rule": [
        (
            "arn:{p}:events:{r}:{a}:rule/ddb_send_to_kinesis-heartbeat",
            [
                "events:PutRule",
                "events:DescribeRule",
                "events:DeleteRule",
                "events:ListTagsForResource",
                "events:TagResource",
                "events:UntagResource",
            ],
        ),
    ],  # fmt: skip
    "aws_cloudwatch_event_target": [
        (
            "arn:{p}:events:{r}:{a}:rule/ddb_send_to_kinesis-heartbeat",
            ["events:PutTargets", "events:ListTargetsByRule", "events:RemoveTargets"],
        ),
    ],  # fmt: skip
    "aws_cloudwatch_metric_alarm": [
        (
            "arn:{p}:cloudwatch:{r}:{a}:alarm:replicator_ddb-iterator-age",
            [
                "cloudwatch:PutMetricAlarm",
                "cloudwatch:DeleteAlarms",
                "cloudwatch:ListTagsForResource",
                "cloudwatch:TagResource",
            ],
        ),
        ("arn:{p}:cloudwatch:{r}:{a}:alarm:ddbstreamcn-not-empty", ["cloudwatch:PutMetricAlarm"]),
        (
            "arn:{p}:cloudwatch:{r}:{a}:alarm:ddb-replication-proxy-recover",
            ["cloudwatch:PutMetricAlarm"],
        ),
        (ANY, ["cloudwatch:DescribeAlarms"]),
    ],  # fmt: skip
    "aws_cloudwatch_dashboard": [
        (
            "arn:{p}:cloudwatch::{a}:dashboard/ddb-replication-cn-north-1",
            ["cloudwatch:PutDashboard", "cloudwatch:GetDashboard", "cloudwatch:DeleteDashboards"],
        ),
    ],  # fmt: skip
    "aws_sns_topic": [
        (
            "arn:{p}:sns:{r}:{a}:ddb-replication-alarms",
            [
                "sns:CreateTopic",
                "sns:GetTopicAttributes",
                "sns:SetTopicAttributes",
                "sns:DeleteTopic",
                "sns:ListTagsForResource",
                "sns:TagResource",
            ],
        ),
    ],  # fmt: skip
    "aws_sns_topic_subscription": [
        (
            "arn:{p}:sns:{r}:{a}:ddb-replication-alarms",
            ["sns:Subscribe", "sns:Unsubscribe", "sns:GetSubscriptionAttributes"],
        ),
    ],  # fmt: skip
    "aws_iam_role": [
        (
            FUNCTION_ROLE,
            [
                "iam:CreateRole",
                "iam:GetRole",
                "iam:UpdateAssumeRolePolicy",
                "iam:DeleteRole",
                "iam:ListRolePolicies",
                "iam:ListAttachedRolePolicies",
                "iam:ListInstanceProfilesForRole",
                "iam:TagRole",
                "iam:UntagRole",
            ],
        ),
        (PROXY_ROLE, ["iam:CreateRole", "iam:GetRole", "iam:DeleteRole"]),
    ],  # fmt: skip
    "aws_iam_role_policy": [
        (FUNCTION_ROLE, ["iam:PutRolePolicy", "iam:GetRolePolicy", "iam:DeleteRolePolicy"]),
    ],
    "aws_iam_role_policy_attachment": [
        (
            PROXY_ROLE,
            ["iam:AttachRolePolicy", "iam:DetachRolePolicy", "iam:ListAttachedRolePolicies"],
        ),
    ],  # fmt: skip
    "aws_iam_instance_profile": [
        (
            "arn:{p}:iam::{a}:instance-profile/ddb-replication-proxy",
            [
                "iam:CreateInstanceProfile",
                "iam:GetInstanceProfile",
                "iam:DeleteInstanceProfile",
                "iam:AddRoleToInstanceProfile",
                "iam:RemoveRoleFromInstanceProfile",
                "iam:TagInstanceProfile",
            ],
        ),
    ],  # fmt: skip
    "aws_iam_user": [
        (
            "arn:{p}:iam::{a}:user/ddb-replication-peer-writer",
            ["iam:CreateUser", "iam:GetUser", "iam:DeleteUser", "iam:TagUser", "iam:UntagUser"],
        ),
    ],  # fmt: skip
    "aws_iam_group": [
        (
            "arn:{p}:iam::{a}:group/ddb-replication-peer-writer",
            ["iam:CreateGroup", "iam:GetGroup", "iam:DeleteGroup"],
        ),
    ],  # fmt: skip
    "aws_iam_group_policy": [
        (
            "arn:{p}:iam::{a}:group/ddb-replication-peer-writer",
            ["iam:PutGroupPolicy", "iam:GetGroupPolicy", "iam:DeleteGroupPolicy"],
        ),
    ],  # fmt: skip
    "aws_iam_user_group_membership": [
        (
            "arn:{p}:iam::{a}:user/ddb-replication-peer-writer",
            ["iam:AddUserToGroup", "iam:RemoveUserFromGroup", "iam:ListGroupsForUser"],
        ),
        (
            "arn:{p}:iam::{a}:group/ddb-replication-peer-writer",
            ["iam:AddUserToGroup", "iam:RemoveUserFromGroup"],
        ),
    ],  # fmt: skip
    "aws_security_group": [
        (
            SECURITY_GROUP,
            [
                "ec2:CreateSecurityGroup",
                "ec2:DeleteSecurityGroup",
                "ec2:RevokeSecurityGroupEgress",
                "ec2:CreateTags",
            ],
        ),
        ("arn:{p}:ec2:{r}:{a}:vpc/vpc-0123456789abcdef0", ["ec2:CreateSecurityGroup"]),
        (ANY, ["ec2:DescribeSecurityGroups"]),
    ],  # fmt: skip
    "aws_vpc_security_group_ingress_rule": [
        (SECURITY_GROUP, ["ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"]),
        (ANY, ["ec2:DescribeSecurityGroupRules"]),
    ],
    "aws_vpc_security_group_egress_rule": [
        (SECURITY_GROUP, ["ec2:AuthorizeSecurityGroupEgress", "ec2:RevokeSecurityGroupEgress"]),
        (ANY, ["ec2:DescribeSecurityGroupRules"]),
    ],
    "aws_instance": [
        (
            INSTANCE,
            [
                "ec2:RunInstances",
                "ec2:TerminateInstances",
                "ec2:CreateTags",
                "ec2:ModifyInstanceAttribute",
                "ec2:ModifyInstanceMetadataOptions",
                "ec2:ModifyInstanceMaintenanceOptions",
                "ec2:MonitorInstances",
                "ec2:StopInstances",
                "ec2:StartInstances",
            ],
        ),
        (
            "arn:{p}:ec2:{r}:{a}:volume/vol-0123456789abcdef0",
            ["ec2:RunInstances", "ec2:CreateTags"],
        ),
        ("arn:{p}:ec2:{r}:{a}:subnet/subnet-0123456789abcdef0", ["ec2:RunInstances"]),
        ("arn:{p}:ec2:{r}:{a}:network-interface/eni-0123456789abcdef0", ["ec2:RunInstances"]),
        (SECURITY_GROUP, ["ec2:RunInstances"]),
        ("arn:{p}:ec2:{r}::image/ami-0123456789abcdef0", ["ec2:RunInstances"]),
        (PROXY_ROLE, ["iam:PassRole"]),  # through the instance profile
        # The root volume, encrypted with the node's key: EC2 uses it on the caller's behalf.
        (
            KEY,
            [
                "kms:CreateGrant",
                "kms:GenerateDataKeyWithoutPlaintext",
                "kms:Decrypt",
                "kms:ReEncryptFrom",
                "kms:ReEncryptTo",
            ],
        ),
        (
            ANY,
            [
                "ec2:DescribeInstances",
                "ec2:DescribeInstanceAttribute",
                "ec2:DescribeVolumes",
                "ec2:DescribeInstanceTypes",
                "ec2:DescribeInstanceCreditSpecifications",
                "ec2:DescribeImages",
                "ec2:DescribeTags",
                "ec2:DescribeNetworkInterfaces",
            ],
        ),
    ],  # fmt: skip
    "aws_eip": [
        (
            "arn:{p}:ec2:{r}:{a}:elastic-ip/eipalloc-0123456789abcdef0",
            [
                "ec2:AllocateAddress",
                "ec2:AssociateAddress",
                "ec2:DisassociateAddress",
                "ec2:ReleaseAddress",
                "ec2:CreateTags",
            ],
        ),
        (INSTANCE, ["ec2:AssociateAddress", "ec2:DisassociateAddress"]),
        (ANY, ["ec2:DescribeAddresses", "ec2:DescribeAddressesAttribute"]),
    ],  # fmt: skip
    "data.aws_ssm_parameter": [
        (
            "arn:{p}:ssm:{r}::parameter/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
            ["ssm:GetParameter"],
        ),
    ],  # fmt: skip
    # No API call, or one every identity may make (sts:GetCallerIdentity needs no permission).
    "data.aws_caller_identity": [],
    "data.aws_partition": [],
    "data.aws_region": [],
    "data.aws_service_principal": [],
    "data.aws_iam_policy_document": [],
}
# What the S3 backend does in the state bucket (use_lockfile: key.tflock beside the state).
STATE = [
    ("arn:{p}:s3:::ddb-replication-tfstate-111122223333-cn-north-1", ["s3:ListBucket"]),
    ("arn:{p}:s3:::ddb-replication-tfstate-111122223333-cn-north-1/ddb-replication/cn-north-1.tfstate",
     ["s3:GetObject", "s3:PutObject"]),
    ("arn:{p}:s3:::ddb-replication-tfstate-111122223333-cn-north-1/ddb-replication/cn-north-1.tfstate.tflock",
     ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]),
]  # fmt: skip
DECLARED = re.compile(r'^\s*(resource|data)\s+"(aws_\w+)"', re.MULTILINE)


def declared_types() -> set[str]:
    """Every aws_* resource type (and data source, as data.<type>) the modules declare."""
    found = set()
    for path in (REPO / "modules").rglob("*.tf"):
        for kind, name in DECLARED.findall(path.read_text()):
            found.add(name if kind == "resource" else f"data.{name}")
    return found


def policy() -> dict:
    return json.loads(POLICY_FILE.read_text())


def as_list(value) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def allows(document: dict, action: str, resource: str) -> bool:
    """An Allow statement names this action and a resource pattern covering the ARN (IAM's
    wildcards: * and ?); for ANY, a statement on every resource."""
    for statement in document["Statement"]:
        if statement["Effect"] != "Allow" or action not in as_list(statement["Action"]):
            continue
        patterns = as_list(statement["Resource"])
        if resource == ANY and "*" in patterns:
            return True
        if resource != ANY and any(fnmatchcase(resource, p) for p in patterns):
            return True
    return False


def test_the_policy_is_json_with_named_actions_only():
    document = policy()
    assert document["Version"] == "2012-10-17"
    actions = [a for s in document["Statement"] for a in as_list(s["Action"])]
    assert actions
    assert [a for a in actions if "*" in a or "?" in a] == []
    assert all(re.fullmatch(r"[a-z0-9-]+:[A-Za-z0-9]+", a) for a in actions)
    assert all(s["Effect"] == "Allow" and "NotAction" not in s for s in document["Statement"])
    sids = [s["Sid"] for s in document["Statement"]]
    assert len(sids) == len(set(sids))


def test_the_policy_names_no_partition():
    text = POLICY_FILE.read_text()
    assert re.findall(r'"arn:(?!\*:)[^"]*"', text) == []


def test_the_policy_fits_a_roles_inline_policy():
    # IAM counts characters without whitespace: 10,240 for all of a role's inline policies.
    assert len(json.dumps(policy(), separators=(",", ":"))) <= 10_240


def test_every_aws_type_the_modules_declare_has_its_actions_listed():
    declared = declared_types()
    assert {"aws_kms_key", "aws_lambda_function", "aws_instance"} <= declared
    assert sorted(declared - set(REQUIRED)) == [], "add these to REQUIRED"


@pytest.mark.parametrize("partition", PARTITIONS)
@pytest.mark.parametrize("resource_type", sorted(REQUIRED))
def test_the_policy_grants_what_each_type_needs(partition, resource_type):
    document = policy()
    missing = [
        (action, arn)
        for template, actions in REQUIRED[resource_type]
        for arn in [template.format(p=partition, r=REGION, a=ACCOUNT)]
        for action in actions
        if not allows(document, action, arn)
    ]
    assert missing == []


@pytest.mark.parametrize("partition", PARTITIONS)
def test_the_policy_grants_the_state_bucket(partition):
    document = policy()
    missing = [
        (action, template.format(p=partition))
        for template, actions in STATE
        for action in actions
        if not allows(document, action, template.format(p=partition))
    ]
    assert missing == []


def test_passing_a_role_is_limited_to_the_service_that_runs_it():
    for statement in policy()["Statement"]:
        if "iam:PassRole" in as_list(statement["Action"]):
            assert as_list(statement["Action"]) == ["iam:PassRole"]
            services = statement["Condition"]["StringEquals"]["iam:PassedToService"]
            assert services and all(s.startswith(("lambda.", "ec2.")) for s in services)
            assert "*" not in as_list(statement["Resource"])


def test_the_key_is_used_only_through_the_services_that_encrypt_with_it():
    for statement in policy()["Statement"]:
        uses = {"kms:Decrypt", "kms:GenerateDataKey", "kms:CreateGrant"}
        if uses & set(as_list(statement["Action"])):
            assert "kms:ViaService" in statement["Condition"]["StringLike"]
