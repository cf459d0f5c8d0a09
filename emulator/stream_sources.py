"""The two stream services as an event source mapping reads them.

A source lists a stream's shards and reads a shard after a sequence number, shaping what it
reads into the records Lambda delivers (events.py). It also knows what differs between the
services: where a record keeps its sequence number, item key and arrival time, how many records
one GetRecords call returns, no-op records to drop, and what an on-failure message calls a
batch's details.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from deployment import events


class StreamSource:
    """One stream, read shard by shard; subclasses know the service."""

    arn: str
    batch_info: str  # the on-failure message's member for the batch
    read_limit: int  # the most records one GetRecords call returns

    def shards(self) -> list[str]:
        raise NotImplementedError

    def read(self, shard_id: str, after: str | None, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` records of a shard after sequence number `after` (from its start
        without)."""
        raise NotImplementedError

    def sequence_of(self, record: dict[str, Any]) -> str:
        raise NotImplementedError

    def key_of(self, record: dict[str, Any]) -> str:
        """What keeps one item's records in order, in one lane."""
        raise NotImplementedError

    def arrival_of(self, record: dict[str, Any]) -> float:
        """When the record reached the stream, in epoch seconds."""
        raise NotImplementedError

    def is_noop(self, record: dict[str, Any]) -> bool:
        """A record the service would never have delivered."""
        return False


class DynamoDBStreamSource(StreamSource):
    batch_info = "DDBStreamBatchInfo"
    read_limit = 1000

    def __init__(self, client: Any, stream_arn: str, region: str):
        self.client, self.arn, self.region = client, stream_arn, region

    def shards(self) -> list[str]:
        description = self.client.describe_stream(StreamArn=self.arn)["StreamDescription"]
        return [s["ShardId"] for s in description["Shards"]]

    def read(self, shard_id: str, after: str | None, limit: int) -> list[dict[str, Any]]:
        records = read_dynamodb_stream(self.client, self.arn, shard_id, after, limit)
        return [events.dynamodb_record(r, self.arn, self.region) for r in records]

    def sequence_of(self, record: dict[str, Any]) -> str:
        return record["dynamodb"]["SequenceNumber"]

    def key_of(self, record: dict[str, Any]) -> str:
        return json.dumps(record["dynamodb"]["Keys"], sort_keys=True)

    def arrival_of(self, record: dict[str, Any]) -> float:
        return float(record["dynamodb"]["ApproximateCreationDateTime"])

    def is_noop(self, record: dict[str, Any]) -> bool:
        # moto emits a MODIFY for a write that changed nothing; DynamoDB Streams does not.
        ddb = record.get("dynamodb", {})
        return (
            record["eventName"] == "MODIFY"
            and "NewImage" in ddb
            and ddb.get("NewImage") == ddb.get("OldImage")
        )


def read_dynamodb_stream(
    client: Any, arn: str, shard_id: str, after: str | None, limit: int = 1000
) -> list[dict[str, Any]]:
    """Up to `limit` raw records of a DynamoDB stream's shard after sequence number `after`
    (from the oldest without). When `after` is older than the stream keeps, reading goes on
    from the oldest record left: the records in between are gone (emulator/retention.py)."""
    position = (
        {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": after}
        if after
        else {"ShardIteratorType": "TRIM_HORIZON"}
    )
    try:
        iterator = client.get_shard_iterator(StreamArn=arn, ShardId=shard_id, **position)
        return client.get_records(ShardIterator=iterator["ShardIterator"], Limit=limit)["Records"]
    except ClientError as exc:
        if not after or exc.response.get("Error", {}).get("Code") != "TrimmedDataAccessException":
            raise
    return read_dynamodb_stream(client, arn, shard_id, None, limit)


def dynamodb_stream_records(client: Any, arn: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every raw record a DynamoDB stream still holds, shard by shard, oldest first, each with
    its shard's ID."""
    for shard in client.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        after = None
        while page := read_dynamodb_stream(client, arn, shard["ShardId"], after):
            yield from ((shard["ShardId"], record) for record in page)
            after = page[-1]["dynamodb"]["SequenceNumber"]


class KinesisSource(StreamSource):
    batch_info = "KinesisBatchInfo"
    read_limit = 10_000

    def __init__(self, client: Any, stream_name: str, stream_arn: str, region: str):
        self.client, self.name, self.arn, self.region = client, stream_name, stream_arn, region

    def shards(self) -> list[str]:
        return [s["ShardId"] for s in self.client.list_shards(StreamName=self.name)["Shards"]]

    def read(self, shard_id: str, after: str | None, limit: int) -> list[dict[str, Any]]:
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

    def sequence_of(self, record: dict[str, Any]) -> str:
        return record["kinesis"]["sequenceNumber"]

    def key_of(self, record: dict[str, Any]) -> str:
        return record["kinesis"]["partitionKey"]

    def arrival_of(self, record: dict[str, Any]) -> float:
        return float(record["kinesis"]["approximateArrivalTimestamp"])
