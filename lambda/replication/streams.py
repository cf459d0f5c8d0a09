"""Reading DynamoDB stream records as Lambda delivers them."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

TTL_PRINCIPAL = "dynamodb.amazonaws.com"


class UnreadableRecord(ValueError):
    """A stream record without what replication needs (keys, images, a source table)."""


def table_of(record: dict[str, Any]) -> str:
    """The table name from the record's stream ARN: ...:table/<name>/stream/<label>."""
    arn = record.get("eventSourceARN", "")
    _, _, resource = arn.partition(":table/")
    name = resource.split("/stream/")[0]
    if not name:
        raise UnreadableRecord(f"no table in eventSourceARN {arn!r}")
    return name


def keys_of(record: dict[str, Any]) -> dict[str, Any]:
    keys = record.get("dynamodb", {}).get("Keys")
    if not keys:
        raise UnreadableRecord("record has no Keys")
    return keys


def created_ms(record: dict[str, Any]) -> int:
    """ApproximateCreationDateTime (epoch seconds; whole seconds on AWS) in milliseconds."""
    raw = record.get("dynamodb", {}).get("ApproximateCreationDateTime")
    if raw is None:
        raise UnreadableRecord("record has no ApproximateCreationDateTime")
    return int(Decimal(str(raw)) * 1000)


def is_ttl_delete(record: dict[str, Any]) -> bool:
    identity = record.get("userIdentity") or {}
    return identity.get("type") == "Service" and identity.get("principalId") == TTL_PRINCIPAL
