"""moto's DynamoDB Streams made to agree with AWS where replication would notice
(emulator/moto_fidelity.py)."""

from __future__ import annotations

from emulator.stepped import TwoRegions
from emulator.stream_sources import dynamodb_stream_records


def test_an_update_that_creates_its_item_is_one_insert_of_the_item_as_written(aws):
    """Found by `make chaos SEED=1 STEPS=500`: with moto's extra INSERT of the bare key, a
    sender stamped an empty item and put it back over a replicated one (hot-7 held only its
    key in both regions)."""
    regions = TwoRegions()
    node = regions.china
    ddb = node.client("dynamodb")
    for value in ("1", "2"):
        ddb.update_item(
            TableName=node.table,
            Key={"PK": {"S": "a"}},
            UpdateExpression="SET v = :v",
            ExpressionAttributeValues={":v": {"S": value}},
        )
    streams, arn = node.client("dynamodbstreams"), node.region.stream_arns[node.table]
    records = [record for _, record in dynamodb_stream_records(streams, arn)]
    # moto alone records an INSERT of the bare key first.
    assert [(r["eventName"], r["dynamodb"]["NewImage"]["v"]["S"]) for r in records] == [
        ("INSERT", "1"),
        ("MODIFY", "2"),
    ]
    sequences = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
    assert sequences[1] == sequences[0] + 1
