"""Kinesis Data Streams for DynamoDB, as the emulator's streaming destination.

moto has no streaming destination, so a pump does its work for one region: it reads each
captured table's DynamoDB stream and puts one capture record per change into the region's
capture stream, the data being deployment.events.capture_payload as JSON, the partition key
derived from the item's key (so one item's records share a shard), the creation time in
microseconds (the MICROSECOND precision the module configures).

AWS documents two faults of this service that DynamoDB Streams does not have, both imitated
here, seeded so a scenario replays: a record may appear more than once, and an item's records
may arrive out of order. `CaptureFaults` sets how often and how far.

A pump runs either stepped (`step()`, in the caller's thread, on the caller's clock) or
started (`start()`, a polling thread), as the event source mappings do.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from deployment import events
from emulator.esm import MappingConfig
from emulator.stream_sources import dynamodb_stream_records, read_dynamodb_stream
from replication.versions import now_ms

DYNAMODB_STREAMS, KINESIS, BOTH = "dynamodb_streams", "kinesis", "both"
# `both` is the step between the other two when a live region switches (docs/deploying.md):
# the tables' streams and the capture stream feed the sender at once.
CAPTURE_KINDS = (DYNAMODB_STREAMS, KINESIS, BOTH)
# Kinesis PutRecords takes at most 500 records a call.
MAX_PUT_RECORDS = 500
POLL_INTERVAL_S = 0.2  # started pumps: the destination ships changes well within a second
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def check_capture(capture: str) -> str:
    if capture not in CAPTURE_KINDS:
        raise ValueError(f"capture must be one of {', '.join(CAPTURE_KINDS)}, not {capture!r}")
    return capture


def capture_mapping(config: MappingConfig) -> MappingConfig:
    """The sender's mapping when it reads a capture stream, as the module configures it:
    retried until the stream's retention runs out (MaximumRetryAttempts and
    MaximumRecordAgeInSeconds -1), polled as Lambda polls Kinesis."""
    return replace(config, maximum_record_age_s=-1, maximum_retry_attempts=-1, poll_interval_s=1.0)


@dataclass(frozen=True)
class CaptureFaults:
    """What the destination does to records, seeded. `duplicate_rate`: the fraction of
    records put twice. `reorder_window_ms`: each record (and each duplicate) is held back a
    random time up to this long after its creation, so records of one item created closer
    together than that can arrive in either order."""

    duplicate_rate: float = 0.0
    reorder_window_ms: float = 0.0
    seed: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.duplicate_rate <= 1:
            raise ValueError(f"duplicate_rate must be between 0 and 1, not {self.duplicate_rate}")
        if self.reorder_window_ms < 0:
            raise ValueError(f"reorder_window_ms must be 0 or more, not {self.reorder_window_ms}")


NO_FAULTS = CaptureFaults()


@dataclass(order=True)
class _Held:
    due_ms: float
    order: int  # read order, so records due at the same time keep the table's order
    entry: dict[str, Any] = field(compare=False)  # PutRecords' Data and PartitionKey
    created_us: int = field(compare=False, default=0)


def partition_key(keys: dict[str, Any]) -> str:
    """Derived from the item's key alone, so all of an item's records share a shard."""
    return hashlib.md5(json.dumps(keys, sort_keys=True).encode()).hexdigest().upper()


def epoch_ms(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)


class CapturePump:
    """The streaming destination of one region's tables into its capture stream."""

    def __init__(
        self,
        dynamodbstreams: Any,
        kinesis: Any,
        stream_arns: dict[str, str],
        capture_stream: str,
        region: str,
        faults: CaptureFaults = NO_FAULTS,
        clock: Callable[[], float] = now_ms,
    ):
        """`stream_arns`: table -> its DynamoDB stream ARN. `clock`: now, in epoch ms (the
        simulated time, stepped)."""
        self.streams, self.kinesis = dynamodbstreams, kinesis
        self.stream_arns = dict(stream_arns)
        self.capture_stream, self.region = capture_stream, region
        self.faults, self.clock = faults, clock
        self.rng = random.Random(f"{faults.seed}:capture:{region}")
        self.put = 0  # records put into the capture stream, duplicates included
        self.duplicated = 0
        self.reordered = 0  # records put after a later change of the same item
        self._latest_put: dict[str, int] = {}  # partition key -> the latest creation time put
        self._positions: dict[tuple[str, str], str] = {}  # (table, shard) -> last sequence
        self._last_created: dict[str, tuple[int, int]] = {}  # table -> (ms, sub-ms part)
        self._held: list[_Held] = []  # a heap, by due time then read order
        self._read = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start_from_now(self) -> CapturePump:
        """Capture only changes made from now on, as a destination enabled on a live table
        does: what the tables' streams already hold is skipped."""
        with self._lock:
            for table, arn in self.stream_arns.items():
                for shard_id, record in dynamodb_stream_records(self.streams, arn):
                    self._positions[(table, shard_id)] = record["dynamodb"]["SequenceNumber"]
        return self

    # -- stepped ---------------------------------------------------------------------

    def step(self) -> int:
        """Read every table's stream once and put what is due; how many records moved
        (read, or put)."""
        with self._lock:
            read = sum(self._read_table(table) for table in self.stream_arns)
            return read + self._put(self._due(self.clock()))

    def flush(self) -> int:
        """Put everything still held back, in due order: the destination delivers every
        record eventually."""
        with self._lock:
            return self._put(self._due(float("inf")))

    def idle(self) -> bool:
        with self._lock:
            return not self._held

    # -- started ---------------------------------------------------------------------

    def start(self) -> CapturePump:
        self._thread = threading.Thread(target=self._run, name=f"capture-{self.region}")
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(POLL_INTERVAL_S):
            try:
                self.step()
            except Exception:  # the service hiccuped: read again next time
                continue

    # -- the work --------------------------------------------------------------------

    def _read_table(self, table: str) -> int:
        arn = self.stream_arns[table]
        shards = self.streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
        read = 0
        for shard in shards:
            shard_id = shard["ShardId"]
            after = self._positions.get((table, shard_id))
            records = read_dynamodb_stream(self.streams, arn, shard_id, after)
            if records:
                self._positions[(table, shard_id)] = records[-1]["dynamodb"]["SequenceNumber"]
            for raw in records:
                ddb = raw["dynamodb"]
                # moto emits a MODIFY for a write that changed nothing; DynamoDB does not.
                if raw["eventName"] == "MODIFY" and ddb.get("NewImage") == ddb.get("OldImage"):
                    continue
                self._hold(raw, table)
                read += 1
        return read

    def _hold(self, raw: dict[str, Any], table: str) -> None:
        created_ms = epoch_ms(raw["dynamodb"]["ApproximateCreationDateTime"])
        created_us = self._created_us(table, created_ms)
        payload = events.capture_payload(raw, table, self.region, created_us)
        entry = {
            "Data": json.dumps(payload).encode(),
            "PartitionKey": partition_key(payload["dynamodb"]["Keys"]),
        }
        copies = 1
        if self.faults.duplicate_rate and self.rng.random() < self.faults.duplicate_rate:
            copies, self.duplicated = 2, self.duplicated + 1
        for _ in range(copies):
            delay = self.rng.random() * self.faults.reorder_window_ms
            heapq.heappush(self._held, _Held(created_ms + delay, self._read, entry, created_us))
            self._read += 1

    def _created_us(self, table: str, created_ms: int) -> int:
        """AWS gives true microseconds; moto keeps milliseconds. The part below the millisecond
        here counts the table's changes within that millisecond, so the microsecond times keep
        the table's order, as true ones would."""
        last_ms, last_part = self._last_created.get(table, (-1, -1))
        part = min(last_part + 1, 999) if created_ms == last_ms else 0
        self._last_created[table] = (created_ms, part)
        return created_ms * 1000 + part

    def _due(self, now: float) -> list[_Held]:
        due = []
        while self._held and self._held[0].due_ms <= now:
            due.append(heapq.heappop(self._held))
        return due

    def _put(self, due: list[_Held]) -> int:
        for start in range(0, len(due), MAX_PUT_RECORDS):
            chunk = due[start : start + MAX_PUT_RECORDS]
            try:
                response = self.kinesis.put_records(
                    StreamName=self.capture_stream, Records=[held.entry for held in chunk]
                )
                if response.get("FailedRecordCount"):
                    raise RuntimeError(f"{self.capture_stream} refused capture records")
            except Exception:
                # Held again, first in line: the destination retries until the stream takes
                # them (a record of a chunk that was taken may come twice, as on AWS).
                for held in due[start:]:
                    heapq.heappush(self._held, held)
                self.put += start
                raise
        self.put += len(due)
        for held in due:
            key = held.entry["PartitionKey"]
            if held.created_us < self._latest_put.get(key, 0):
                self.reordered += 1
            self._latest_put[key] = max(held.created_us, self._latest_put.get(key, 0))
        return len(due)
