"""Stream retention, on the emulator's clock.

moto keeps every stream record forever; AWS does not. A DynamoDB stream keeps a record 24 hours,
a Kinesis stream as long as its retention (the module's replication stream 72 hours, its capture
stream 168 by default). What outlives that is what an outage longer than retention loses, so a
scenario about long outages needs the records to go.

`Retention` trims, in moto's own store, every record older than its stream's retention by the
time source it is given, so every reader finds it gone as on AWS: an event source mapping, and
`ops.py redrive` reading a failed batch back. A record's age is its creation time as moto
stamped it; inside `simulated_time.simulated()` that is the scenario's time, so a stepped
scenario covers a three-day outage in as many steps as it likes.

Where AWS answers differently from moto once records are gone, moto is taught to answer as AWS
does (per shard, on the trimmed shards only):
- DynamoDB Streams: reading from a position before the oldest record left raises
  TrimmedDataAccessException; the shard's sequence numbers keep counting up.
- Kinesis: reading from a trimmed position starts at the oldest record left; new records keep
  counting up from the highest sequence number the shard ever gave, not from the records left.

This works on moto in this process (`mock_aws`, the stepped emulator). The started emulator
runs on the machine's clock, where a day's retention never comes into play during a run.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from moto.core.exceptions import JsonRESTError
from moto.dynamodb.models import dynamodb_backends
from moto.kinesis.models import Record, kinesis_backends

HOUR_S = 3600
# DynamoDB Streams keeps a record 24 hours, and that is not configurable.
DYNAMODB_STREAMS_RETENTION_S = 24 * HOUR_S
# The module's defaults: replication_stream_retention_hours, capture_stream_retention_hours.
REPLICATION_STREAM_RETENTION_S = 72 * HOUR_S
CAPTURE_STREAM_RETENTION_S = 168 * HOUR_S


@dataclass(frozen=True)
class RetainedStream:
    """One stream whose records expire: a table's DynamoDB stream, or a Kinesis stream."""

    arn: str
    retention_s: float

    @property
    def service(self) -> str:
        return self.arn.split(":")[2]

    @property
    def region(self) -> str:
        return self.arn.split(":")[3]

    @property
    def account(self) -> str:
        return self.arn.split(":")[4]

    @property
    def name(self) -> str:
        """The table's name (a DynamoDB stream), or the stream's (Kinesis)."""
        return self.arn.split(":", 5)[5].split("/")[1]


class Retention:
    """Trims the given streams' expired records each time it steps."""

    def __init__(self, streams: list[RetainedStream], clock: Callable[[], float]):
        """`clock`: now, in epoch milliseconds (the scenario's time)."""
        self.streams = list(streams)
        self.clock = clock
        self.trimmed = 0  # records trimmed so far, all streams

    def add(self, stream: RetainedStream) -> None:
        if stream not in self.streams:
            self.streams.append(stream)

    def remove(self, arn: str) -> None:
        self.streams = [s for s in self.streams if s.arn != arn]

    def step(self) -> int:
        """Trim every stream once; returns 0 (trimming moves no record along), like a step
        that delivered nothing."""
        now_s = self.clock() / 1000
        for stream in self.streams:
            horizon = now_s - stream.retention_s
            if stream.service == "dynamodb":
                self.trimmed += _trim_dynamodb_stream(stream, horizon)
            else:
                self.trimmed += _trim_kinesis_stream(stream, horizon)
        return 0

    def idle(self) -> bool:
        return True


def _epoch_s(moment: datetime) -> float:
    """moto's naive UTC datetimes, in epoch seconds."""
    return moment.replace(tzinfo=UTC).timestamp()


def _trim_dynamodb_stream(stream: RetainedStream, horizon_s: float) -> int:
    table = dynamodb_backends[stream.account][stream.region].get_table(stream.name)
    shard = table.stream_shard
    if shard is None:
        return 0
    expired = 0
    for record in shard.items:
        if _epoch_s(record.record["dynamodb"]["ApproximateCreationDateTime"]) >= horizon_s:
            break
        expired += 1
    if expired:
        _teach_trimming(shard)
        # moto numbers a shard's records from starting_sequence_number by their place in the
        # list: dropping the oldest moves the start, so every record keeps its number.
        shard.items = shard.items[expired:]
        shard.starting_sequence_number += expired
    return expired


def _teach_trimming(shard: Any) -> None:
    """Reading before the oldest record left is TrimmedDataAccessException, as on AWS
    (moto would fail an assertion instead)."""
    if getattr(shard, "_retention_enforced", False):
        return
    untrimmed_get = shard.get

    def get(self, start: int, quantity: int) -> list[dict[str, Any]]:
        if start < self.starting_sequence_number:
            raise JsonRESTError(
                "TrimmedDataAccessException",
                f"sequence number {start} is older than the stream's 24-hour retention",
            )
        return untrimmed_get(start, quantity)

    shard.get = types.MethodType(get, shard)
    shard._retention_enforced = True


def _trim_kinesis_stream(stream: RetainedStream, horizon_s: float) -> int:
    kinesis = kinesis_backends[stream.account][stream.region]
    expired = 0
    for shard in kinesis.describe_stream(stream_arn=stream.arn, stream_name=None).shards.values():
        gone = []
        for sequence, record in shard.records.items():
            if record.created_at >= horizon_s:
                break
            gone.append(sequence)
        if gone:
            _keep_counting(shard)
            shard.highest_given = max(shard.highest_given, gone[-1])
            for sequence in gone:
                del shard.records[sequence]
            expired += len(gone)
    return expired


def _keep_counting(shard: Any) -> None:
    """moto numbers a new record one past the highest it still holds; with every record
    trimmed it would start again from 1, below what readers have seen."""
    if getattr(shard, "_retention_enforced", False):
        return
    shard.highest_given = 0

    def put_record(self, partition_key: str, data: str, explicit_hash_key: str) -> str:
        sequence = max(self.highest_given, self.get_max_sequence_number()) + 1
        self.records[sequence] = Record(partition_key, data, sequence, explicit_hash_key)
        self.highest_given = sequence
        return str(sequence)

    shard.put_record = types.MethodType(put_record, shard)
    shard._retention_enforced = True
