"""The one adapter over Powertools' batch internals (replication/batch.py): the contract it
relies on, so that an upgrade of Powertools that changes them fails here, named, first."""

from __future__ import annotations

import base64
import inspect
import re
import threading
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from replication.batch import KeyOrderedBatchProcessor

ROOT = Path(__file__).resolve().parent.parent


def pinned(requirement: str, text: str) -> str:
    match = re.search(rf"^{re.escape(requirement)}==([^\s#]+)", text, re.MULTILINE)
    assert match, f"{requirement} is not pinned"
    return match.group(1)


def test_powertools_is_pinned_where_it_is_vendored_and_where_it_is_tested():
    vendored = pinned("aws-lambda-powertools", (ROOT / "lambda" / "requirements.txt").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    tested = pinned("aws-lambda-powertools", "\n".join(project["dependencies"]))
    assert vendored == tested == version("aws-lambda-powertools")


def test_the_private_methods_the_adapter_calls_are_there_with_their_signatures():
    process_record = inspect.signature(BatchProcessor._process_record)
    assert list(process_record.parameters) == ["self", "record"]
    to_batch_type = inspect.signature(BatchProcessor._to_batch_type)
    assert {"record", "event_type"} <= set(to_batch_type.parameters)
    failure_handler = inspect.signature(BatchProcessor.failure_handler)
    assert list(failure_handler.parameters) == ["self", "record", "exception"]
    assert "raise_on_entire_batch_failure" in inspect.signature(BatchProcessor.__init__).parameters


def kinesis(key: str, sequence: int) -> dict:
    return {
        "eventID": f"shardId-000000000000:{sequence}",
        "kinesis": {
            "partitionKey": key,
            "sequenceNumber": str(sequence),
            "data": base64.b64encode(f"{key}:{sequence}".encode()).decode(),
        },
    }


def processor(concurrency: int = 4) -> KeyOrderedBatchProcessor:
    return KeyOrderedBatchProcessor(
        EventType.KinesisDataStreams, lambda raw: raw["kinesis"]["partitionKey"], concurrency
    )


def test_run_reports_failed_records_by_sequence_number_and_keeps_each_keys_order():
    seen: dict[str, list[int]] = {}
    lock = threading.Lock()

    def handler(record):
        raw = record.raw_event
        key, sequence = raw["kinesis"]["partitionKey"], int(raw["kinesis"]["sequenceNumber"])
        with lock:
            seen.setdefault(key, []).append(sequence)
        if sequence == 3:
            raise RuntimeError("record 3 fails")
        return "ok"

    records = [kinesis("a" if i % 2 else "b", i) for i in range(1, 9)]
    outcome = processor().run(records, handler)

    assert outcome.response == {"batchItemFailures": [{"itemIdentifier": "3"}]}
    assert outcome.failed == frozenset({id(records[2])})
    assert [str(e) for e in outcome.errors] == ["record 3 fails"]
    assert seen == {"a": [1, 3, 5, 7], "b": [2, 4, 6, 8]}
    assert not outcome.all_failed


def test_a_batch_wide_step_can_fail_records_that_passed():
    records = [kinesis("a", 1), kinesis("b", 2)]
    adapter = processor()
    outcome = adapter.run(
        records,
        lambda record: "ok",
        after=lambda: adapter.mark_failed([records[1]], RuntimeError("not shipped")),
    )
    assert outcome.response == {"batchItemFailures": [{"itemIdentifier": "2"}]}
    assert outcome.failed == frozenset({id(records[1])})


def test_a_batch_that_failed_whole_is_reported_not_raised_until_asked():
    records = [kinesis("a", 1), kinesis("b", 2)]

    def failing(record):
        raise ValueError("no")

    outcome = processor().run(records, failing)
    assert outcome.all_failed and len(outcome.response["batchItemFailures"]) == 2
    with pytest.raises(BatchProcessingError, match="All 2 records failed"):
        outcome.raise_if_all_failed()


def test_the_adapter_can_run_batch_after_batch():
    adapter = processor()
    for sequence in (1, 2, 3):
        outcome = adapter.run([kinesis("a", sequence)], lambda record: "ok")
        assert outcome.response == {"batchItemFailures": []}
