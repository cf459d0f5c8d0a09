"""Reading a table's changes as Lambda delivers them: DynamoDB Streams records, or Kinesis
records of a capture stream that Kinesis Data Streams for DynamoDB writes (the change as JSON
in the record's data, the table by name, its time in milliseconds or microseconds). A capture
record is opened once (`open_capture`); every reader below then takes either kind.
"""

from __future__ import annotations

import base64
import binascii
import json
from decimal import Decimal
from typing import Any

TTL_PRINCIPAL = "dynamodb.amazonaws.com"
CAPTURED = "capturedChange"  # where open_capture keeps a capture record's change
# ApproximateCreationDateTime's unit, told by its size: seconds in DynamoDB Streams' Lambda
# events; milliseconds, or microseconds with MICROSECOND precision, in a capture stream.
_MICROSECONDS_FROM, _MILLISECONDS_FROM = 10**14, 10**11


class UnreadableRecord(ValueError):
    """A stream record without what replication needs (keys, images, a source table)."""


def is_capture(record: dict[str, Any]) -> bool:
    return record.get("eventSource") == "aws:kinesis"


def open_capture(record: dict[str, Any]) -> None:
    """Decode a capture record's change and keep it in the record (whose Kinesis fields the
    mapping's failure reporting still reads); UnreadableRecord if the data isn't a change."""
    try:
        payload = json.loads(base64.b64decode(record["kinesis"]["data"], validate=True))
    except (KeyError, TypeError, ValueError, RecursionError, binascii.Error) as exc:
        raise UnreadableRecord(f"capture record data is not a table change: {exc}") from None
    if (
        not isinstance(payload, dict)
        or not isinstance(payload.get("dynamodb"), dict)
        or not isinstance(payload.get("tableName"), str)
    ):
        raise UnreadableRecord("capture record data has no table change (dynamodb, tableName)")
    record[CAPTURED] = payload


def change_of(record: dict[str, Any]) -> dict[str, Any]:
    """The change as DynamoDB Streams shapes it: eventName, dynamodb, userIdentity."""
    return record.get(CAPTURED, record)


def event_name(record: dict[str, Any]) -> Any:
    return change_of(record).get("eventName")


def images(record: dict[str, Any]) -> dict[str, Any]:
    """The record's `dynamodb` member: Keys, NewImage, OldImage, ApproximateCreationDateTime."""
    found = change_of(record).get("dynamodb")
    return found if isinstance(found, dict) else {}


def table_of(record: dict[str, Any]) -> str:
    """The table name: a capture record's tableName, or from a stream record's ARN,
    ...:table/<name>/stream/<label>."""
    if CAPTURED in record:
        return record[CAPTURED]["tableName"]
    arn = record.get("eventSourceARN", "")
    _, _, resource = arn.partition(":table/")
    name = resource.split("/stream/")[0]
    if not name:
        raise UnreadableRecord(f"no table in eventSourceARN {arn!r}")
    return name


def keys_of(record: dict[str, Any]) -> dict[str, Any]:
    keys = images(record).get("Keys")
    if not keys:
        raise UnreadableRecord("record has no Keys")
    return keys


def created_ms(record: dict[str, Any]) -> int:
    """ApproximateCreationDateTime in epoch milliseconds (from whole seconds in DynamoDB
    Streams, from milliseconds or microseconds in a capture stream)."""
    raw = images(record).get("ApproximateCreationDateTime")
    if raw is None or isinstance(raw, bool):
        raise UnreadableRecord("record has no ApproximateCreationDateTime")
    try:
        value = Decimal(str(raw))
    except ArithmeticError:
        raise UnreadableRecord(f"ApproximateCreationDateTime {raw!r} is not a time") from None
    if not value.is_finite() or not 0 <= value < 10**17:
        raise UnreadableRecord(f"ApproximateCreationDateTime {raw!r} is not a time")
    if value >= _MICROSECONDS_FROM:
        return int(value // 1000)
    if value >= _MILLISECONDS_FROM:
        return int(value)
    return int(value * 1000)


def is_ttl_delete(record: dict[str, Any]) -> bool:
    identity = change_of(record).get("userIdentity") or {}
    return identity.get("type") == "Service" and identity.get("principalId") == TTL_PRINCIPAL
