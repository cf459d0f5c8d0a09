"""Event source mappings run step by step: read a batch, invoke, checkpoint.

Checkpointing follows Lambda's rules for stream sources with ReportBatchItemFailures: a
clean response advances past the batch; reported failures restart the next batch at the
lowest failed sequence number; an exception retries the whole batch. After
`max_retries` retries of one batch, its metadata goes to the on-failure queue (as Lambda
sends it) and the mapping moves on.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from emulator.stream_sources import StreamSource

Handler = Callable[[dict[str, Any]], dict[str, Any] | None]


@dataclass
class _Shard:
    shard_id: str
    checkpoint: str | None = None  # the last sequence number fully done
    attempts: int = 0


@dataclass
class Mapping:
    source: StreamSource
    handler: Handler
    batch_size: int = 500
    max_retries: int = 10
    on_failure: Callable[[dict[str, Any]], None] | None = None
    shards: dict[str, _Shard] = field(default_factory=dict)
    invocations: int = 0

    def poll(self) -> int:
        """Deliver at most one batch per shard; returns how many records were delivered."""
        delivered = 0
        for shard_id in self.source.shards():
            shard = self.shards.setdefault(shard_id, _Shard(shard_id))
            batch = self.source.read(shard_id, shard.checkpoint, self.batch_size)
            if batch:
                delivered += len(batch)
                self._invoke(shard, batch)
        return delivered

    def drain(self, max_polls: int = 1000) -> int:
        total = 0
        for _ in range(max_polls):
            count = self.poll()
            total += count
            if not count:
                return total
        raise RuntimeError(f"stream not drained after {max_polls} polls")

    def _invoke(self, shard: _Shard, batch: list[dict[str, Any]]) -> None:
        self.invocations += 1
        sequences = [self.source.sequence_of(r) for r in batch]
        try:
            response = self.handler({"Records": batch}) or {}
            failures = [f["itemIdentifier"] for f in response.get("batchItemFailures", [])]
        except Exception:
            failures = [sequences[0]]
        if not failures:
            shard.checkpoint, shard.attempts = sequences[-1], 0
            return
        first_failed = min(failures, key=int)
        index = sequences.index(first_failed)
        shard.attempts += 1
        if shard.attempts > self.max_retries:
            self._send_to_failure_destination(shard, sequences[index], sequences[-1], len(batch))
            shard.checkpoint, shard.attempts = sequences[-1], 0
        elif index:
            # Records before the first failure are done; the retry starts at the failure.
            shard.checkpoint, shard.attempts = sequences[index - 1], 0

    def _send_to_failure_destination(self, shard, first, last, size) -> None:
        if self.on_failure is not None:
            self.on_failure(
                {
                    "requestContext": {"condition": "RetryAttemptsExhausted"},
                    "timestamp": datetime.now(UTC).isoformat(),
                    "batchInfo": {
                        "shardId": shard.shard_id,
                        "startSequenceNumber": first,
                        "endSequenceNumber": last,
                        "batchSize": size,
                    },
                }
            )


def sqs_destination(sqs: Any, queue_url: str) -> Callable[[dict[str, Any]], None]:
    return lambda message: sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(message))
