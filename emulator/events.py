"""Shape records read with boto3 into the events AWS Lambda delivers to a function.

boto3 hands back datetimes and bytes; Lambda's JSON events carry epoch numbers and
base64 text. DynamoDB Streams' ApproximateCreationDateTime is whole seconds on AWS
(moto keeps milliseconds), so it is truncated here the way AWS reports it.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from replication import wire
from replication.signing import SigningKeys
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


def kinesis_batch(
    payloads: list[bytes | wire.Change],
    stream_arn: str,
    region: str,
    first_sequence: int = 1000,
    keys: SigningKeys | None = None,
) -> dict[str, Any]:
    """A replicator event carrying changes, signed with `keys` as a sender would (unsigned
    without), or raw bytes (for malformed ones), in order."""
    records = []
    for offset, payload in enumerate(payloads):
        change = payload if isinstance(payload, wire.Change) else None
        data = wire.pack(change, keys) if change else payload
        sequence = str(first_sequence + offset)
        raw = {
            "PartitionKey": wire.partition_key(change) if change else f"raw-{sequence}",
            "SequenceNumber": sequence,
            "Data": data,
            "ApproximateArrivalTimestamp": _EPOCH,
        }
        records.append(kinesis_record(raw, stream_arn, "shardId-000000000000", region))
    return {"Records": records}


_EPOCH = datetime.fromtimestamp(1, UTC)
