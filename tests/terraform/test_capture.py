"""A table's capture: dynamodb_streams (the sender reads the table's DynamoDB stream), kinesis
(the table's Kinesis streaming destination writes into the node's capture stream, which the
sender reads), or both, the step between the two when a live table switches. Planned and
applied against the stand-in, with the environments' scenarios (scenarios/*-capture.tfvars); the
inventories check the planned values, these tests what
an inventory can't: what is absent, the ARNs apply fills in, and the sender's permissions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.terraform import test_environments as environments
from tests.terraform.harness import Terraform
from tests.terraform.test_environments import (
    SCENARIO_DIR,
    existing_table,
    plan_error,
    resources,
    stand_in_only,
    state_resources,
    with_account,
)

# The environments' fixtures: each scenario planned once, a scratch copy per test.
env, plan, scratch_env = environments.env, environments.plan, environments.scratch_env

NODE = "module.node"
CAPTURE_STREAM = f"{NODE}.aws_kinesis_stream.capture[0]"
CAPTURE_MAPPING = f'{NODE}.aws_lambda_event_source_mapping.stream["capture"]'
ARN = "arn:aws-cn:{service}:cn-north-1:123456789012:{resource}"
# What Lambda's mapping reads a Kinesis stream with, on the sender's behalf.
READ_THE_CAPTURE_STREAM = [
    "kinesis:DescribeStream",
    "kinesis:DescribeStreamSummary",
    "kinesis:GetRecords",
    "kinesis:GetShardIterator",
    "kinesis:ListShards",
    "kinesis:ListStreams",
]


def destination(table: str) -> str:
    return f'{NODE}.aws_dynamodb_kinesis_streaming_destination.capture["{table}"]'


def stream_mapping(table: str) -> str:
    return f'{NODE}.aws_lambda_event_source_mapping.stream["sender/{table}"]'


def apply(terraform: Terraform, directory: Path, *args: str) -> dict:
    """Apply the scratch environment (the stand-in fakes it into local state); its resources."""
    applied = terraform.run("apply", "-auto-approve", "-no-color", *args, cwd=directory)
    assert applied.returncode == 0, applied.stderr
    return state_resources(json.loads(terraform.run("show", "-json", cwd=directory).stdout))


def changes(terraform: Terraform, directory: Path, *args: str) -> dict[str, list[str]]:
    """Address -> actions of a plan against the applied state, for every resource it changes."""
    planned = terraform.run("plan", "-no-color", "-out=switch.tfplan", *args, cwd=directory)
    assert planned.returncode == 0, planned.stderr
    shown = json.loads(terraform.run("show", "-json", "switch.tfplan", cwd=directory).stdout)
    return {
        change["address"]: change["change"]["actions"]
        for change in shown.get("resource_changes", [])
        # Data sources read again aren't changes to the account.
        if change["change"]["actions"] != ["no-op"] and change["mode"] == "managed"
    }


def statements(state: dict, function: str) -> dict[str, dict]:
    policy = state[f'{NODE}.aws_iam_role_policy.function["{function}"]']["policy"]
    return {s["Sid"]: s for s in json.loads(policy)["Statement"]}


def listed(value) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


# ------------------------------------------------------------------------------- planned


@pytest.mark.parametrize("name", ["cn-north-1", "ap-southeast-1"])
def test_dynamodb_streams_capture_creates_no_capture_stream(plan, name):
    planned = resources(plan(name, "defaults"))
    table = {"cn-north-1": "user-cn", "ap-southeast-1": "user-sg"}[name]
    assert stream_mapping(table) in planned
    captured = [a for a in planned if "capture" in a]
    assert captured == [], (
        "dynamodb_streams capture needs no capture stream, destination or mapping"
    )


def test_a_kinesis_captured_table_has_no_dynamodb_stream_mapping(plan):
    planned = resources(plan("cn-north-1", "kinesis-capture"))
    assert stream_mapping("user-cn") not in planned
    assert stream_mapping("orders-cn") in planned
    assert destination("orders-cn") not in planned
    assert planned[destination("user-cn")]["approximate_creation_date_time_precision"] == (
        "MICROSECOND"
    )
    # The same settings as the DynamoDB-stream mapping, but retried until retention runs out.
    capture, streamed = planned[CAPTURE_MAPPING], planned[stream_mapping("orders-cn")]
    assert capture["maximum_record_age_in_seconds"] == -1
    assert capture["maximum_retry_attempts"] == -1
    assert streamed["maximum_record_age_in_seconds"] == 86400
    assert streamed["maximum_retry_attempts"] == 300
    for setting in (
        "batch_size",
        "bisect_batch_on_function_error",
        "function_response_types",
        "parallelization_factor",
        "starting_position",
    ):
        assert capture[setting] == streamed[setting], setting
    assert len(capture["destination_config"][0]["on_failure"]) == 1


def test_kinesis_capture_of_an_existing_table_leaves_the_table_alone(plan):
    planned = resources(plan("cn-north-1", "existing-kinesis-capture"))
    assert f'{NODE}.aws_dynamodb_table.replicated["orders-cn"]' not in planned
    assert stream_mapping("orders-cn") not in planned
    assert planned[destination("orders-cn")]["table_name"] == "orders-cn"
    assert CAPTURE_MAPPING in planned


def test_a_table_with_both_captures_is_read_both_ways(plan):
    planned = resources(plan("cn-north-1", "both-capture"))
    assert stream_mapping("user-cn") in planned
    assert planned[destination("user-cn")]["approximate_creation_date_time_precision"] == (
        "MICROSECOND"
    )
    assert planned[CAPTURE_MAPPING]["maximum_record_age_in_seconds"] == -1
    assert planned[stream_mapping("user-cn")]["maximum_record_age_in_seconds"] == 86400
    assert destination("orders-cn") not in planned


# ------------------------------------------------------------------------------- applied


@stand_in_only
def test_the_sender_reads_the_capture_stream_into_its_failure_queue(terraform, scratch_env):
    tfvars = SCENARIO_DIR / "cn-north-1-kinesis-capture.tfvars"
    state = apply(terraform, scratch_env, f"-var-file={tfvars}")
    stream = state[CAPTURE_STREAM]
    assert stream["name"] == "ddb_capture_stream_cn"
    assert stream["kms_key_id"] == state[f"{NODE}.aws_kms_key.node"]["arn"]
    assert state[destination("user-cn")]["stream_arn"] == stream["arn"]

    mapping = state[CAPTURE_MAPPING]
    assert mapping["event_source_arn"] == stream["arn"]
    assert (
        mapping["function_name"] == state[f'{NODE}.aws_lambda_function.function["sender"]']["arn"]
    )
    [config] = mapping["destination_config"]
    queue = state[f'{NODE}.aws_sqs_queue.failures["sender"]']["arn"]
    assert config["on_failure"][0]["destination_arn"] == queue

    sender = statements(state, "sender")
    assert sorted(listed(sender["ReadTheCaptureStream"]["Action"])) == READ_THE_CAPTURE_STREAM
    assert sender["ReadTheCaptureStream"]["Resource"] == stream["arn"]
    # The records are encrypted with the node's key, which the sender may decrypt with.
    assert "kms:Decrypt" in listed(sender["UseTheNodesKey"]["Action"])
    assert sender["UseTheNodesKey"]["Resource"] == stream["kms_key_id"]
    # Only orders-cn's DynamoDB stream is read; user-cn is still stamped and restored.
    orders = ARN.format(service="dynamodb", resource="table/orders-cn")
    user = ARN.format(service="dynamodb", resource="table/user-cn")
    assert listed(sender["ReadTheTablesStreams"]["Resource"]) == [f"{orders}/stream/*"]
    assert sorted(listed(sender["StampLocalWrites"]["Resource"])) == [orders, user]
    # The replicator has nothing to do with capture.
    assert "ReadTheCaptureStream" not in statements(state, "replicator")


@stand_in_only
def test_with_every_table_captured_through_kinesis_no_dynamodb_stream_is_readable(
    terraform, scratch_env
):
    state = apply(
        terraform, scratch_env, '-var=tables={"user-cn"={hash_key="PK",capture="kinesis"}}'
    )
    sender = statements(state, "sender")
    assert "ReadTheTablesStreams" not in sender
    assert sender["ReadTheCaptureStream"]["Resource"] == state[CAPTURE_STREAM]["arn"]
    assert not [
        a
        for a in state
        if a.startswith(f"{NODE}.aws_lambda_event_source_mapping") and "sender/" in a
    ]


@stand_in_only
def test_an_existing_table_without_a_dynamodb_stream_can_be_captured_through_kinesis(
    terraform, scratch_env
):
    no_stream = existing_table(stream_enabled=False)
    no_stream.pop("stream_view_type")
    account = with_account(terraform, scratch_env, {"orders-cn": no_stream})
    state = apply(
        account,
        scratch_env,
        '-var=existing_tables=["orders-cn"]',
        '-var=existing_tables_capture={"orders-cn"="kinesis"}',
        '-var=table_map={"orders-sg"="orders-cn"}',
    )
    assert f'{NODE}.aws_dynamodb_table.replicated["orders-cn"]' not in state
    assert state[destination("orders-cn")]["table_name"] == "orders-cn"
    assert state[destination("orders-cn")]["stream_arn"] == state[CAPTURE_STREAM]["arn"]
    sender = statements(state, "sender")
    orders = ARN.format(service="dynamodb", resource="table/orders-cn")
    assert f"{orders}/stream/*" not in listed(sender["ReadTheTablesStreams"]["Resource"])
    assert orders in listed(sender["StampLocalWrites"]["Resource"])


def test_an_existing_table_without_a_stream_still_fails_with_dynamodb_streams_capture(
    terraform, scratch_env
):
    no_stream = existing_table(stream_enabled=False)
    account = with_account(terraform, scratch_env, {"orders-cn": no_stream})
    message = plan_error(
        account,
        scratch_env,
        '-var=existing_tables=["orders-cn"]',
        '-var=existing_tables_capture={"orders-cn"="dynamodb_streams"}',
        '-var=table_map={"orders-sg"="orders-cn"}',
    )
    assert "Table orders-cn has no stream, and replication reads one with both images" in message


# ------------------------------------------------------------------------------- switching
# A live table switches through "both": each apply either adds a path or removes one, never both
# at once, so the path that remains was already delivering when the other went (README of the
# module, docs/deploying.md "Switching a table between capture modes").

SENDER_POLICY = f'{NODE}.aws_iam_role_policy.function["sender"]'


def user_cn(capture: str) -> tuple[str, ...]:
    return (f'-var=tables={{"user-cn"={{hash_key="PK",capture="{capture}"}}}}',)


def existing_orders_cn(capture: str) -> tuple[str, ...]:
    return (
        '-var=existing_tables=["orders-cn"]',
        f'-var=existing_tables_capture={{"orders-cn"="{capture}"}}',
        '-var=table_map={"orders-sg"="orders-cn"}',
    )


# (Terraform with the table's account, its capture as arguments, the table's name)
def created(terraform, directory):
    return terraform, user_cn, "user-cn"


def existing(terraform, directory):
    account = with_account(terraform, directory, {"orders-cn": existing_table()})
    return account, existing_orders_cn, "orders-cn"


@stand_in_only
@pytest.mark.parametrize("table_kind", [created, existing])
def test_from_both_to_kinesis_only_the_dynamodb_stream_mapping_goes(
    terraform, scratch_env, table_kind
):
    account, capture, table = table_kind(terraform, scratch_env)
    state = apply(account, scratch_env, *capture("both"))
    assert stream_mapping(table) in state
    assert CAPTURE_MAPPING in state
    assert state[destination(table)]["stream_arn"] == state[CAPTURE_STREAM]["arn"]

    planned = changes(account, scratch_env, *capture("kinesis"))
    # The sender's policy stops naming the table's DynamoDB stream; nothing else changes.
    assert planned == {stream_mapping(table): ["delete"], SENDER_POLICY: ["update"]}


@stand_in_only
def test_from_both_back_to_dynamodb_streams_only_the_capture_path_goes(terraform, scratch_env):
    apply(terraform, scratch_env, *user_cn("both"))
    planned = changes(terraform, scratch_env, *user_cn("dynamodb_streams"))
    assert planned == {
        destination("user-cn"): ["delete"],
        CAPTURE_MAPPING: ["delete"],
        CAPTURE_STREAM: ["delete"],
        SENDER_POLICY: ["update"],
    }


@stand_in_only
@pytest.mark.parametrize("start", ["dynamodb_streams", "kinesis"])
def test_into_both_nothing_that_delivers_goes(terraform, scratch_env, start):
    apply(terraform, scratch_env, *user_cn(start))
    planned = changes(terraform, scratch_env, *user_cn("both"))
    assert all(actions in (["create"], ["update"]) for actions in planned.values()), planned
    assert planned, "both adds the path the table didn't have"


@stand_in_only
def test_a_direct_switch_still_plans_but_removes_and_adds_in_one_apply(terraform, scratch_env):
    """Allowed, and what the docs advise against: Terraform may delete the DynamoDB-stream mapping
    before the new destination is ACTIVE, and the changes made in between reach neither path."""
    apply(terraform, scratch_env, *user_cn("dynamodb_streams"))
    planned = changes(terraform, scratch_env, *user_cn("kinesis"))
    assert planned[stream_mapping("user-cn")] == ["delete"]
    for created_now in (destination("user-cn"), CAPTURE_MAPPING, CAPTURE_STREAM):
        assert planned[created_now] == ["create"]


def test_both_on_an_existing_table_without_a_stream_fails_naming_the_stream(terraform, scratch_env):
    no_stream = existing_table(stream_enabled=False)
    account = with_account(terraform, scratch_env, {"orders-cn": no_stream})
    message = plan_error(account, scratch_env, *existing_orders_cn("both"))
    assert "Table orders-cn has no stream, and replication reads one with both images" in message


# ------------------------------------------------------------------------------- refused


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        (
            '-var=tables={"user-cn"={hash_key="PK",capture="kds"}}',
            'A table\'s capture must be "dynamodb_streams", "kinesis" or "both"',
        ),
        (
            '-var=existing_tables_capture={"user-cn"="streams"}',
            'existing_tables_capture\'s values must be "dynamodb_streams", "kinesis" or "both"',
        ),
        (
            '-var=existing_tables_capture={"user-cn"="both"}',
            "existing_tables_capture names tables that aren't in existing_tables: user-cn.",
        ),
        (
            '-var=existing_tables_capture={"user-cn"="kinesis"}',
            "existing_tables_capture names tables that aren't in existing_tables: user-cn.",
        ),
        (
            "-var=capture_stream_retention_hours=23",
            "capture_stream_retention_hours must be a whole number from 24 to 8760",
        ),
        (
            "-var=capture_stream_retention_hours=8761",
            "capture_stream_retention_hours must be a whole number from 24 to 8760",
        ),
        (
            "-var=capture_stream_retention_hours=48.5",
            "capture_stream_retention_hours must be a whole number from 24 to 8760",
        ),
        (
            "-var=capture_stream_shard_count=0",
            "capture_stream_shard_count must be a whole number of at least 1",
        ),
    ],
)
def test_capture_settings_kinesis_would_refuse_fail_the_plan(
    terraform, scratch_env, setting, message
):
    assert message in plan_error(terraform, scratch_env, setting)
