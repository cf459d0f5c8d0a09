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

from emulator import events

Handler = Callable[[dict[str, Any]], dict[str, Any] | None]


@dataclass
class _Shard:
    shard_id: str
    checkpoint: str | None = None  # the last sequence number fully done
    attempts: int = 0


class _Source:
    """Reads one stream's shards from a checkpoint; subclasses know the service."""

    def shards(self) -> list[str]:
        raise NotImplementedError

    def read(self, shard_id: str, after: str | None, limit: int) -> list[dict[str, Any]]:
        raise NotImplementedError

    def sequence_of(self, record: dict[str, Any]) -> str:
        raise NotImplementedError


class DynamoDBStreamSource(_Source):
    def __init__(self, client: Any, stream_arn: str, region: str):
        self.client, self.arn, self.region = client, stream_arn, region

    def shards(self) -> list[str]:
        description = self.client.describe_stream(StreamArn=self.arn)["StreamDescription"]
        return [s["ShardId"] for s in description["Shards"]]

    def read(self, shard_id, after, limit):
        position = (
            {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": after}
            if after
            else {"ShardIteratorType": "TRIM_HORIZON"}
        )
        iterator = self.client.get_shard_iterator(StreamArn=self.arn, ShardId=shard_id, **position)
        records = self.client.get_records(ShardIterator=iterator["ShardIterator"], Limit=limit)
        return [events.dynamodb_record(r, self.arn, self.region) for r in records["Records"]]

    def sequence_of(self, record):
        return record["dynamodb"]["SequenceNumber"]


class KinesisSource(_Source):
    def __init__(self, client: Any, stream_name: str, stream_arn: str, region: str):
        self.client, self.name, self.arn, self.region = client, stream_name, stream_arn, region

    def shards(self) -> list[str]:
        return [s["ShardId"] for s in self.client.list_shards(StreamName=self.name)["Shards"]]

    def read(self, shard_id, after, limit):
        position = (
            {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": after}
            if after
            else {"ShardIteratorType": "TRIM_HORIZON"}
        )
        iterator = self.client.get_shard_iterator(
            StreamName=self.name, ShardId=shard_id, **position
        )
        records = self.client.get_records(ShardIterator=iterator["ShardIterator"], Limit=limit)
        return [
            events.kinesis_record(r, self.arn, shard_id, self.region) for r in records["Records"]
        ]

    def sequence_of(self, record):
        return record["kinesis"]["sequenceNumber"]


@dataclass
class Mapping:
    source: _Source
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
