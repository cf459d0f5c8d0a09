"""Event source mappings that behave like Lambda's for DynamoDB Streams and Kinesis.

Per shard, the mapping reads the stream (a source from stream_sources.py) and deals records
into ParallelizationFactor lanes by item key, so one key's records stay in order in one lane.
Each lane invokes the function with batches of up to BatchSize records, after at most
MaximumBatchingWindowInSeconds, and handles the outcome as Lambda does:
- a clean response: the batch is done;
- ReportBatchItemFailures: done up to the lowest failed record; retry from there;
- a function error (whatever the invocation raised): retry the batch, halving it each time
  with BisectBatchOnFunctionError;
- MaximumRetryAttempts exhausted, or records older than MaximumRecordAgeInSeconds: the
  batch's metadata goes to the on-failure destination, in AWS's format, and the lane
  moves on.

A mapping runs in one of two ways, by the same rules:
- started (`start()`, `stop()`): a poller thread per shard reads at the service's rate
  (DynamoDB Streams 4/s, Kinesis 1/s, sooner while records keep coming), and a thread per
  lane invokes the function as batches become ready, backing off between retries;
- stepped (`step()`): in the caller's thread, each shard is read once, then each lane with a
  batch ready makes one invocation, shard by shard and lane by lane, always in the same order.
  A retry waits for the next step instead of a backoff.
Either way, time (record age, the batching window, the on-failure message's timestamp) is
read from the mapping's `clock`, so a stepped mapping on simulated time replays exactly.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from emulator.stream_sources import StreamSource

Invoke = Callable[[dict[str, Any]], dict[str, Any] | None]
IDLE_WAIT_S = 0.2  # how long a started lane with nothing to do waits before looking again


@dataclass(frozen=True)
class MappingConfig:
    batch_size: int = 500
    batching_window_s: float = 0.0
    parallelization_factor: int = 1
    maximum_retry_attempts: int = 10  # -1: until the record expires
    bisect_on_error: bool = True
    maximum_record_age_s: float = -1  # -1: no limit
    poll_interval_s: float = 1.0  # started mappings only


# The mapping settings the Terraform module uses by default (the seed's, plus polling).
SENDER_MAPPING = MappingConfig(
    batch_size=500,
    parallelization_factor=10,
    maximum_retry_attempts=300,
    maximum_record_age_s=86_400,
    poll_interval_s=0.25,  # Lambda polls DynamoDB Streams shards 4 times a second
)
REPLICATOR_MAPPING = MappingConfig(
    batch_size=500,
    parallelization_factor=10,
    maximum_retry_attempts=100,
    maximum_record_age_s=86_400,
    poll_interval_s=1.0,  # and Kinesis shards once a second
)


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


def sqs_destination(sqs: Any, queue_url: str) -> Callable[[dict[str, Any]], None]:
    """An on-failure destination: each message, as JSON, to an SQS queue."""
    return lambda message: sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(message))


class EventSourceMapping:
    def __init__(
        self,
        name: str,
        source: StreamSource,
        invoke: Invoke,
        config: MappingConfig,
        on_failure: Callable[[dict[str, Any]], None],
        function_arn: str = "",
        on_done: Callable[[list[dict[str, Any]]], None] | None = None,
        clock: Callable[[], float] = time.time,
    ):
        """`invoke` runs the function on an event and returns its response; whatever it
        raises is a function error. `on_done` gets each run of records completed successfully.
        `clock` is the time in epoch seconds."""
        self.name = name
        self.source = source
        self.invoke = invoke
        self.config = config
        self.on_failure = on_failure
        self.function_arn = function_arn
        self.on_done = on_done
        self.clock = clock
        self.stats = MappingStats()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lanes: dict[str, list[_Lane]] = {}  # shard -> its lanes
        self._positions: dict[str, str] = {}  # shard -> the last sequence number read
        # A record not yet done -> the position it was read after: its shard's checkpoint, should
        # the mapping restart while it waits (None: the shard's start).
        self._read_after: dict[str, str | None] = {}
        self._lock = threading.Lock()

    # -- started ---------------------------------------------------------------------

    def start(self) -> EventSourceMapping:
        for shard_id, lanes in self._shard_lanes().items():
            self._spawn(self._poll, shard_id)
            for lane in lanes:
                self._spawn(lane.run)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, name=f"{self.name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _poll(self, shard_id: str) -> None:
        while not self._stop.is_set():
            try:
                read = self._read(shard_id)
            except Exception:  # the service hiccuped: poll again next time
                read = 0
            if read < self.source.read_limit:
                self._stop.wait(self.config.poll_interval_s)

    # -- stepped ---------------------------------------------------------------------

    def step(self) -> int:
        """Read each shard once, then give each lane with a batch ready one invocation, in
        the caller's thread, shard by shard and lane by lane. Returns how many records the
        function was invoked with."""
        if self._threads:
            raise RuntimeError(f"{self.name} is started: its own threads run it")
        shards = self._shard_lanes()
        for shard_id in shards:
            self._read(shard_id)
        return sum(lane.step() for lanes in shards.values() for lane in lanes)

    def restart(self) -> int:
        """Start again from the checkpoints, as a mapping does after Lambda restarts it: each
        shard resumes at its oldest record not yet done, so the records after it that other
        lanes had done are delivered again, and retry counts start afresh. Returns how many
        records were waiting, to be read again."""
        if self._threads:
            raise RuntimeError(f"{self.name} is started: stop it first")
        waiting = 0
        for shard_id, lanes in self._lanes.items():
            pending = [r for lane in lanes for r in lane.pending]
            waiting += len(pending)
            if pending:
                oldest = min(pending, key=lambda r: int(self.source.sequence_of(r)))
                checkpoint = self._read_after[self.source.sequence_of(oldest)]
                if checkpoint is None:
                    self._positions.pop(shard_id, None)
                else:
                    self._positions[shard_id] = checkpoint
            for lane in lanes:
                lane.reset()
        self._read_after.clear()
        return waiting

    # -- either way ------------------------------------------------------------------

    def idle(self) -> bool:
        """Nothing read but not yet processed (records still on the stream don't count)."""
        return all(lane.empty() for lanes in self._lanes.values() for lane in lanes)

    def _shard_lanes(self) -> dict[str, list[_Lane]]:
        if not self._lanes:
            for shard_id in self.source.shards():
                factor = self.config.parallelization_factor
                self._lanes[shard_id] = [_Lane(self, shard_id) for _ in range(factor)]
        return self._lanes

    def _read(self, shard_id: str) -> int:
        """Read a shard once, after what was read before, and deal the records to its lanes;
        returns how many were read."""
        after = self._positions.get(shard_id)
        records = self.source.read(shard_id, after, self.source.read_limit)
        if records:
            self._positions[shard_id] = self.source.sequence_of(records[-1])
            lanes = self._lanes[shard_id]
            for record in records:
                read_after, after = after, self.source.sequence_of(record)
                if self.source.is_noop(record):
                    continue
                with self._lock:
                    self._read_after[after] = read_after
                digest = hashlib.md5(self.source.key_of(record).encode()).digest()
                lanes[int.from_bytes(digest[:4], "big") % len(lanes)].offer(record)
        return len(records)

    def _forget(self, record: dict[str, Any]) -> None:
        """A record is done (or given up on): it no longer holds its shard's checkpoint."""
        with self._lock:
            self._read_after.pop(self.source.sequence_of(record), None)

    def failure_message(
        self, shard_id: str, batch: list[dict[str, Any]], condition: str, attempts: int
    ) -> dict[str, Any]:
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
            "timestamp": datetime.fromtimestamp(self.clock(), UTC).isoformat(
                timespec="milliseconds"
            ),
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
        self.limit = mapping.config.batch_size  # smaller while bisecting
        self.attempts = 0  # retries of the batch at the head of the lane

    def offer(self, record: dict[str, Any]) -> None:
        with self.ready:
            self.pending.append(record)
            self.ready.notify()

    def empty(self) -> bool:
        with self.ready:
            return not self.pending and not self.busy

    def run(self) -> None:
        """Started: invoke each batch as it becomes ready, until the mapping stops."""
        stop = self.mapping._stop
        while not stop.is_set():
            with self.ready:
                batch, wait_s = self._take()
                if not batch:
                    self.ready.wait(min(wait_s, IDLE_WAIT_S))
                    continue
            _, backoff_s = self._attempt(batch)
            if backoff_s:
                stop.wait(backoff_s)

    def step(self) -> int:
        """Stepped: one invocation if a batch is ready; how many records it carried."""
        with self.ready:
            batch, _ = self._take()
        return self._attempt(batch)[0] if batch else 0

    def _take(self) -> tuple[list[dict[str, Any]], float]:
        """Under the lock: the batch to invoke now, marking the lane busy; or none, and how
        long until one may be ready."""
        if not self.pending:
            return [], IDLE_WAIT_S
        window = self.mapping.config.batching_window_s
        if window and len(self.pending) < self.limit:
            waited = self.mapping.clock() - self.mapping.source.arrival_of(self.pending[0])
            if waited < window:
                return [], window - waited
        self.busy = True
        return list(itertools.islice(self.pending, self.limit)), 0.0

    def _attempt(self, batch: list[dict[str, Any]]) -> tuple[int, float]:
        """Invoke the function with `batch` and act on the outcome as Lambda does. Returns how
        many records the function got, and how long to back off before the next attempt."""
        mapping, config = self.mapping, self.mapping.config
        batch = self._drop_expired(batch)
        if not batch:
            return 0, 0.0
        mapping.stats.add(invocations=1, delivered=len(batch))
        try:
            response = mapping.invoke({"Records": batch}) or {}
            failed = [f["itemIdentifier"] for f in response.get("batchItemFailures") or []]
        except Exception:  # a function error, however the invocation failed
            failed = None
        if failed == []:
            self._done(len(batch), batch)
            self.limit, self.attempts = config.batch_size, 0
            return len(batch), 0.0
        mapping.stats.add(retries=1)
        if failed is None and config.bisect_on_error and len(batch) > 1:
            # Split and retry each half; splitting does not count against the retries.
            self.limit = max(1, len(batch) // 2)
            return len(batch), 0.0
        self.attempts += 1
        done = 0
        if failed is not None:
            sequences = [mapping.source.sequence_of(r) for r in batch]
            first = min((s for s in failed if s in sequences), key=int, default=sequences[0])
            done = sequences.index(first)
            self._done(done, batch[:done])
        if 0 <= config.maximum_retry_attempts < self.attempts:
            rest = batch[done:]
            mapping.on_failure(
                mapping.failure_message(
                    self.shard_id, rest, "RetryAttemptsExhausted", self.attempts
                )
            )
            mapping.stats.add(sent_to_failure_destination=len(rest))
            self._done(len(rest), rest, completed=False)
            self.limit, self.attempts = config.batch_size, 0
            return len(batch), 0.0
        return len(batch), min(2.0, 0.1 * 2 ** min(self.attempts, 5))

    def _drop_expired(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        max_age = self.mapping.config.maximum_record_age_s
        if max_age < 0:
            return batch
        now = self.mapping.clock()
        expired = [r for r in batch if now - self.mapping.source.arrival_of(r) > max_age]
        if expired:
            self.mapping.on_failure(
                self.mapping.failure_message(self.shard_id, expired, "RecordAgeExceeded", 0)
            )
            self.mapping.stats.add(sent_to_failure_destination=len(expired))
            with self.ready:
                for record in expired:
                    self.pending.remove(record)
                    self.mapping._forget(record)
                self.busy = bool(len(expired) < len(batch))
        return [r for r in batch if r not in expired]

    def reset(self) -> None:
        """Forget what the lane holds (the mapping restarts and reads it again)."""
        with self.ready:
            self.pending.clear()
            self.busy = False
            self.limit, self.attempts = self.mapping.config.batch_size, 0

    def _done(self, count: int, records: list[dict[str, Any]], completed: bool = True) -> None:
        """Take `count` records off the lane; `completed` ones are reported to on_done."""
        with self.ready:
            for _ in range(count):
                self.mapping._forget(self.pending.popleft())
            self.busy = False
        if completed and records and self.mapping.on_done is not None:
            self.mapping.on_done(records)
