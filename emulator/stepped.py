"""Both regions wired together in one process: tables, streams, and the real handlers.

Each region gets its own Sender and Replicator, built with that region's settings,
clients and clock, as two separately deployed sets of functions would be. Their event
source mappings are the emulator's own (esm.py), with the Terraform module's settings unless
told otherwise, stepped by hand: a test decides exactly when records move, and the mappings
read the same time source as the regions' clocks.

With kinesis capture, each region's tables stream into its capture stream (capture.py's pump,
stepped like a mapping, on the same time source), and the sender's mapping reads that stream.

Every stream forgets records older than its retention on the same time source (retention.py),
so with simulated_time.SimulatedTime a scenario can let days pass between two steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3

from deployment import names as topology
from emulator import resources
from emulator.capture import (
    DYNAMODB_STREAMS,
    NO_FAULTS,
    CaptureFaults,
    CapturePump,
    check_capture,
)
from emulator.esm import (
    REPLICATOR_MAPPING,
    SENDER_MAPPING,
    EventSourceMapping,
    MappingConfig,
    sqs_destination,
)
from emulator.retention import (
    CAPTURE_STREAM_RETENTION_S,
    DYNAMODB_STREAMS_RETENTION_S,
    HOUR_S,
    REPLICATION_STREAM_RETENTION_S,
    RetainedStream,
    Retention,
)
from emulator.stream_sources import KinesisSource, StreamSource
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
    sender_mappings: list[EventSourceMapping]  # one per table, or one for the capture stream
    replicator_mapping: EventSourceMapping
    clock: Callable[[], int]
    retention: Retention  # trims the region's streams as time passes
    capture: CapturePump | None = None  # the tables' streaming destination, with kinesis capture

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

    def steppers(self) -> list[Retention | EventSourceMapping | CapturePump]:
        """What a step moves, in order: expired records go first, then the capture pump puts
        what it captured, then the mappings read."""
        return [self.retention, *([self.capture] if self.capture else []), *self.mappings()]


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
        capture: str = DYNAMODB_STREAMS,
        capture_faults: CaptureFaults = NO_FAULTS,
        capture_retention_hours: float = CAPTURE_STREAM_RETENTION_S / HOUR_S,
        replication_retention_hours: float = REPLICATION_STREAM_RETENTION_S / HOUR_S,
    ):
        """`time_source` is the true time in epoch ms (simulated in reproducible tests): the
        mappings read it, and each region's clock reads it plus that region's offset. The
        mappings' poll intervals don't apply: they move when stepped. `capture`:
        dynamodb_streams, or kinesis, with the destination's `capture_faults`. Every stream
        drops records older than its retention by `time_source` (emulator/retention.py): the
        tables' DynamoDB streams 24 hours, the capture and replication streams as given (the
        module's defaults otherwise)."""
        self.concurrency = concurrency
        offsets = clock_offsets_ms or {}
        names = topology.region_names()
        self.time_source = time_source
        self.sender_mapping = sender_mapping
        self.capture_faults = capture_faults
        self.capture_retention_s = capture_retention_hours * HOUR_S
        self.nodes: dict[str, Node] = {}
        for region_name in (topology.CHINA, topology.GLOBAL):
            offset = offsets.get(region_name, 0)
            clock = (lambda o: lambda: time_source() + o)(offset)
            region = resources.create_region(
                names[region_name],
                boto3.Session(),
                key_schema,
                version_unit=version_unit,
                capture=capture,
            )
            sender = _sender(region, concurrency, clock)
            replicator = _replicator(region, concurrency, clock)
            sqs = region.client("sqs")
            kinesis = KinesisSource(
                region.client("kinesis"),
                region.names.replication_stream,
                region.replication_stream_arn,
                region_name,
            )
            from_peer = _stepped(
                f"replicator-{region_name}",
                kinesis,
                # Whatever the node holds then (cold_start replaces it).
                lambda event, name=region_name: self.nodes[name].replicator.handle(event),
                replicator_mapping,
                sqs_destination(sqs, region.replicator_queue_url),
                time_source,
            )
            retained = [
                RetainedStream(arn, DYNAMODB_STREAMS_RETENTION_S)
                for arn in region.stream_arns.values()
            ]
            retained.append(
                RetainedStream(region.replication_stream_arn, replication_retention_hours * HOUR_S)
            )
            retention = Retention(retained, time_source)
            node = Node(region, sender, replicator, [], from_peer, clock, retention)
            self.nodes[region_name] = node
            self._capture(node, capture_existing=True)

    @property
    def china(self) -> Node:
        return self.nodes[topology.CHINA]

    @property
    def world(self) -> Node:
        return self.nodes[topology.GLOBAL]

    def mappings(self) -> list[EventSourceMapping]:
        return [m for node in self.nodes.values() for m in node.mappings()]

    def pumps(self) -> list[CapturePump]:
        """The capture pumps (none with dynamodb_streams capture)."""
        return [node.capture for node in self.nodes.values() if node.capture]

    def cold_start(self, region_name: str, function: str) -> Sender | Replicator:
        """A new execution environment for one of the region's functions, as Lambda starts
        after a process died or timed out: nothing cached (keys, key ring, clients). The
        mappings invoke whatever the node holds; returns the new instance."""
        node = self.nodes[region_name]
        if function == "sender":
            node.sender = _sender(node.region, self.concurrency, node.clock)
            return node.sender
        node.replicator = _replicator(node.region, self.concurrency, node.clock)
        return node.replicator

    def apply_capture(self, region_name: str, capture: str) -> None:
        """What `terraform apply` with a new `capture` for the region's tables does, while
        both regions keep running: from dynamodb_streams to both, the streaming destination
        starts capturing changes made from then on and a sender mapping reads the capture
        stream from its start; from both to kinesis, the tables' stream mappings go; back
        again likewise. A mapping removed is gone with whatever it had not read: wait until it
        has caught up first (settle), as docs/deploying.md says."""
        node = self.nodes[region_name]
        if check_capture(capture) == DYNAMODB_STREAMS and node.capture is not None:
            # The destination is disabled: what it captured reaches the stream first.
            node.capture.flush()
            node.capture = None
            node.retention.remove(node.region.capture_stream_arn)
        resources.set_capture(node.region, capture)
        self._capture(node, capture_existing=False)

    def _capture(self, node: Node, capture_existing: bool) -> None:
        """Give the node the destination, the retention and the sender mappings its region's
        capture calls for, keeping the ones it has. `capture_existing`: a destination enabled
        with the tables also captures what they hold already (a region created so)."""
        region = node.region
        if region.capture_stream_arn:
            node.retention.add(RetainedStream(region.capture_stream_arn, self.capture_retention_s))
        if region.capture != DYNAMODB_STREAMS and node.capture is None:
            pump = resources.capture_pump(region, self.capture_faults, self.time_source)
            node.capture = pump if capture_existing else pump.start_from_now()
        wanted = resources.sender_sources(region)
        kept = [m for m in node.sender_mappings if m.source.arn in {s.arn for s in wanted.values()}]
        have = {m.source.arn for m in kept}
        sqs = region.client("sqs")
        node.sender_mappings = kept + [
            _stepped(
                f"sender-{node.name}",
                source,
                lambda event, node=node: node.sender.handle(event),
                resources.sender_config(source, self.sender_mapping),
                sqs_destination(sqs, region.sender_queue_url),
                self.time_source,
            )
            for source in wanted.values()
            if source.arn not in have
        ]

    def step(self) -> int:
        """Step every pump and mapping once, region by region; returns the records moved."""
        return sum(s.step() for node in self.nodes.values() for s in node.steppers())

    def settle(self, max_steps: int = 500) -> int:
        """Step until nothing has anything left to deliver. Time stands still meanwhile, so
        records a pump still holds back are then put all at once, in their due order."""
        total = 0
        for _ in range(max_steps):
            moved = self.step()
            total += moved
            if moved or not all(m.idle() for m in self.mappings()):
                continue
            if all(p.idle() for p in self.pumps()):
                return total
            total += sum(p.flush() for p in self.pumps())
        raise RuntimeError(f"replication did not settle in {max_steps} steps")


# Separate sessions per function, as separate Lambda environments would have.
def _sender(region: resources.Region, concurrency: int, clock: Callable[[], int]) -> Sender:
    return Sender(
        resources.sender_settings(region, concurrency=concurrency),
        clients=Clients(region.names.region, session=boto3.Session()),
        clock=clock,
    )


def _replicator(region: resources.Region, concurrency: int, clock: Callable[[], int]) -> Replicator:
    return Replicator(
        resources.replicator_settings(region, concurrency=concurrency),
        clients=Clients(region.names.region, session=boto3.Session()),
        clock=clock,
    )


def _stepped(
    function: str,
    source: StreamSource,
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
