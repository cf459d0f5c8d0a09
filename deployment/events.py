"""Shape records read with boto3 into the events AWS Lambda delivers to a function, for anything
that hands stream records to the functions' code: the emulator's mappings, and a redrive that
replays a failed batch read again from its stream.

boto3 hands back datetimes and bytes; Lambda's JSON events carry epoch numbers and base64 text.
DynamoDB Streams' ApproximateCreationDateTime is whole seconds on AWS (moto keeps milliseconds),
so it is truncated here the way AWS reports it.
"""

from __future__ import annotations

import base64
from typing import Any

from replication.wire import item_from_client


def dynamodb_record(raw: dict[str, Any], stream_arn: str, region: str) -> dict[str, Any]:
    ddb = dict(raw["dynamodb"])
    ddb["ApproximateCreationDateTime"] = int(ddb["ApproximateCreationDateTime"].timestamp())
    for image in ("Keys", "NewImage", "OldImage"):
        if image in ddb:
            ddb[image] = item_from_client(ddb[image])
    record = {
        "eventID": raw["eventID"],
        "eventName": raw["eventName"],
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": ddb,
        "eventSourceARN": stream_arn,
    }
    if "userIdentity" in raw:
        record["userIdentity"] = raw["userIdentity"]
    return record


def kinesis_record(
    raw: dict[str, Any], stream_arn: str, shard_id: str, region: str
) -> dict[str, Any]:
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": raw["PartitionKey"],
            "sequenceNumber": raw["SequenceNumber"],
            "data": base64.b64encode(raw["Data"]).decode(),
            "approximateArrivalTimestamp": raw["ApproximateArrivalTimestamp"].timestamp(),
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{shard_id}:{raw['SequenceNumber']}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": "",
        "awsRegion": region,
        "eventSourceARN": stream_arn,
    }


def capture_payload(
    raw: dict[str, Any], table: str, region: str, created_us: int
) -> dict[str, Any]:
    """What Kinesis Data Streams for DynamoDB writes into a capture stream for one table change
    (the record's data, JSON), from the change as DynamoDB Streams reads it with boto3: the
    same images in the typed form, with ApproximateCreationDateTime in epoch microseconds (the
    destination's MICROSECOND precision) and the table by name instead of a stream ARN."""
    ddb = raw["dynamodb"]
    change: dict[str, Any] = {
        "ApproximateCreationDateTime": created_us,
        "Keys": item_from_client(ddb["Keys"]),
        "SizeBytes": ddb.get("SizeBytes", 0),
    }
    for image in ("NewImage", "OldImage"):
        if image in ddb:
            change[image] = item_from_client(ddb[image])
    payload = {
        "awsRegion": region,
        "eventID": raw["eventID"],
        "eventName": raw["eventName"],
        "userIdentity": raw.get("userIdentity"),
        "recordFormat": "application/json",
        "tableName": table,
        "dynamodb": change,
        "eventSource": "aws:dynamodb",
    }
    return payload
