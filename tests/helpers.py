"""Small helpers shared by the handler tests."""

from __future__ import annotations

import base64
import copy
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from moto.server import ThreadedMotoServer

from emulator import events
from emulator.environment import LOCAL_AWS
from emulator.local_deployment import LocalDeployment
from emulator.resources import SIGNING_KEYS, drain_queue
from emulator.stepped import Node
from emulator.stream_sources import DynamoDBStreamSource, KinesisSource
from replication import wire
from replication.stamping import stamp


def put(node: Node, key: str, now: int | None = None, region: str | None = None, **attrs):
    """Write an item stamped the way the application contract says."""
    item = {"PK": {"S": key}, **{k: {"S": str(v)} for k, v in attrs.items()}}
    if now is not None or region is not None:
        item = stamp(item, region or node.name, now=now, typed=True)
    node.client("dynamodb").put_item(TableName=node.table, Item=item)
    return item


def stream_records(node: Node, after: str | None = None) -> list[dict[str, Any]]:
    """This region's table stream, as the Lambda events the sender receives."""
    source = node.sender_mappings[0].source
    assert isinstance(source, DynamoDBStreamSource)
    shard = source.shards()[0]
    return source.read(shard, after, 1000)


def kinesis_records(node: Node) -> list[dict[str, Any]]:
    """This region's replication stream, as the Lambda events the replicator receives."""
    source = node.replicator_mapping.source
    assert isinstance(source, KinesisSource)
    return [r for shard in source.shards() for r in source.read(shard, None, 10_000)]


def shipped_changes(node: Node) -> list[wire.Change]:
    """What the peer region's replication stream holds, decoded."""
    return [
        wire.unpack(base64.b64decode(r["kinesis"]["data"])).change for r in kinesis_records(node)
    ]


def kinesis_event(
    node: Node, changes: list[bytes | wire.Change], signed: bool = True
) -> dict[str, Any]:
    """A replicator event for this region carrying the given changes, signed as the peer's
    sender signs them (or raw bytes)."""
    keys = SIGNING_KEYS if signed else None
    return events.kinesis_batch(changes, node.region.replication_stream_arn, node.name, keys=keys)


def queue_messages(node: Node, url: str) -> list[dict[str, Any]]:
    return drain_queue(node.client("sqs"), url)


def mutated(record: dict[str, Any], **changes: Any) -> dict[str, Any]:
    record = copy.deepcopy(record)
    record.update(changes)
    return record


def item(node: Node, key: str) -> dict[str, Any] | None:
    return (
        node.client("dynamodb")
        .get_item(TableName=node.table, Key={"PK": {"S": key}}, ConsistentRead=True)
        .get("Item")
    )


@contextmanager
def emulator_running(workdir: Path, **options: Any) -> Iterator[LocalDeployment]:
    """Both regions on moto, with the functions and mappings running, in this process's
    environment set as the emulator's own processes have it."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in LOCAL_AWS.items():
            env.setenv(name, value)
        env.delenv("AWS_ENDPOINT_URL", raising=False)
        with LocalDeployment(workdir, **options) as running:
            yield running


@contextmanager
def moto_server() -> Iterator[str]:
    """A moto server of its own, on a free local port: its URL, for clients that need a real
    endpoint (an HTTP link, Terraform's S3 backend)."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
