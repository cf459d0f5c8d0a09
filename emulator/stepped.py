"""Both regions wired together in one process: tables, streams, and the real handlers.

Each region gets its own Sender and Replicator, built with that region's settings,
clients and clock, as two separately deployed sets of functions would be. Their event
source mappings are the emulator's own (esm.py), with the Terraform module's settings unless
told otherwise, stepped by hand: a test decides exactly when records move, and the mappings
read the same time source as the regions' clocks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3

from deployment import names as topology
from emulator import resources
from emulator.esm import (
    REPLICATOR_MAPPING,
    SENDER_MAPPING,
    EventSourceMapping,
    MappingConfig,
    sqs_destination,
)
from emulator.stream_sources import DynamoDBStreamSource, KinesisSource
from replication.clients import Clients
from replication.inbound import Replicator
from replication.outbound import Sender
from replication.versions import MILLISECONDS, now_ms


@dataclass
class Node:
    """One region: its resources, its functions, their mappings."""

    region: resources.Region
    sender: Sender
    replicator: Replicator
    sender_mappings: list[EventSourceMapping]  # one per table
    replicator_mapping: EventSourceMapping
    clock: Callable[[], int]

    @property
    def name(self) -> str:
        return self.region.names.region

    @property
    def table(self) -> str:
        return self.region.names.tables[0]

    def client(self, service: str) -> Any:
        return self.region.client(service)

    def mappings(self) -> list[EventSourceMapping]:
        return [*self.sender_mappings, self.replicator_mapping]


class TwoRegions:
    def __init__(
        self,
        key_schema=resources.DEFAULT_KEY_SCHEMA,
        clock_offsets_ms: dict[str, int] | None = None,
        concurrency: int = 8,
        sender_mapping: MappingConfig = SENDER_MAPPING,
        replicator_mapping: MappingConfig = REPLICATOR_MAPPING,
        time_source: Callable[[], int] = now_ms,
        version_unit: str = MILLISECONDS,
    ):
        """`time_source` is the true time in epoch ms (simulated in reproducible tests): the
        mappings read it, and each region's clock reads it plus that region's offset. The
        mappings' poll intervals don't apply: they move when stepped."""
        offsets = clock_offsets_ms or {}
        names = topology.region_names()
        self.nodes: dict[str, Node] = {}
        for region_name in (topology.CHINA, topology.GLOBAL):
            offset = offsets.get(region_name, 0)
            clock = (lambda o: lambda: time_source() + o)(offset)
            region = resources.create_region(
                names[region_name], boto3.Session(), key_schema, version_unit=version_unit
            )
            # Separate sessions per function, as separate Lambda environments would have.
            sender = Sender(
                resources.sender_settings(region, concurrency=concurrency),
                clients=Clients(region_name, session=boto3.Session()),
                clock=clock,
            )
            replicator = Replicator(
                resources.replicator_settings(region, concurrency=concurrency),
                clients=Clients(region_name, session=boto3.Session()),
                clock=clock,
            )
            streams, sqs = region.client("dynamodbstreams"), region.client("sqs")
            from_tables = [
                _stepped(
                    f"sender-{region_name}",
                    DynamoDBStreamSource(streams, arn, region_name),
                    sender.handle,
                    sender_mapping,
                    sqs_destination(sqs, region.sender_queue_url),
                    time_source,
                )
                for arn in region.stream_arns.values()
            ]
            kinesis = KinesisSource(
                region.client("kinesis"),
                region.names.replication_stream,
                region.replication_stream_arn,
                region_name,
            )
            from_peer = _stepped(
                f"replicator-{region_name}",
                kinesis,
                replicator.handle,
                replicator_mapping,
                sqs_destination(sqs, region.replicator_queue_url),
                time_source,
            )
            self.nodes[region_name] = Node(
                region, sender, replicator, from_tables, from_peer, clock
            )

    @property
    def china(self) -> Node:
        return self.nodes[topology.CHINA]

    @property
    def world(self) -> Node:
        return self.nodes[topology.GLOBAL]

    def mappings(self) -> list[EventSourceMapping]:
        return [m for node in self.nodes.values() for m in node.mappings()]

    def step(self) -> int:
        """Step every mapping once, region by region; returns the records delivered."""
        return sum(m.step() for m in self.mappings())

    def settle(self, max_steps: int = 500) -> int:
        """Step until no mapping has anything left to deliver."""
        total = 0
        for _ in range(max_steps):
            moved = self.step()
            total += moved
            if not moved and all(m.idle() for m in self.mappings()):
                return total
        raise RuntimeError(f"replication did not settle in {max_steps} steps")


def _stepped(
    function: str,
    source: DynamoDBStreamSource | KinesisSource,
    handler: Callable[[dict[str, Any]], dict[str, Any]],
    config: MappingConfig,
    on_failure: Callable[[dict[str, Any]], None],
    time_source: Callable[[], int],
) -> EventSourceMapping:
    """A mapping to step by hand, invoking a handler in this process, on `time_source`."""
    return EventSourceMapping(
        function,
        source,
        handler,
        config,
        on_failure,
        function_arn=resources.function_arn(function, source.region),
        clock=lambda: time_source() / 1000,
    )
