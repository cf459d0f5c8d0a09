"""AWS limits that moto does not enforce, imitated around a boto3 client in the handler tests.

- SQS counts a message's size in UTF-8 bytes, attribute names, types and values included, up to
  the queue's maximum (256 KiB here, as Terraform sets it), and refuses characters outside
  #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF. moto checks neither.
- DynamoDB keeps at most 38 significant digits in a number. moto stores any.
- DynamoDB refuses a partition key over 2,048 bytes, in reads as in writes. moto checks writes
  only. (Here any key attribute named PK or pk, the tests' tables' partition keys.)
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation, localcontext
from typing import Any

from botocore.exceptions import ClientError

from replication.failures import QUEUE_MAX_MESSAGE_BYTES

_SQS_REFUSED = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _error(code: str, message: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


class SqsLimits:
    """An SQS client that refuses what SQS refuses, and keeps what it sent."""

    def __init__(self, client: Any, max_bytes: int = QUEUE_MAX_MESSAGE_BYTES):
        self._client = client
        self.max_bytes = max_bytes
        self.sent: list[str] = []
        self.refused: list[str] = []

    def send_message(self, **kwargs: Any) -> Any:
        body = kwargs["MessageBody"]
        size = len(body.encode("utf-8", "surrogatepass"))
        for name, value in (kwargs.get("MessageAttributes") or {}).items():
            size += len(name.encode()) + len(value["DataType"].encode())
            size += len(value.get("StringValue", "").encode())
        if _SQS_REFUSED.search(body):
            self.refused.append("characters")
            raise _error("InvalidMessageContents", "Invalid characters found", "SendMessage")
        if size > self.max_bytes:
            self.refused.append(f"{size} bytes")
            raise _error(
                "InvalidParameterValue",
                f"One or more parameters are invalid. Reason: Message must be shorter than "
                f"{self.max_bytes} bytes.",
                "SendMessage",
            )
        self.sent.append(body)
        return self._client.send_message(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def _numbers(value: Any):
    if isinstance(value, dict):
        for kind, inner in value.items():
            if kind == "N" and isinstance(inner, str):
                yield inner
            elif kind == "NS" and isinstance(inner, list):
                yield from inner
            else:
                yield from _numbers(inner)
    elif isinstance(value, list):
        for member in value:
            yield from _numbers(member)


def significant_digits(number: str) -> int:
    with localcontext() as context:
        context.prec = 1_000  # the default 28 would round a 39-digit number to 28
        try:
            digits = Decimal(number).normalize(context).as_tuple().digits
        except InvalidOperation:
            return 0
    return len(digits)


MAX_PARTITION_KEY_BYTES = 2_048


def _partition_keys(name: str, kwargs: dict[str, Any]):
    """The partition key values a call names (the tests' tables key on PK or pk)."""
    keys = [kwargs.get("Key") or {}]
    if name == "put_item":
        keys.append(kwargs.get("Item") or {})
    for request in (kwargs.get("RequestItems") or {}).values():
        keys.extend(request.get("Keys", []) if isinstance(request, dict) else [])
    for key in keys:
        for attribute in ("PK", "pk"):
            value = key.get(attribute, {})
            if isinstance(value, dict) and isinstance(value.get("S"), str):
                yield value["S"]


class DynamoDBNumberLimits:
    """A DynamoDB client that refuses a number of more than 38 significant digits in a write,
    and a partition key over 2,048 bytes in a read or a write."""

    WRITES = ("put_item", "update_item", "delete_item")
    KEYED = (*WRITES, "get_item", "batch_get_item")

    def __init__(self, client: Any):
        self._client = client

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name not in self.KEYED:
            return attribute

        def checked(**kwargs: Any) -> Any:
            for key in _partition_keys(name, kwargs):
                if len(key.encode("utf-8", "surrogatepass")) > MAX_PARTITION_KEY_BYTES:
                    raise _error(
                        "ValidationException",
                        "One or more parameter values were invalid: Size of hashkey has "
                        "exceeded the maximum size limit of2048 bytes",
                        name,
                    )
            if name not in self.WRITES:
                return attribute(**kwargs)
            for field in ("Item", "Key", "ExpressionAttributeValues"):
                for number in _numbers(kwargs.get(field) or {}):
                    if significant_digits(number) > 38:
                        raise _error(
                            "ValidationException",
                            "Attempting to store more than 38 significant digits in a Number",
                            name,
                        )
            return attribute(**kwargs)

        return checked


def imitate_limits(function: Any) -> SqsLimits:
    """Put both imitations around a Sender's or Replicator's clients; the SQS one, to read."""
    clients = function.clients
    clients._clients["dynamodb"] = DynamoDBNumberLimits(clients("dynamodb"))
    sqs = SqsLimits(clients("sqs"))
    clients._clients["sqs"] = sqs
    return sqs
