"""Event source mappings that behave like Lambda's for DynamoDB Streams and Kinesis.

Per shard, a poller reads at the service's rate (DynamoDB Streams 4/s, Kinesis 1/s,
sooner while records keep coming) and deals records into ParallelizationFactor lanes
by item key, so one key's records stay in order in one lane. Each lane invokes the
function with batches of up to BatchSize records, after at most
MaximumBatchingWindowInSeconds, and handles the outcome as Lambda does:
- a clean response: the batch is done;
- ReportBatchItemFailures: done up to the lowest failed record; retry from there;
- a function error: retry the batch, halving it each time with BisectBatchOnFunctionError;
- MaximumRetryAttempts exhausted, or records older than MaximumRecordAgeInSeconds: the
  batch's metadata goes to the on-failure destination, in AWS's format, and the lane
  moves on.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from emulator.functions import FunctionError
from emulator.stream_sources import StreamSource


@dataclass(frozen=True)
class MappingConfig:
    batch_size: int = 500
    batching_window_s: float = 0.0
    parallelization_factor: int = 1
    maximum_retry_attempts: int = 10  # -1: until the record expires
    bisect_on_error: bool = True
    maximum_record_age_s: float = -1  # -1: no limit
    poll_interval_s: float = 1.0


@dataclass
class MappingStats:
    delivered: int = 0
    invocations: int = 0
    retries: int = 0
    sent_to_failure_destination: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)


class EventSourceMapping:
    def __init__(
        self,
        name: str,
        source: StreamSource,
        invoke: Callable[[dict[str, Any]], dict[str, Any] | None],
        config: MappingConfig,
        on_failure: Callable[[dict[str, Any]], None],
        function_arn: str = "",
        on_done: Callable[[list[dict[str, Any]]], None] | None = None,
    ):
        self.name = name
        self.source = source
        self.invoke = invoke
        self.config = config
        self.on_failure = on_failure
        self.function_arn = function_arn
        self.on_done = on_done
        self.stats = MappingStats()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lanes: list[_Lane] = []

    def start(self) -> EventSourceMapping:
        for shard_id in self.source.shards():
            lanes = [_Lane(self, shard_id) for _ in range(self.config.parallelization_factor)]
            self._lanes.extend(lanes)
            self._spawn(self._poll, shard_id, lanes)
            for lane in lanes:
                self._spawn(lane.run)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def idle(self) -> bool:
        """Nothing read but not yet processed (records still on the stream don't count)."""
        return all(lane.empty() for lane in self._lanes)

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, name=f"{self.name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _poll(self, shard_id: str, lanes: list[_Lane]) -> None:
        after: str | None = None
        while not self._stop.is_set():
            try:
                records = self.source.read(shard_id, after, self.source.read_limit)
            except Exception:  # the service hiccuped: poll again next time
                records = []
            if records:
                after = self.source.sequence_of(records[-1])
                for record in records:
                    if self.source.is_noop(record):
                        continue
                    digest = hashlib.md5(self.source.key_of(record).encode()).digest()
                    lanes[int.from_bytes(digest[:4], "big") % len(lanes)].offer(record)
            if len(records) < self.source.read_limit:
                self._stop.wait(self.config.poll_interval_s)

    def failure_message(
        self, shard_id: str, batch: list[dict[str, Any]], condition: str, attempts: int
    ):
        """The record AWS sends to a stream mapping's on-failure destination."""
        arrivals = [_iso(self.source.arrival_of(r)) for r in (batch[0], batch[-1])]
        return {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": self.function_arn,
                "condition": condition,
                "approximateInvokeCount": attempts,
            },
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
            self.source.batch_info: {
                "shardId": shard_id,
                "startSequenceNumber": self.source.sequence_of(batch[0]),
                "endSequenceNumber": self.source.sequence_of(batch[-1]),
                "approximateArrivalOfFirstRecord": arrivals[0],
                "approximateArrivalOfLastRecord": arrivals[-1],
                "batchSize": len(batch),
                "streamArn": self.source.arn,
            },
        }


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat()


class _Lane:
    """One of a shard's ParallelizationFactor lanes: its records, in order, one batch at a time."""

    def __init__(self, mapping: EventSourceMapping, shard_id: str):
        self.mapping = mapping
        self.shard_id = shard_id
        self.pending: deque[dict[str, Any]] = deque()
        self.busy = False
        self.ready = threading.Condition()

    def offer(self, record: dict[str, Any]) -> None:
        with self.ready:
            self.pending.append(record)
            self.ready.notify()

    def empty(self) -> bool:
        with self.ready:
            return not self.pending and not self.busy

    def run(self) -> None:
        config, mapping = self.mapping.config, self.mapping
        limit, attempts = config.batch_size, 0
        while not mapping._stop.is_set():
            batch = self._next_batch(limit)
            if not batch:
                continue
            batch = self._drop_expired(batch)
            if not batch:
                continue
            mapping.stats.add(invocations=1, delivered=len(batch))
            try:
                response = mapping.invoke({"Records": batch}) or {}
                failed = [f["itemIdentifier"] for f in response.get("batchItemFailures") or []]
            except FunctionError:
                failed = None
            if failed == []:
                self._done(len(batch), batch)
                limit, attempts = config.batch_size, 0
                continue
            mapping.stats.add(retries=1)
            if failed is None and config.bisect_on_error and len(batch) > 1:
                # Split and retry each half; splitting does not count against the retries.
                limit = max(1, len(batch) // 2)
                continue
            attempts += 1
            if failed is None:
                done = 0
            else:
                sequences = [mapping.source.sequence_of(r) for r in batch]
                first = min((s for s in failed if s in sequences), key=int, default=sequences[0])
                done = sequences.index(first)
                self._done(done, batch[:done])
            if 0 <= config.maximum_retry_attempts < attempts:
                rest = batch[done:]
                mapping.on_failure(
                    mapping.failure_message(self.shard_id, rest, "RetryAttemptsExhausted", attempts)
                )
                mapping.stats.add(sent_to_failure_destination=len(rest))
                self._done(len(rest), rest, completed=False)
                limit, attempts = config.batch_size, 0
            else:
                mapping._stop.wait(min(2.0, 0.1 * 2**attempts))

    def _next_batch(self, limit: int) -> list[dict[str, Any]]:
        window = self.mapping.config.batching_window_s
        with self.ready:
            if not self.pending:
                self.ready.wait(0.2)
                return []
            if window and len(self.pending) < limit:
                waited = time.time() - self.mapping.source.arrival_of(self.pending[0])
                if waited < window:
                    self.ready.wait(min(window - waited, 0.2))
                    if len(self.pending) < limit:
                        return []
            self.busy = True
            return [self.pending[i] for i in range(min(limit, len(self.pending)))]

    def _drop_expired(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        max_age = self.mapping.config.maximum_record_age_s
        if max_age < 0:
            return batch
        now = time.time()
        expired = [r for r in batch if now - self.mapping.source.arrival_of(r) > max_age]
        if expired:
            self.mapping.on_failure(
                self.mapping.failure_message(self.shard_id, expired, "RecordAgeExceeded", 0)
            )
            self.mapping.stats.add(sent_to_failure_destination=len(expired))
            with self.ready:
                for record in expired:
                    self.pending.remove(record)
                self.busy = bool(len(expired) < len(batch))
        return [r for r in batch if r not in expired]

    def _done(self, count: int, records: list[dict[str, Any]], completed: bool = True) -> None:
        """Take `count` records off the lane; `completed` ones are reported to on_done."""
        with self.ready:
            for _ in range(count):
                self.pending.popleft()
            self.busy = False
        if completed and records and self.mapping.on_done is not None:
            self.mapping.on_done(records)
