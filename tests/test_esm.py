"""EventSourceMapping, unit by unit: fake in-memory streams, a fake function, no moto.

Most tests start a real mapping (its poller and lane threads) over a fake one-shard source and
wait, with a timeout, for what it expects; every mapping is stopped at teardown. The stepped
tests step one by hand instead, on a fake clock, and check exactly what each step did. The
last ones step the mappings of both regions in one process (TwoRegions), on moto.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import pytest

from emulator.esm import SENDER_MAPPING, EventSourceMapping, MappingConfig
from emulator.functions import FunctionError
from emulator.stepped import TwoRegions
from emulator.stream_sources import DynamoDBStreamSource, KinesisSource
from tests.helpers import item, put, queue_messages
from tools.operations.redrive import classify
from tools.operations.stream_ranges import FailedBatch

SHARD = "shardId-000000000000"
KINESIS_ARN = "arn:aws-cn:kinesis:cn-north-1:000000000000:stream/replication"
DDB_ARN = "arn:aws-cn:dynamodb:cn-north-1:000000000000:table/user/stream/2024-01-01T00:00:00.000"
FUNCTION_ARN = "arn:aws-cn:lambda:cn-north-1:000000000000:function:replicator"
# Real sequence numbers are long numeric strings; these keep the same length as they grow.
FIRST_SEQUENCE = 49_590_338_271_490_256_608_559_692_538_361_571_095_921_575_989_136_588_898
FAST = 0.01  # poll interval for every test


# -- fake sources ----------------------------------------------------------------------


class _FakeStream:
    """One shard of records in memory; `append` adds records while a mapping reads it."""

    def _init_stream(self, arn: str) -> None:
        self.arn = arn
        self.records: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.next_sequence = FIRST_SEQUENCE

    def _next(self) -> str:
        self.next_sequence += 7  # gaps, like the real services
        return str(self.next_sequence)

    def shards(self) -> list[str]:
        return [SHARD]

    def read(self, shard_id: str, after: str | None, limit: int) -> list[dict[str, Any]]:
        assert shard_id == SHARD
        with self.lock:
            newer = [
                r
                for r in self.records
                if after is None or int(self.sequence_of(r)) > int(after)  # type: ignore[attr-defined]
            ]
        return newer[:limit]


class FakeKinesis(_FakeStream, KinesisSource):
    def __init__(self) -> None:  # no super(): there is no client
        self._init_stream(KINESIS_ARN)
        self.name = "replication"

    def append(self, key: str, arrival: float | None = None) -> str:
        """Put one record for partition `key`; returns its sequence number."""
        with self.lock:
            sequence = self._next()
            self.records.append(
                {
                    "kinesis": {
                        "kinesisSchemaVersion": "1.0",
                        "partitionKey": key,
                        "sequenceNumber": sequence,
                        "data": base64.b64encode(f"{key}@{sequence}".encode()).decode(),
                        "approximateArrivalTimestamp": time.time() if arrival is None else arrival,
                    },
                    "eventSource": "aws:kinesis",
                    "eventVersion": "1.0",
                    "eventID": f"{SHARD}:{sequence}",
                    "eventName": "aws:kinesis:record",
                    "awsRegion": "cn-north-1",
                    "eventSourceARN": KINESIS_ARN,
                }
            )
        return sequence


class FakeDynamoDBStream(_FakeStream, DynamoDBStreamSource):
    def __init__(self) -> None:
        self._init_stream(DDB_ARN)
        self.region = "cn-north-1"

    def append(
        self,
        event_name: str,
        key: str,
        new: dict[str, Any] | None = None,
        old: dict[str, Any] | None = None,
        created: int | None = None,
    ) -> str:
        keys = {"PK": {"S": key}}
        with self.lock:
            sequence = self._next()
            ddb: dict[str, Any] = {
                "ApproximateCreationDateTime": int(time.time()) if created is None else created,
                "Keys": keys,
                "SequenceNumber": sequence,
                "SizeBytes": 50,
                "StreamViewType": "NEW_AND_OLD_IMAGES",
            }
            if new is not None:
                ddb["NewImage"] = {**keys, **new}
            if old is not None:
                ddb["OldImage"] = {**keys, **old}
            self.records.append(
                {
                    "eventID": f"event-{sequence}",
                    "eventName": event_name,
                    "eventVersion": "1.1",
                    "eventSource": "aws:dynamodb",
                    "awsRegion": "cn-north-1",
                    "dynamodb": ddb,
                    "eventSourceARN": DDB_ARN,
                }
            )
        return sequence


def lane_of(key: str, lanes: int) -> int:
    """The lane the mappings deal a key's records into (esm.EventSourceMapping._read)."""
    return int.from_bytes(hashlib.md5(key.encode()).digest()[:4], "big") % lanes


# -- a fake function and the mapping around it -----------------------------------------


@dataclass
class Call:
    thread: int
    sequences: list[str]
    keys: list[str]
    at: float
    outcome: str = "running"  # then "ok", "partial" or "error"


class Harness:
    """A mapping over `source`, invoking a recording fake function.

    `respond(sequences)` decides each invocation: return a response, or raise FunctionError.
    """

    def __init__(
        self,
        source: _FakeStream,
        config: MappingConfig,
        respond: Callable[[list[str]], dict[str, Any] | None] | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.source = source
        self.respond = respond or (lambda sequences: None)
        self.lock = threading.Lock()
        self.calls: list[Call] = []
        self.failures: list[dict[str, Any]] = []
        self.done: list[list[str]] = []
        self.mapping = EventSourceMapping(
            "test-esm",
            source,  # type: ignore[arg-type]
            self.invoke,
            config,
            self.on_failure,
            function_arn=FUNCTION_ARN,
            on_done=self.on_done,
            clock=clock,
        )

    def start(self) -> Harness:
        self.mapping.start()
        return self

    def invoke(self, event: dict[str, Any]) -> dict[str, Any] | None:
        assert set(event) == {"Records"}
        batch = event["Records"]
        call = Call(
            thread=threading.get_ident(),
            sequences=[self.source.sequence_of(r) for r in batch],  # type: ignore[attr-defined]
            keys=[self.source.key_of(r) for r in batch],
            at=time.time(),
        )
        with self.lock:
            self.calls.append(call)
        try:
            response = self.respond(call.sequences)
        except FunctionError:
            call.outcome = "error"
            raise
        call.outcome = "partial" if (response or {}).get("batchItemFailures") else "ok"
        return response

    def on_failure(self, message: dict[str, Any]) -> None:
        json.dumps(message)  # it goes to SQS as JSON
        with self.lock:
            self.failures.append(message)

    def on_done(self, records: list[dict[str, Any]]) -> None:
        with self.lock:
            self.done.append([self.source.sequence_of(r) for r in records])  # type: ignore[attr-defined]

    # -- what happened, so far ---------------------------------------------------------

    def snapshot(self) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.outcome != "running"]

    def succeeded(self) -> list[str]:
        """Sequence numbers of the records in invocations that returned cleanly."""
        return [s for c in self.snapshot() if c.outcome == "ok" for s in c.sequences]

    def failed_over(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.failures)

    def done_sequences(self) -> list[str]:
        with self.lock:
            return [s for records in self.done for s in records]


def wait_until(condition: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or condition}")
        time.sleep(0.005)


@pytest.fixture
def harness():
    """Make harnesses; every mapping made is stopped, and its threads gone, at teardown."""
    made: list[Harness] = []

    def make(source, config, respond=None, clock=time.time) -> Harness:
        made.append(Harness(source, config, respond, clock))
        return made[-1]

    yield make
    for h in made:
        h.mapping.stop()
    for h in made:
        assert not [t for t in h.mapping._threads if t.is_alive()], "threads left running"


def config(**overrides: Any) -> MappingConfig:
    return MappingConfig(**{"poll_interval_s": FAST, **overrides})


def fails_on(poison: str) -> Callable[[list[str]], dict[str, Any] | None]:
    def respond(sequences: list[str]) -> dict[str, Any] | None:
        if poison in sequences:
            raise FunctionError(f"ValueError: cannot apply {poison}")
        return {"batchItemFailures": []}

    return respond


def iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat()


def check_failure_message(message, *, condition, batch_info, sequences, arrivals, arn):
    """The on-failure record Lambda sends for a stream mapping, field by field."""
    context = message["requestContext"]
    assert context["condition"] == condition
    assert context["functionArn"] == FUNCTION_ARN
    assert isinstance(context["requestId"], str) and context["requestId"]
    assert isinstance(context["approximateInvokeCount"], int)
    assert set(message["responseContext"]) >= {"statusCode", "executedVersion", "functionError"}
    assert message["version"] == "1.0"
    datetime.fromisoformat(message["timestamp"])
    other = {"KinesisBatchInfo", "DDBStreamBatchInfo"} - {batch_info}
    assert not other & set(message), message
    info = message[batch_info]
    assert info == {
        "shardId": SHARD,
        "startSequenceNumber": sequences[0],
        "endSequenceNumber": sequences[-1],
        "approximateArrivalOfFirstRecord": iso(arrivals[0]),
        "approximateArrivalOfLastRecord": iso(arrivals[-1]),
        "batchSize": len(sequences),
        "streamArn": arn,
    }


# -- 1. delivery, batch size, per-key order across lanes -------------------------------


def test_every_record_delivered_in_key_order_across_lanes(harness):
    source = FakeKinesis()
    keys = [f"user-{i}" for i in range(16)]
    lanes = {int.from_bytes(hashlib.md5(k.encode()).digest()[:4], "big") % 4 for k in keys}
    assert len(lanes) > 1, "the test's keys should spread over several lanes"
    h = harness(source, config(batch_size=5, parallelization_factor=4)).start()

    appended: dict[str, list[str]] = {k: [] for k in keys}
    for burst in range(4):  # keep writing while the mapping reads
        for _ in range(2):
            for key in keys:
                appended[key].append(source.append(key))
        time.sleep(0.02 * burst)
    total = sum(len(v) for v in appended.values())
    wait_until(lambda: len(h.succeeded()) >= total, what=f"{total} records")
    wait_until(h.mapping.idle, what="idle")

    calls = h.snapshot()
    assert all(1 <= len(c.sequences) <= 5 for c in calls)
    delivered = h.succeeded()
    assert sorted(delivered) == sorted(s for v in appended.values() for s in v)  # exactly once
    for key in keys:
        in_order = [s for c in calls for k, s in zip(c.keys, c.sequences, strict=True) if k == key]
        assert in_order == appended[key], key
        # One key, one lane: all its invocations come from the same lane thread.
        assert len({c.thread for c in calls if key in c.keys}) == 1, key
    assert len({c.thread for c in calls}) > 1, "only one lane was used"
    assert h.mapping.stats.delivered == total
    assert h.mapping.stats.invocations == len(calls)
    assert h.failed_over() == []


# -- 2. ReportBatchItemFailures --------------------------------------------------------


def test_batch_item_failure_retries_from_the_reported_record(harness):
    source = FakeKinesis()
    sequences = [source.append("user-1") for _ in range(6)]
    reported = []

    def respond(batch):
        if not reported:
            reported.append(batch)
            return {"batchItemFailures": [{"itemIdentifier": sequences[2]}]}
        return {"batchItemFailures": []}

    # A window as long as the test keeps the first batch whole (all six records).
    h = harness(source, config(batch_size=6, batching_window_s=0.3), respond).start()
    wait_until(lambda: sequences[-1] in h.succeeded(), what="the last record")
    wait_until(h.mapping.idle, what="idle")

    calls = h.snapshot()
    assert [c.sequences for c in calls] == [sequences, sequences[2:]]
    assert [c.outcome for c in calls] == ["partial", "ok"]
    assert h.done_sequences() == sequences  # records 1-2 done once, then 3-6
    assert h.done == [sequences[:2], sequences[2:]]
    assert h.failed_over() == []


# -- 3. function errors, bisection, retries exhausted ----------------------------------


@pytest.mark.parametrize(
    ("count", "poison_at"),
    [(8, 5), (16, 0)],
    ids=["8-records-poison-6th", "16-records-poison-first"],
)
def test_bisect_isolates_a_poison_record(harness, count, poison_at):
    source = FakeKinesis()
    sequences = [source.append("user-1") for _ in range(count)]
    poison = sequences[poison_at]
    arrival = source.records[poison_at]["kinesis"]["approximateArrivalTimestamp"]
    cfg = config(
        batch_size=count,
        batching_window_s=0.5,  # first batch whole
        bisect_on_error=True,
        maximum_retry_attempts=3,
    )
    h = harness(source, cfg, fails_on(poison)).start()
    wait_until(h.failed_over, timeout=8, what="the on-failure message")
    wait_until(lambda: sequences[-1] in h.succeeded(), what="the last record")
    wait_until(h.mapping.idle, what="idle")
    healthy = [s for s in sequences if s != poison]

    calls = h.snapshot()
    assert calls[0].sequences == sequences and calls[0].outcome == "error"
    assert len(calls[1].sequences) == count // 2, "the failed batch was not halved"
    with_poison = [c for c in calls if poison in c.sequences]
    assert all(c.outcome == "error" for c in with_poison)
    sizes = [len(c.sequences) for c in with_poison]
    assert with_poison[-1].sequences == [poison], f"poison never alone; its batches: {sizes}"
    # Every healthy record succeeded exactly once, in order; none went to on_failure.
    assert h.succeeded() == healthy
    [message] = h.failed_over()
    check_failure_message(
        message,
        condition="RetryAttemptsExhausted",
        batch_info="KinesisBatchInfo",
        sequences=[poison],
        arrivals=[arrival],
        arn=KINESIS_ARN,
    )
    # The first invocation and MaximumRetryAttempts retries, at least.
    invoke_count = message["requestContext"]["approximateInvokeCount"]
    assert cfg.maximum_retry_attempts + 1 <= invoke_count <= len(with_poison)
    assert h.mapping.stats.sent_to_failure_destination == 1


# -- 4. MaximumRecordAgeInSeconds ------------------------------------------------------


def test_records_older_than_the_maximum_age_go_to_on_failure(harness):
    source = FakeKinesis()
    old_arrival = time.time() - 120
    old = [source.append("user-1", arrival=old_arrival + i) for i in range(3)]
    fresh = [source.append("user-1") for _ in range(3)]
    h = harness(source, config(batch_size=10, maximum_record_age_s=60)).start()
    wait_until(lambda: set(h.succeeded()) >= set(fresh), what="the fresh records")
    wait_until(h.mapping.idle, what="idle")

    assert h.succeeded() == fresh
    assert not {s for c in h.snapshot() for s in c.sequences} & set(old), "old record invoked"
    messages = h.failed_over()
    assert messages
    assert {m["requestContext"]["condition"] for m in messages} == {"RecordAgeExceeded"}
    assert sum(m["KinesisBatchInfo"]["batchSize"] for m in messages) == len(old)
    assert messages[0]["KinesisBatchInfo"]["startSequenceNumber"] == old[0]
    assert messages[-1]["KinesisBatchInfo"]["endSequenceNumber"] == old[-1]
    assert messages[0]["KinesisBatchInfo"]["approximateArrivalOfFirstRecord"] == iso(old_arrival)
    assert h.mapping.stats.sent_to_failure_destination == len(old)
    assert h.done_sequences() == fresh


# -- 5. MaximumBatchingWindowInSeconds -------------------------------------------------


def test_batching_window_gathers_trickling_records(harness):
    source = FakeKinesis()
    h = harness(source, config(batch_size=100, batching_window_s=0.3)).start()
    first = time.time()
    sequences = []
    for _ in range(10):
        sequences.append(source.append("user-1"))
        time.sleep(0.015)
    wait_until(lambda: len(h.succeeded()) == len(sequences), what="10 records")

    calls = h.snapshot()
    assert len(calls) <= 2, [len(c.sequences) for c in calls]
    assert len(calls[0].sequences) >= 8
    assert calls[0].at - first >= 0.25, "delivered before the batching window ended"
    assert h.succeeded() == sequences


def test_full_batch_does_not_wait_for_the_window(harness):
    source = FakeKinesis()
    h = harness(source, config(batch_size=100, batching_window_s=1.0)).start()
    appended = time.time()
    sequences = [source.append(f"user-{i % 7}") for i in range(150)]
    wait_until(lambda: len(h.succeeded()) == 150, what="150 records")

    first, second = h.snapshot()
    assert first.sequences == sequences[:100]
    assert first.at - appended < 0.5, "a full batch waited for the window"
    assert second.sequences == sequences[100:]
    assert second.at - appended >= 0.9, "a partial batch did not wait for the window"


# -- 6. DynamoDB Streams specifics -----------------------------------------------------


def test_dynamodb_noop_modify_is_never_delivered(harness):
    source = FakeDynamoDBStream()
    v1, v2 = {"name": {"S": "Ann"}}, {"name": {"S": "Bea"}}
    insert = source.append("INSERT", "u1", new=v1)
    noop = source.append("MODIFY", "u1", new=v1, old=v1)  # moto: a write that changed nothing
    modify = source.append("MODIFY", "u1", new=v2, old=v1)
    remove = source.append("REMOVE", "u1", old=v2)
    other = source.append("INSERT", "u2", new=v1)
    h = harness(source, config(batch_size=2, poll_interval_s=0.02)).start()
    wait_until(lambda: {remove, other} <= set(h.succeeded()), what="the last records")
    wait_until(h.mapping.idle, what="idle")

    delivered = h.succeeded()
    assert noop not in delivered
    assert [s for s in delivered if s != other] == [insert, modify, remove]
    assert sorted(delivered) == sorted([insert, modify, remove, other])


def test_dynamodb_on_failure_message_uses_ddb_stream_batch_info(harness):
    source = FakeDynamoDBStream()
    created = int(time.time())
    poison = source.append("INSERT", "u1", new={"name": {"S": "Ann"}}, created=created)
    after = source.append("INSERT", "u2", new={"name": {"S": "Bea"}})
    cfg = config(batch_size=1, maximum_retry_attempts=0)
    h = harness(source, cfg, fails_on(poison)).start()
    wait_until(lambda: after in h.succeeded(), what="the record after the poison one")

    [message] = h.failed_over()
    check_failure_message(
        message,
        condition="RetryAttemptsExhausted",
        batch_info="DDBStreamBatchInfo",
        sequences=[poison],
        arrivals=[created],
        arn=DDB_ARN,
    )
    assert message["requestContext"]["approximateInvokeCount"] == 1


# -- 7. on_done ------------------------------------------------------------------------


def test_on_done_gets_only_records_completed_successfully(harness):
    source = FakeKinesis()
    good_before = [source.append("user-1") for _ in range(2)]
    poison = source.append("user-1")
    good_after = [source.append("user-1") for _ in range(2)]
    cfg = config(batch_size=1, maximum_retry_attempts=0)
    h = harness(source, cfg, fails_on(poison)).start()
    wait_until(lambda: good_after[-1] in h.succeeded(), what="the last record")
    wait_until(h.mapping.idle, what="idle")

    assert len(h.failed_over()) == 1  # the poison record went to on_failure...
    assert h.succeeded() == good_before + good_after
    assert poison not in h.done_sequences(), "on_done got the record sent to on_failure"
    assert h.done_sequences() == good_before + good_after


# -- 8. stop() and idle() --------------------------------------------------------------


def test_idle_once_processed_and_stop_is_prompt(harness):
    source = FakeKinesis()
    release = threading.Event()

    def respond(batch):
        assert release.wait(5), "never released"
        return None

    h = harness(source, config(batch_size=10), respond).start()
    assert h.mapping.idle()
    sequences = [source.append("user-1") for _ in range(3)]
    wait_until(lambda: h.calls, what="the first invocation")
    assert not h.mapping.idle(), "idle while a batch is in flight"
    release.set()
    wait_until(lambda: len(h.succeeded()) == 3, what="3 records")
    wait_until(h.mapping.idle, timeout=2, what="idle")
    assert h.succeeded() == sequences

    started = time.monotonic()
    h.mapping.stop()
    assert time.monotonic() - started < 1.0
    assert not [t for t in h.mapping._threads if t.is_alive()]


def test_stop_interrupts_retry_backoff(harness):
    source = FakeKinesis()
    poison = source.append("user-1")
    cfg = config(batch_size=10, maximum_retry_attempts=-1)
    h = harness(source, cfg, fails_on(poison)).start()
    wait_until(lambda: len(h.snapshot()) >= 3, what="3 failed invocations")
    assert not h.mapping.idle()

    started = time.monotonic()
    h.mapping.stop()  # the lane is in a 0.8 s backoff now
    assert time.monotonic() - started < 0.5
    assert not [t for t in h.mapping._threads if t.is_alive()]
    assert h.failed_over() == []


# -- 9. stepped by hand ----------------------------------------------------------------


class FakeClock:
    """Epoch seconds that move only when a test says so."""

    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def step_until_idle(h: Harness, max_steps: int = 100) -> list[list[Call]]:
    """Step the mapping until it has nothing left; the calls each step made."""
    steps: list[list[Call]] = []
    while len(steps) < max_steps:
        before = len(h.calls)
        invoked = h.mapping.step()
        steps.append(h.calls[before:])
        assert invoked == sum(len(c.sequences) for c in steps[-1])
        if not invoked and h.mapping.idle():
            return steps
    pytest.fail(f"not idle after {max_steps} steps")


def stepped_run(keys: list[str]) -> tuple[list[list[list[str]]], dict[str, list[str]], Harness]:
    """Two rounds of writes to a four-lane mapping, stepped to the end after each."""
    source = FakeKinesis()
    h = Harness(source, config(batch_size=2, parallelization_factor=4), clock=FakeClock())
    appended: dict[str, list[str]] = {k: [] for k in keys}
    steps = []
    for _ in range(2):  # records that arrive between steps are read at the next one
        for key in keys * 3:
            appended[key].append(source.append(key))
        steps += step_until_idle(h)
    return [[c.sequences for c in calls] for calls in steps], appended, h


def test_stepping_runs_each_lane_once_per_step_in_order_in_the_callers_thread():
    keys = [f"user-{i}" for i in range(16)]
    steps, appended, h = stepped_run(keys)

    calls = h.snapshot()
    assert {c.thread for c in calls} == {threading.get_ident()}
    assert all(len(invocations) <= 4 for invocations in steps), "a lane ran twice in a step"
    assert max(len(invocations) for invocations in steps) == 4, "the lanes never all ran"
    assert all(1 <= len(c.sequences) <= 2 for c in calls)
    assert sorted(h.succeeded()) == sorted(s for v in appended.values() for s in v)
    for key in keys:
        in_order = [s for c in calls for k, s in zip(c.keys, c.sequences, strict=True) if k == key]
        assert in_order == appended[key], key
    # The same writes, stepped again: the same invocations, in the same order.
    assert stepped_run(keys)[0] == steps


def test_a_started_mapping_cannot_be_stepped(harness):
    h = harness(FakeKinesis(), config()).start()
    with pytest.raises(RuntimeError, match="started"):
        h.mapping.step()


def test_stepping_retries_from_the_reported_record_at_the_next_step():
    source = FakeKinesis()
    sequences = [source.append("user-1") for _ in range(6)]
    responses = iter([{"batchItemFailures": [{"itemIdentifier": sequences[2]}]}])
    h = Harness(source, config(batch_size=6), lambda batch: next(responses, None), FakeClock())

    assert h.mapping.step() == 6
    assert h.done == [sequences[:2]]
    assert h.mapping.step() == 4
    assert [c.sequences for c in h.snapshot()] == [sequences, sequences[2:]]
    assert h.done == [sequences[:2], sequences[2:]]
    assert h.mapping.step() == 0 and h.mapping.idle()


def test_a_restart_resumes_each_shard_at_its_oldest_record_not_yet_done():
    source = FakeKinesis()
    # Keys landing in different lanes; "stuck" keeps failing until the restart.
    stuck, other = (
        "user-1",
        next(f"user-{i}" for i in range(2, 50) if lane_of(f"user-{i}", 2) != lane_of("user-1", 2)),
    )
    first = source.append(other)
    held = source.append(stuck)
    later = [source.append(other), source.append(stuck), source.append(other)]
    failing = {held}

    def respond(sequences):
        failed = [s for s in sequences if s in failing]
        return {"batchItemFailures": [{"itemIdentifier": s} for s in failed[:1]]}

    h = Harness(source, config(batch_size=10, parallelization_factor=2), respond, FakeClock())
    h.mapping.step()
    assert sorted(s for batch in h.done for s in batch) == sorted([first, later[0], later[2]])
    # The restart goes back to the stuck record: the other lane's later records come again,
    # the first one (done before anything was stuck) does not.
    assert h.mapping.restart() == 2
    failing.clear()
    step_until_idle(h)
    again = [s for c in h.snapshot()[-2:] for s in c.sequences]
    assert sorted(again) == sorted([held, later[1], later[0], later[2]])
    assert first not in again
    assert h.mapping.idle()


@pytest.mark.parametrize("service", ["kinesis", "dynamodb"])
def test_stepping_bisects_to_the_poison_record_and_sends_aws_on_failure_message(service):
    clock = FakeClock()
    if service == "kinesis":
        source: _FakeStream = FakeKinesis()
        sequences = [source.append("user-1", arrival=clock.now) for _ in range(8)]
        batch_info, function = "KinesisBatchInfo", "replicator"
    else:
        source = FakeDynamoDBStream()
        created = int(clock.now)
        sequences = [
            source.append("INSERT", f"u{i}", new={"n": {"N": str(i)}}, created=created)
            for i in range(8)
        ]
        batch_info, function = "DDBStreamBatchInfo", "sender"
    poison = sequences[5]
    cfg = config(batch_size=8, bisect_on_error=True, maximum_retry_attempts=3)
    h = Harness(source, cfg, fails_on(poison), clock)

    steps = step_until_idle(h)
    assert all(len(invocations) == 1 for invocations in steps[:-1]), "one lane: one call a step"
    calls = h.snapshot()
    assert calls[0].sequences == sequences and calls[0].outcome == "error"
    assert len(calls[1].sequences) == 4, "the failed batch was not halved"
    with_poison = [c for c in calls if poison in c.sequences]
    assert all(c.outcome == "error" for c in with_poison)
    assert with_poison[-1].sequences == [poison]
    assert h.succeeded() == [s for s in sequences if s != poison]  # each once, in order
    [message] = h.failed_over()
    check_failure_message(
        message,
        condition="RetryAttemptsExhausted",
        batch_info=batch_info,
        sequences=[poison],
        arrivals=[int(clock.now) if service == "dynamodb" else clock.now],
        arn=source.arn,
    )
    # Stepped, the count is exact: the first invocation of the poison alone and 3 retries.
    assert message["requestContext"]["approximateInvokeCount"] == 4
    assert message["timestamp"] == datetime.fromtimestamp(clock.now, UTC).isoformat(
        timespec="milliseconds"
    )
    # What the redrive tool reads back from the queue.
    assert classify(json.dumps(message)) == FailedBatch(
        function, source.arn, SHARD, int(poison), int(poison), 1, service
    )


def test_stepping_reads_record_age_and_the_batching_window_from_the_clock():
    clock = FakeClock()
    source = FakeKinesis()
    cfg = config(batch_size=10, batching_window_s=5, maximum_record_age_s=60)
    h = Harness(source, cfg, clock=clock)
    first = [source.append("user-1", arrival=clock.now) for _ in range(3)]

    assert h.mapping.step() == 0, "invoked before the batching window ended"
    clock.now += 4.9
    assert h.mapping.step() == 0
    clock.now += 0.1
    assert h.mapping.step() == 3
    assert h.succeeded() == first

    stale = [source.append("user-1", arrival=clock.now) for _ in range(2)]
    clock.now += 61  # older than the maximum age before they are ever invoked
    assert h.mapping.step() == 0
    assert h.mapping.idle()
    [message] = h.failed_over()
    assert message["requestContext"]["condition"] == "RecordAgeExceeded"
    info = message["KinesisBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"]) == (stale[0], stale[-1])
    assert message["timestamp"] == datetime.fromtimestamp(clock.now, UTC).isoformat(
        timespec="milliseconds"
    )
    assert h.succeeded() == first


# -- 10. both regions, stepped by hand -------------------------------------------------


def test_hand_stepped_regions_bisect_to_a_poison_record_and_send_aws_on_failure_message(aws):
    sender_mapping = replace(SENDER_MAPPING, parallelization_factor=1, maximum_retry_attempts=2)
    regions = TwoRegions(sender_mapping=sender_mapping)
    cn, sg = regions.china, regions.world
    [mapping] = cn.sender_mappings
    ship = mapping.invoke

    def refusing_poison(event):
        if any(r["dynamodb"]["Keys"] == {"PK": {"S": "poison"}} for r in event["Records"]):
            raise ValueError("cannot ship poison")
        return ship(event)

    mapping.invoke = refusing_poison
    for key in ("a", "b", "poison", "c"):
        put(cn, key, region=cn.name)
    regions.settle()

    assert [k for k in ("a", "b", "poison", "c") if item(sg, k)] == ["a", "b", "c"]
    [message] = queue_messages(cn, cn.region.sender_queue_url)
    context = message["requestContext"]
    assert context["condition"] == "RetryAttemptsExhausted"
    assert context["functionArn"].endswith(f":function:sender-{cn.name}")
    assert context["approximateInvokeCount"] == 3  # the poison alone, then 2 retries
    info = message["DDBStreamBatchInfo"]
    [poison] = [
        r
        for r in mapping.source.read(info["shardId"], None, 100)
        if r["dynamodb"]["Keys"] == {"PK": {"S": "poison"}}
    ]
    sequence = int(poison["dynamodb"]["SequenceNumber"])
    assert classify(json.dumps(message)) == FailedBatch(
        "sender", mapping.source.arn, info["shardId"], sequence, sequence, 1
    )
    assert mapping.stats.sent_to_failure_destination == 1
    assert queue_messages(sg, sg.region.replicator_queue_url) == []
