"""A failed batch's records, read again from its stream: the on-failure record names only a
shard and a sequence range, so the records are fetched from there while the stream still holds
them, in the shape the function receives."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from deployment import events
from tools.operations.sides import Side

EMPTY_PAGES = 5  # empty GetRecords pages in a row that mean the shard has nothing further

# What the stream services answer when the records (or the stream) are gone.
LOST_ERRORS = {
    "TrimmedDataAccessException": "trimmed: older than the stream's retention",
    "ExpiredIteratorException": "the shard iterator expired",
    "ResourceNotFoundException": "the stream or shard no longer exists",
    "InvalidArgumentException": "the shard does not hold this sequence number",
}


@dataclass(frozen=True)
class FailedBatch:
    """An on-failure record: a batch the mapping gave up on, by its place in the stream."""

    function: str  # who replays it: the sender or the replicator
    stream_arn: str
    shard_id: str
    start: int
    end: int
    size: int
    # Where the records are read again: a table's DynamoDB stream, or a Kinesis stream (the
    # replication stream, or a capture stream the sender reads).
    service: str = "dynamodb"

    @property
    def subject(self) -> str:
        return f"{self.shard_id} {self.start}..{self.end} ({self.size} records)"


class RangeLost(Exception):
    """The stream no longer holds all of a failed batch's records."""


def _sequence(record: dict[str, Any]) -> int:
    """A raw record's sequence number, from either service, as an integer (they are
    decimal strings of varying length, so comparing them as text would be wrong)."""
    return int(
        record["dynamodb"]["SequenceNumber"] if "dynamodb" in record else record["SequenceNumber"]
    )


def collect_range(batch: FailedBatch, pages: Iterator[tuple[list[dict], bool]]) -> list[dict]:
    """The records from `batch.start` to `batch.end`, from pages starting at `batch.start`."""
    found: list[dict] = []
    empty = 0
    for records, caught_up in pages:
        if not records:
            empty += 1
            if caught_up or empty >= EMPTY_PAGES:
                break
            continue
        empty = 0
        found += [r for r in records if batch.start <= _sequence(r) <= batch.end]
        if _sequence(records[-1]) >= batch.end:
            break
    if not found or _sequence(found[0]) != batch.start:
        raise RangeLost(f"the stream no longer holds sequence number {batch.start}")
    # Records of other keys (other ParallelizationFactor lanes) may lie in between, so
    # there can be more than the batch held, never fewer.
    if _sequence(found[-1]) != batch.end or len(found) < batch.size:
        raise RangeLost(f"the stream holds {len(found)} of the batch's {batch.size} records")
    return found


def read_range(side: Side, batch: FailedBatch) -> list[dict[str, Any]]:
    """The batch's records, shaped as the function receives them, in stream order."""
    try:
        if batch.service == "dynamodb":
            raw = collect_range(batch, _dynamodb_pages(side.client("dynamodbstreams"), batch))
            return [events.dynamodb_record(r, batch.stream_arn, side.region) for r in raw]
        raw = collect_range(batch, _kinesis_pages(side.client("kinesis"), batch))
        return [
            events.kinesis_record(r, batch.stream_arn, batch.shard_id, side.region) for r in raw
        ]
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code not in LOST_ERRORS:
            raise
        raise RangeLost(f"{LOST_ERRORS[code]} ({code})") from exc


def _dynamodb_pages(streams: Any, batch: FailedBatch) -> Iterator[tuple[list[dict], bool]]:
    iterator = streams.get_shard_iterator(
        StreamArn=batch.stream_arn,
        ShardId=batch.shard_id,
        ShardIteratorType="AT_SEQUENCE_NUMBER",
        SequenceNumber=str(batch.start),
    )["ShardIterator"]
    while iterator:  # a closed shard's last page has no next iterator
        page = streams.get_records(ShardIterator=iterator, Limit=1000)
        iterator = page.get("NextShardIterator")
        yield page["Records"], False


def _kinesis_pages(kinesis: Any, batch: FailedBatch) -> Iterator[tuple[list[dict], bool]]:
    stream = batch.stream_arn.split(":", 5)[-1].removeprefix("stream/")
    iterator = kinesis.get_shard_iterator(
        StreamName=stream,
        ShardId=batch.shard_id,
        ShardIteratorType="AT_SEQUENCE_NUMBER",
        StartingSequenceNumber=str(batch.start),
    )["ShardIterator"]
    while iterator:
        page = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
        iterator = page.get("NextShardIterator")
        yield page["Records"], page.get("MillisBehindLatest", 0) == 0
