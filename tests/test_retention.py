"""Stream retention in the emulator (emulator/retention.py): records older than their stream's
retention, on the scenario's clock, are gone for every reader, as on AWS. moto keeps them
forever, so these tests check the imitation against what AWS documents: DynamoDB Streams 24
hours and TrimmedDataAccessException before the oldest record; Kinesis as configured.
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from emulator.capture import KINESIS
from emulator.simulated_time import SimulatedTime, simulated
from emulator.stepped import TwoRegions
from emulator.stream_sources import read_dynamodb_stream
from replication.stamping import stamp

HOUR_MS = 3_600_000


@pytest.fixture
def time(aws):
    time = SimulatedTime()
    with simulated(time):
        yield time


def write(node, key: str) -> None:
    item = stamp({"PK": {"S": key}}, node.name, node.clock(), typed=True)
    node.client("dynamodb").put_item(TableName=node.table, Item=item)


def table_stream(node, after: str | None = None) -> list[str]:
    """The keys the table's DynamoDB stream still holds (after a position), oldest first."""
    streams, arn = node.client("dynamodbstreams"), node.region.stream_arns[node.table]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    return [
        r["dynamodb"]["Keys"]["PK"]["S"]
        for r in read_dynamodb_stream(streams, arn, shard, after, 1000)
    ]


def kinesis_stream(node, stream: str) -> list[tuple[int, bytes]]:
    kinesis = node.client("kinesis")
    (shard,) = kinesis.list_shards(StreamName=stream)["Shards"]
    iterator = kinesis.get_shard_iterator(
        StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records = kinesis.get_records(ShardIterator=iterator)["Records"]
    return [(int(r["SequenceNumber"]), r["Data"]) for r in records]


def test_a_dynamodb_stream_keeps_records_24_hours(time):
    regions = TwoRegions(time_source=time)
    node = regions.china
    node.retention.step()
    write(node, "old")
    time.ms += 12 * HOUR_MS
    write(node, "newer")
    streams, arn = node.client("dynamodbstreams"), node.region.stream_arns[node.table]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    first = streams.get_shard_iterator(
        StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    old_sequence = streams.get_records(ShardIterator=first)["Records"][0]["dynamodb"][
        "SequenceNumber"
    ]

    time.ms += 12 * HOUR_MS  # the first record is exactly a day old: still there
    node.retention.step()
    assert table_stream(node) == ["old", "newer"]
    time.ms += 1_000
    node.retention.step()
    assert table_stream(node) == ["newer"]
    assert node.retention.trimmed == 1

    # A position before the oldest record left is an error, as AWS answers it ...
    iterator = streams.get_shard_iterator(
        StreamArn=arn,
        ShardId=shard,
        ShardIteratorType="AT_SEQUENCE_NUMBER",
        SequenceNumber=old_sequence,
    )["ShardIterator"]
    with pytest.raises(ClientError, match="TrimmedDataAccessException"):
        streams.get_records(ShardIterator=iterator)
    # ... which a reader that was there (a mapping, the capture pump) reads past.
    assert table_stream(node, after=old_sequence) == ["newer"]
    # Sequence numbers keep counting up.
    write(node, "latest")
    records = read_dynamodb_stream(streams, arn, shard, None, 10)
    sequences = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
    assert sequences[0] > int(old_sequence) and sequences == sorted(sequences)
    assert table_stream(node) == ["newer", "latest"]


def test_the_replication_and_capture_streams_keep_records_as_long_as_configured(time):
    regions = TwoRegions(time_source=time, capture=KINESIS, capture_retention_hours=100)
    node = regions.china
    names = node.region.names
    kinesis = node.client("kinesis")
    for stream in (names.replication_stream, names.capture_stream):
        kinesis.put_record(StreamName=stream, Data=b"first", PartitionKey="k")
    time.ms += 72 * HOUR_MS
    node.retention.step()
    assert len(kinesis_stream(node, names.replication_stream)) == 1  # 72 hours: not yet
    time.ms += 1_000
    node.retention.step()
    assert kinesis_stream(node, names.replication_stream) == []
    assert [data for _, data in kinesis_stream(node, names.capture_stream)] == [b"first"]
    time.ms += 28 * HOUR_MS
    node.retention.step()
    assert kinesis_stream(node, names.capture_stream) == []
    assert node.retention.trimmed == 2
    # With every record gone, numbering goes on above the trimmed ones, not from 1 again:
    # a reader positioned after them still sees what comes next.
    kinesis.put_record(StreamName=names.replication_stream, Data=b"second", PartitionKey="k")
    ((sequence, data),) = kinesis_stream(node, names.replication_stream)
    assert (sequence, data) == (2, b"second")


def test_a_region_steps_its_retention_before_its_mappings_read(time):
    regions = TwoRegions(time_source=time)
    node = regions.world
    assert node.steppers()[0] is node.retention
    write(node, "expired")
    time.ms += 25 * HOUR_MS
    regions.settle()
    # The mapping never saw the record, so neither did the peer.
    assert regions.china.client("dynamodb").scan(TableName=regions.china.table)["Items"] == []
    assert node.retention.trimmed == 1
