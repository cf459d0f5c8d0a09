"""The replication wire format: one JSON document per change, DynamoDB values kept typed.

Items travel in DynamoDB's own JSON form ({"S": ...}, {"N": "..."}, binary as base64),
exactly as a stream record holds them, so numbers keep all 38 digits and binary stays
binary; nothing is converted through Python types on the way.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from tests.compat.release_0_1_0.versions import Version, from_wire

FORMAT = "ddb-replication"
WIRE_VERSION = 1
PUT: Literal["PUT"] = "PUT"
DELETE: Literal["DELETE"] = "DELETE"

# DynamoDB nests documents at most 32 levels deep.
MAX_DEPTH = 32
_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_KEY_TYPES = ("S", "N", "B")


class MalformedChange(ValueError):
    """A change that can never be applied, however often it is retried."""


@dataclass(frozen=True)
class Change:
    """One change to one item, as shipped from the region where it was made."""

    table: str  # the table the change was made in (mapped to a local table on arrival)
    op: Literal["PUT", "DELETE"]
    keys: dict[str, Any]  # typed key attributes
    version: Version
    origin: str  # the region where the change was made
    stream_ts_ms: int  # when the source stream recorded it, for lag
    item: dict[str, Any] | None = None  # the whole new item, typed, for PUT
    event_id: str = ""  # the source stream record's eventID, for tracing

    def key_id(self) -> str:
        return key_id(self.table, self.keys)


def key_id(table: str, keys: dict[str, Any]) -> str:
    """A stable text identity for one item: equal keys give equal ids, whatever their order."""
    return json.dumps([table, keys], sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def partition_key(change: Change) -> str:
    """Kinesis partition key: one key per item, so its changes stay in order on one shard."""
    return hashlib.sha256(change.key_id().encode()).hexdigest()


def encode(change: Change) -> bytes:
    doc: dict[str, Any] = {
        "format": FORMAT,
        "v": WIRE_VERSION,
        "table": change.table,
        "op": change.op,
        "keys": change.keys,
        "version": change.version.to_wire(),
        "origin": change.origin,
        "stream_ts_ms": change.stream_ts_ms,
        "event_id": change.event_id,
    }
    if change.op == PUT:
        doc["item"] = change.item
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def decode(data: bytes) -> Change:
    """Parse and validate one wire document; raises MalformedChange saying what is wrong."""
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:
        # ValueError covers bad JSON, bad UTF-8 and integers too long to parse.
        raise MalformedChange(f"not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise MalformedChange(f"not a {FORMAT} document")
    if type(doc.get("v")) is not int or doc["v"] != WIRE_VERSION:
        raise MalformedChange(f"unsupported wire version {doc.get('v')!r}")
    table, op, origin = doc.get("table"), doc.get("op"), doc.get("origin")
    if not isinstance(table, str) or not table:
        raise MalformedChange("table must be a non-empty string")
    if op not in (PUT, DELETE):
        raise MalformedChange(f"op must be PUT or DELETE, not {op!r}")
    if not isinstance(origin, str) or not origin:
        raise MalformedChange("origin must be a non-empty string")
    try:
        version = from_wire(doc.get("version"))
    except ValueError as exc:
        raise MalformedChange(f"missing or bad version: {exc}") from None
    stream_ts = doc.get("stream_ts_ms")
    if isinstance(stream_ts, bool) or not isinstance(stream_ts, int):
        raise MalformedChange("stream_ts_ms must be a whole number")
    keys = doc.get("keys")
    validate_keys(keys)
    item = doc.get("item")
    if op == PUT:
        validate_item(item)
        for name, value in keys.items():
            if item.get(name) != value:
                raise MalformedChange(f"item does not carry key attribute {name!r} = {value}")
    event_id = doc.get("event_id", "")
    return Change(
        table=table,
        op=op,
        keys=keys,
        version=version,
        origin=origin,
        stream_ts_ms=stream_ts,
        item=item if op == PUT else None,
        event_id=event_id if isinstance(event_id, str) else "",
    )


def validate_keys(keys: Any) -> None:
    if not isinstance(keys, dict) or not 1 <= len(keys) <= 2:
        raise MalformedChange("keys must name one or two key attributes")
    for name, value in keys.items():
        if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in _KEY_TYPES:
            raise MalformedChange(f"key attribute {name!r} must be of type S, N or B")
        validate_value(value, path=name)


def validate_item(item: Any) -> None:
    if not isinstance(item, dict) or not item:
        raise MalformedChange("a PUT must carry the whole item")
    for name, value in item.items():
        validate_value(value, path=name)


def validate_value(value: Any, path: str, depth: int = 0) -> None:
    """Check one typed value; raises MalformedChange naming the attribute path."""
    if depth > MAX_DEPTH:
        raise MalformedChange(f"{path}: nested deeper than {MAX_DEPTH} levels")
    if not isinstance(value, dict) or len(value) != 1:
        raise MalformedChange(f"{path}: not a typed DynamoDB value")
    kind, inner = next(iter(value.items()))
    if kind not in _CHECKS:
        raise MalformedChange(f"{path}: unknown type {kind!r}")
    ok = _CHECKS[kind]
    if kind == "M":
        if not isinstance(inner, dict):
            raise MalformedChange(f"{path}: M must hold an object")
        for name, member in inner.items():
            validate_value(member, f"{path}.{name}", depth + 1)
    elif kind == "L":
        if not isinstance(inner, list):
            raise MalformedChange(f"{path}: L must hold a list")
        for index, member in enumerate(inner):
            validate_value(member, f"{path}[{index}]", depth + 1)
    elif not ok(inner):
        raise MalformedChange(f"{path}: bad {kind} value")


def _is_number(raw: Any) -> bool:
    return isinstance(raw, str) and _NUMBER.fullmatch(raw) is not None


def _is_base64(raw: Any) -> bool:
    if not isinstance(raw, str):
        return False
    try:
        base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _set_of(check):
    return lambda raw: isinstance(raw, list) and bool(raw) and all(map(check, raw))


_CHECKS = {
    "S": lambda raw: isinstance(raw, str),
    "N": _is_number,
    "B": _is_base64,
    "SS": _set_of(lambda raw: isinstance(raw, str)),
    "NS": _set_of(_is_number),
    "BS": _set_of(_is_base64),
    "BOOL": lambda raw: isinstance(raw, bool),
    "NULL": lambda raw: raw is True,
    "M": None,  # checked member by member
    "L": None,
}


def to_client(value: dict[str, Any]) -> dict[str, Any]:
    """A typed value as boto3's low-level client takes it: binary as bytes, not base64."""
    kind, inner = next(iter(value.items()))
    if kind == "B":
        return {"B": base64.b64decode(inner)}
    if kind == "BS":
        return {"BS": [base64.b64decode(member) for member in inner]}
    if kind == "M":
        return {"M": {name: to_client(member) for name, member in inner.items()}}
    if kind == "L":
        return {"L": [to_client(member) for member in inner]}
    return value


def from_client(value: dict[str, Any]) -> dict[str, Any]:
    """The inverse of to_client: the event/wire form, binary as base64 text."""
    kind, inner = next(iter(value.items()))
    if kind == "B":
        return {"B": base64.b64encode(inner).decode()}
    if kind == "BS":
        return {"BS": [base64.b64encode(member).decode() for member in inner]}
    if kind == "M":
        return {"M": {name: from_client(member) for name, member in inner.items()}}
    if kind == "L":
        return {"L": [from_client(member) for member in inner]}
    return value


def item_to_client(item: dict[str, Any]) -> dict[str, Any]:
    return {name: to_client(value) for name, value in item.items()}


def item_from_client(item: dict[str, Any]) -> dict[str, Any]:
    return {name: from_client(value) for name, value in item.items()}
