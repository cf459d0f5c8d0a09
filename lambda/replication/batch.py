"""Powertools' partial-batch processor, run concurrently across item keys: the one adapter.

Records of different items are independent, so they are processed in parallel; records of one
item keep their stream order. A batch of 500 changes then costs about as many round trips as
its busiest item has changes, not 500.

This is the only module that knows Powertools' batch internals: it calls two of its private
methods (`_process_record`, `_to_batch_type`) and its failure bookkeeping. The version is pinned
(lambda/requirements.txt and pyproject.toml), and tests/test_batch_adapter.py checks the
contract, so an upgrade that changes them fails there first. Everything else uses `run`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError


@dataclass(frozen=True)
class BatchOutcome:
    """What a batch came to, as the Lambda response and per record."""

    response: dict[str, Any]  # {"batchItemFailures": [{"itemIdentifier": ...}, ...]}
    failed: frozenset[int]  # id() of each raw record that failed
    errors: tuple[BaseException, ...]
    records: int

    @property
    def all_failed(self) -> bool:
        return self.records > 0 and len(self.failed) == self.records

    def raise_if_all_failed(self) -> None:
        """Lambda's way of saying it: a function error, so the mapping retries (and bisects)."""
        if self.all_failed:
            raise BatchProcessingError(
                msg=f"All {self.records} records failed processing.",
                child_exceptions=[(type(e), e, e.__traceback__) for e in self.errors],
            )


class KeyOrderedBatchProcessor(BatchProcessor):
    def __init__(
        self,
        event_type: EventType,
        key_of: Callable[[dict[str, Any]], str],
        concurrency: int,
        logger: Any = None,
    ):
        super().__init__(event_type=event_type, raise_on_entire_batch_failure=False, logger=logger)
        self._key_of = key_of
        self.concurrency = concurrency
        self._executor: ThreadPoolExecutor | None = None
        self._executor_lock = threading.Lock()

    def run(
        self,
        records: list[dict[str, Any]],
        handler: Callable[[Any], Any],
        after: Callable[[], None] | None = None,
    ) -> BatchOutcome:
        """Process `records` with `handler` (per record), then `after` (a batch-wide step that
        may mark_failed records), and say how it went. Exceptions from `after` propagate."""
        with self(records=records, handler=handler):
            self.process()
            if after is not None:
                after()
        return BatchOutcome(
            response=self.response(),
            failed=frozenset(id(message.raw_event) for message in self.fail_messages),
            errors=tuple(info[1] for info in self.exceptions if info and info[1] is not None),
            records=len(records),
        )

    def process(self) -> list[tuple]:
        groups: dict[Any, list[dict[str, Any]]] = {}
        for position, record in enumerate(self.records):
            try:
                key = self._key_of(record)
            except Exception:
                # Unreadable: a group of its own; the record handler reports it.
                key = ("unreadable", position)
            groups.setdefault(key, []).append(record)
        if self.concurrency <= 1 or len(groups) <= 1:
            return [result for group in groups.values() for result in self._process_group(group)]
        futures = [self._pool().submit(self._process_group, group) for group in groups.values()]
        return [result for future in futures for result in future.result()]

    def mark_failed(self, records: list[dict[str, Any]], error: BaseException) -> None:
        """Report records that passed the per-record handler but failed a batch-wide step
        (shipping, a tombstone check), so the mapping retries them."""
        failing = {id(record) for record in records}
        self.success_messages[:] = [m for m in self.success_messages if id(m) not in failing]
        for record in records:
            self.failure_handler(
                record=self._to_batch_type(record=record, event_type=self.event_type),
                exception=(type(error), error, error.__traceback__),
            )

    def _process_group(self, group: list[dict[str, Any]]) -> list[tuple]:
        return [self._process_record(record) for record in group]

    def _pool(self) -> ThreadPoolExecutor:
        with self._executor_lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=self.concurrency, thread_name_prefix="apply"
                )
            return self._executor
