"""The Lambda entry points: cheap to import, strict about config, wired to the real code."""

from __future__ import annotations

import importlib
import json
import sys
from dataclasses import dataclass

import boto3
import botocore.client
import pytest

import replicator
import sender
from replication.settings import ConfigError
from replication.versions import now_ms
from tests.helpers import item, kinesis_records, put, shipped_changes, stream_records

# An hour ago: a version ahead of the clock, or a change older than the tombstones, is refused.
NOW = (now_ms() // 1000 - 3600) * 1000
SENDER_VARS = (
    "AWS_REGION",
    "PEER_REGION",
    "PEER_STREAM_NAME",
    "PEER_CREDENTIALS_PREFIX",
    "TOMBSTONE_TABLE",
    "FAILURE_QUEUE_URL",
)
REPLICATOR_VARS = (
    "AWS_REGION",
    "PEER_REGION",
    "TABLE_MAP",
    "STATS_TABLE",
    "TOMBSTONE_TABLE",
    "FAILURE_QUEUE_URL",
)


@dataclass
class FakeContext:
    """What Powertools' inject_lambda_context and the sender's deadline check read."""

    function_name: str = "replication"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:ap-southeast-1:123456789012:function:replication"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


@pytest.fixture
def fresh_handlers(monkeypatch):
    """No cached Sender/Replicator, so each test builds its own from its own environment."""
    monkeypatch.setattr(sender, "_sender", None)
    monkeypatch.setattr(replicator, "_replicator", None)


def set_env(monkeypatch, env: dict[str, str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)


# -- import ------------------------------------------------------------------------------


def test_importing_the_entry_points_touches_no_aws_and_reads_no_config(monkeypatch):
    # Cold start must not fail (or cost a round trip) before the handler can report anything.
    for name in {*SENDER_VARS, *REPLICATOR_VARS}:
        monkeypatch.delenv(name, raising=False)

    def no_aws(*args, **kwargs):
        raise AssertionError("AWS touched at import time")

    monkeypatch.setattr(boto3.session.Session, "client", no_aws)
    monkeypatch.setattr(boto3.session.Session, "resource", no_aws)
    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", no_aws)
    # Import afresh, shared package included; the originals come back after the test.
    for name in [
        m for m in sys.modules if m.split(".")[0] in ("sender", "replicator", "replication")
    ]:
        monkeypatch.delitem(sys.modules, name)

    fresh_sender = importlib.import_module("sender")
    fresh_replicator = importlib.import_module("replicator")

    assert fresh_sender is not sender  # really re-executed
    assert fresh_sender._sender is None
    assert fresh_replicator._replicator is None


# -- missing config ----------------------------------------------------------------------


@pytest.mark.parametrize("missing", SENDER_VARS)
def test_the_sender_names_a_missing_variable(monkeypatch, fresh_handlers, missing):
    set_env(monkeypatch, {name: "x" for name in SENDER_VARS})
    monkeypatch.delenv(missing)

    with pytest.raises(ConfigError, match=rf"\b{missing}\b"):
        sender.lambda_handler({"Records": []}, FakeContext())
    assert sender._sender is None  # nothing half-built is cached: the next call checks again


@pytest.mark.parametrize("missing", REPLICATOR_VARS)
def test_the_replicator_names_a_missing_variable(monkeypatch, fresh_handlers, missing):
    set_env(monkeypatch, {name: "x" for name in REPLICATOR_VARS} | {"TABLE_MAP": '{"a": "b"}'})
    monkeypatch.delenv(missing)

    with pytest.raises(ConfigError, match=rf"\b{missing}\b"):
        replicator.lambda_handler({"Records": []}, FakeContext())
    assert replicator._replicator is None


# -- wired end to end --------------------------------------------------------------------


def sender_env_for(node) -> dict[str, str]:
    """The sender's variables as Terraform sets them for this region."""
    n = node.region.names
    return {
        "AWS_REGION": n.region,
        "PEER_REGION": n.peer_region,
        "PEER_STREAM_NAME": n.peer_replication_stream,
        "PEER_CREDENTIALS_PREFIX": n.peer_credentials_prefix,
        "TOMBSTONE_TABLE": n.tombstone_table,
        "FAILURE_QUEUE_URL": node.region.sender_queue_url,
    }


def replicator_env_for(node) -> dict[str, str]:
    n = node.region.names
    return {
        "AWS_REGION": n.region,
        "PEER_REGION": n.peer_region,
        "TABLE_MAP": json.dumps(n.table_map),
        "STATS_TABLE": n.stats_table,
        "TOMBSTONE_TABLE": n.tombstone_table,
        "FAILURE_QUEUE_URL": node.region.replicator_queue_url,
    }


def test_the_sender_entry_point_ships_a_local_write_to_the_peer(
    regions, monkeypatch, fresh_handlers
):
    cn, sg = regions.china, regions.world
    assert cn.name == "cn-north-1"
    set_env(monkeypatch, sender_env_for(cn))
    written = put(cn, "u1", now=NOW, name="Li")

    response = sender.lambda_handler({"Records": stream_records(cn)}, FakeContext())

    assert response == {"batchItemFailures": []}
    [change] = shipped_changes(sg)
    assert change.table == "user-cn"
    assert change.item == written
    assert sender._sender is not None  # cached for the next (warm) invocation


def test_the_replicator_entry_point_applies_a_change_from_the_peer(
    regions, monkeypatch, fresh_handlers
):
    cn, sg = regions.china, regions.world
    assert sg.name == "ap-southeast-1"
    written = put(cn, "u1", now=NOW, name="Li")
    set_env(monkeypatch, sender_env_for(cn))
    sender.lambda_handler({"Records": stream_records(cn)}, FakeContext())
    assert item(sg, "u1") is None  # not there until the replicator runs

    set_env(monkeypatch, replicator_env_for(sg))
    response = replicator.lambda_handler({"Records": kinesis_records(sg)}, FakeContext())

    assert response == {"batchItemFailures": []}
    assert item(sg, "u1") == written
    assert replicator._replicator is not None
