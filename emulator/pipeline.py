"""Both regions wired together in one process: tables, streams, and the real handlers.

Each region gets its own Sender and Replicator, built with that region's settings,
clients and clock, as two separately deployed sets of functions would be. Mappings are
stepped by hand, so a test decides exactly when records move.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3

from emulator import resources, topology
from emulator.mapping import Mapping, sqs_destination
from emulator.stream_sources import DynamoDBStreamSource, KinesisSource
from replication.clients import Clients
from replication.inbound import Replicator
from replication.outbound import Sender
from replication.versions import now_ms


@dataclass
class Node:
    """One region: its resources, its functions, their mappings."""

    region: resources.Region
    sender: Sender
    replicator: Replicator
    sender_mappings: list[Mapping]
    replicator_mapping: Mapping
    clock: Callable[[], int]

    @property
    def name(self) -> str:
        return self.region.names.region

    @property
    def table(self) -> str:
        return self.region.names.tables[0]

    def client(self, service: str) -> Any:
        return self.region.client(service)

    def mappings(self) -> list[Mapping]:
        return [*self.sender_mappings, self.replicator_mapping]


class TwoRegions:
    def __init__(
        self,
        key_schema=resources.DEFAULT_KEY_SCHEMA,
        clock_offsets_ms: dict[str, int] | None = None,
        concurrency: int = 8,
        batch_size: int = 500,
        max_retries: int = 10,
        time_source: Callable[[], int] = now_ms,
    ):
        """`time_source` is the true time in epoch ms (simulated in reproducible tests);
        each region's clock reads it plus that region's offset."""
        offsets = clock_offsets_ms or {}
        names = topology.load()
        self.nodes: dict[str, Node] = {}
        for region_name in (topology.CHINA, topology.GLOBAL):
            offset = offsets.get(region_name, 0)
            clock = (lambda o: lambda: time_source() + o)(offset)
            region = resources.create_region(names[region_name], boto3.Session(), key_schema)
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
            streams = region.client("dynamodbstreams")
            sqs = region.client("sqs")
            sender_mappings = [
                Mapping(
                    DynamoDBStreamSource(streams, arn, region_name),
                    sender.handle,
                    batch_size=batch_size,
                    max_retries=max_retries,
                    on_failure=sqs_destination(sqs, region.sender_queue_url),
                )
                for arn in region.stream_arns.values()
            ]
            replicator_mapping = Mapping(
                KinesisSource(
                    region.client("kinesis"),
                    region.names.replication_stream,
                    region.replication_stream_arn,
                    region_name,
                ),
                replicator.handle,
                batch_size=batch_size,
                max_retries=max_retries,
                on_failure=sqs_destination(sqs, region.replicator_queue_url),
            )
            self.nodes[region_name] = Node(
                region, sender, replicator, sender_mappings, replicator_mapping, clock
            )

    @property
    def china(self) -> Node:
        return self.nodes[topology.CHINA]

    @property
    def world(self) -> Node:
        return self.nodes[topology.GLOBAL]

    def step(self) -> int:
        """Poll every mapping once; returns the records delivered."""
        return sum(m.poll() for node in self.nodes.values() for m in node.mappings())

    def settle(self, max_steps: int = 500) -> int:
        """Poll until no mapping has anything left to deliver."""
        total = 0
        for _ in range(max_steps):
            moved = self.step()
            total += moved
            if not moved:
                return total
        raise RuntimeError(f"replication did not settle in {max_steps} steps")


def scan_all(client: Any, table: str) -> list[dict[str, Any]]:
    items, start = [], {}
    while True:
        page = client.scan(TableName=table, ConsistentRead=True, **start)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}
