"""The sender fed by a capture stream (Kinesis Data Streams for DynamoDB): records carry the
change as JSON, the table by name and the time in microseconds, and may come duplicated and
out of order. Whatever the order and the copies, the peer ends as the table is."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from itertools import count

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from deployment.events import capture_payload
from deployment.tables import scan_all
from emulator.stepped import TwoRegions
from replication import streams, wire
from replication.stamping import stamp
from replication.versions import now_ms
from tests.helpers import kinesis_records, queue_messages

NOW = (now_ms() // 1000 - 3600) * 1000
CAPTURE_ARN = "arn:aws-cn:kinesis:cn-north-1:111122223333:stream/ddb_capture_stream_cn"
_sequence = count(10**20)


def table_changes(node, after: str | None = None) -> list[dict]:
    """The table's stream as boto3 reads it (moto keeps milliseconds)."""
    client = node.client("dynamodbstreams")
    arn = node.region.stream_arns[node.table]
    shard = client.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    kind = (
        {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": after}
        if after
        else {"ShardIteratorType": "TRIM_HORIZON"}
    )
    iterator = client.get_shard_iterator(StreamArn=arn, ShardId=shard, **kind)["ShardIterator"]
    return client.get_records(ShardIterator=iterator, Limit=1000)["Records"]


def capture_record(node, raw: dict, micros: int = 0) -> dict:
    """One change as the capture stream's mapping delivers it to the sender."""
    created = raw["dynamodb"]["ApproximateCreationDateTime"]
    created_us = int(Decimal(str(created.timestamp())) * 1_000_000) + micros
    payload = capture_payload(raw, node.table, node.name, created_us)
    sequence = str(next(_sequence))
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": "k",
            "sequenceNumber": sequence,
            "data": base64.b64encode(json.dumps(payload).encode()).decode(),
            "approximateArrivalTimestamp": created.timestamp(),
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"shardId-000000000000:{sequence}",
        "eventName": "aws:kinesis:record",
        "awsRegion": node.name,
        "eventSourceARN": CAPTURE_ARN,
    }


def test_times_read_in_seconds_milliseconds_or_microseconds():
    for raw, expected in (
        (1_795_000_000, 1_795_000_000_000),  # DynamoDB Streams: whole seconds
        (1_795_000_000_123, 1_795_000_000_123),  # a capture stream, default precision
        (1_795_000_000_123_456, 1_795_000_000_123),  # MICROSECOND precision
    ):
        assert streams.created_ms({"dynamodb": {"ApproximateCreationDateTime": raw}}) == expected
    for bad in (None, True, "soon", -1, 10**18):
        with pytest.raises(streams.UnreadableRecord):
            streams.created_ms({"dynamodb": {"ApproximateCreationDateTime": bad}})


def test_a_captured_change_ships_like_a_streamed_one_and_failures_name_kinesis_sequences(aws):
    regions = TwoRegions()
    cn, sg = regions.china, regions.world
    cn.client("dynamodb").put_item(
        TableName=cn.table, Item=stamp({"PK": {"S": "u1"}, "n": {"S": "a"}}, cn.name, NOW, True)
    )
    [raw] = table_changes(cn)
    good = capture_record(cn, raw)
    broken = {**capture_record(cn, raw), "kinesis": {**good["kinesis"], "data": "bm90IGpzb24="}}
    broken["kinesis"]["sequenceNumber"] = "7"
    response = cn.sender.handle({"Records": [good, broken]})

    assert response == {"batchItemFailures": []}  # the broken one is poison, not retried
    [shipped] = [
        wire.unpack(base64.b64decode(r["kinesis"]["data"])).change for r in kinesis_records(sg)
    ]
    assert shipped.table == "user-cn" and shipped.item["n"] == {"S": "a"}
    [report] = queue_messages(cn, cn.region.sender_queue_url)
    assert "capture record data is not a table change" in report["reason"]


OPS = st.lists(st.sampled_from(["put", "unstamped", "delete"]), min_size=1, max_size=6)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=OPS, data=st.data())
def test_duplicated_and_reordered_capture_records_leave_the_peer_as_the_table(ops, data):
    with mock_aws():  # each example from nothing
        run_shuffled(ops, data)


def run_shuffled(ops, data) -> None:
    regions = TwoRegions()
    cn, sg = regions.china, regions.world
    ddb = cn.client("dynamodb")
    key = {"PK": {"S": f"k{next(_sequence)}"}}
    for step, op in enumerate(ops):
        at = NOW + 10 * step
        if op == "put":
            ddb.put_item(
                TableName=cn.table, Item=stamp({**key, "n": {"N": str(step)}}, cn.name, at, True)
            )
        elif op == "unstamped":
            ddb.put_item(TableName=cn.table, Item={**key, "n": {"N": str(step)}})
        else:
            ddb.delete_item(TableName=cn.table, Key=key)
    # Rounds: the sender's own restamps and re-deletes come back on the stream.
    last = None
    for _ in range(10):
        changes = table_changes(cn, last)
        if not changes:
            break
        last = changes[-1]["dynamodb"]["SequenceNumber"]
        records = [capture_record(cn, raw, micros=i) for i, raw in enumerate(changes)]
        copies = data.draw(st.lists(st.sampled_from(records), max_size=3))
        delivered = data.draw(st.permutations(records + copies))
        assert cn.sender.handle({"Records": delivered}) == {"batchItemFailures": []}
    # The replication stream keeps one item's changes in order; apply them as shipped.
    sg.replicator.handle({"Records": kinesis_records(sg)})

    here = {json.dumps(i, sort_keys=True) for i in scan_all(ddb, cn.table) if i["PK"] == key["PK"]}
    there = {
        json.dumps(i, sort_keys=True)
        for i in scan_all(sg.client("dynamodb"), sg.table)
        if i["PK"] == key["PK"]
    }
    assert here == there, f"ops {ops}"
