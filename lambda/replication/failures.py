"""Records that can never be processed go to the function's failure queue, once, with the reason.

Retrying a poison record would only block the shard behind it, so it is taken out of the batch
at once and sent to the same SQS queue that receives the event source mapping's on-failure
records. If that send fails, the record is reported as a batch failure instead, so nothing is
ever dropped silently.

A report always fits the queue: SQS counts a message's size in UTF-8 bytes, attributes
included, after JSON escaping has grown the text. The record goes whole when it fits, cut when
it doesn't (every field is cut, reason and keys too), and as a stub (reason, event ID, sequence
number, source) when even the cut fields don't. The mapping may deliver the same record again
(a later record of its batch failed, and the batch was retried from there): a ledger of the
records already reported keeps the queue to one message per poison record.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

# The failure queues' maximum message size, set explicitly in Terraform (max_message_size).
QUEUE_MAX_MESSAGE_BYTES = 262_144
# Kept back for SQS's own accounting of attributes and for a safety margin.
ENVELOPE_MARGIN_BYTES = 2_048
POISON_KIND = "poison-record"
REASON_CHARS = 2_000
KEYS_CHARS = 8_000
STUB_FIELD_CHARS = 500
# The ledger keeps a report as long as the queue keeps the message (14 days).
LEDGER_TTL_SECONDS = 14 * 86400


class ReportLedger:
    """The poison records already reported, as rows of the tombstone table (`pk` =
    `poison-report#<function>#<eventID>`, expiring with `expires_at`). They carry no version,
    so tombstone reads never mistake them for deletes. A report is noted after it is sent: if
    the note fails, the report may be sent twice, never lost. Reads and writes are the ones the
    functions already make on that table (BatchGetItem, PutItem)."""

    def __init__(
        self,
        dynamodb: Any,
        table: str,
        key_attr: str,
        expiry_attr: str,
        clock: Callable[[], float] = time.time,
    ):
        self._dynamodb = dynamodb
        self.table = table
        self._key_attr = key_attr
        self._expiry_attr = expiry_attr
        self._clock = clock

    def seen(self, entry: str) -> bool:
        response = self._dynamodb.batch_get_item(
            RequestItems={
                self.table: {"Keys": [{self._key_attr: {"S": entry}}], "ConsistentRead": True}
            }
        )
        if response.get("UnprocessedKeys"):
            return False  # unknown: better a second report than none
        return bool(response.get("Responses", {}).get(self.table))

    def note(self, entry: str) -> None:
        self._dynamodb.put_item(
            TableName=self.table,
            Item={
                self._key_attr: {"S": entry},
                self._expiry_attr: {"N": str(int(self._clock()) + LEDGER_TTL_SECONDS)},
            },
        )


class FailureQueue:
    def __init__(self, sqs: Any, url: str, function: str, ledger: ReportLedger | None = None):
        self._sqs = sqs
        self.url = url
        self.function = function
        # None: report every time (the operator tools, whose replays must be re-reported).
        self.ledger = ledger

    def report(
        self, reason: str, record: dict[str, Any], keys: dict[str, Any] | None = None
    ) -> bool:
        """Send the poison report; False if this record was reported before."""
        event_id = str(record.get("eventID") or "")
        # The mapping always gives an event ID; a record without one is known by its content.
        identity = event_id or "record:" + _json(record)
        if len(identity) > 512:
            identity = "sha256:" + hashlib.sha256(_encoded(identity)).hexdigest()
        ledger = self.ledger
        entry = f"poison-report#{self.function}#{identity}"
        if ledger is not None and ledger.seen(entry):
            return False
        self._sqs.send_message(
            QueueUrl=self.url,
            MessageBody=self.body(reason, record, keys),
            MessageAttributes=self._attributes(),
        )
        if ledger is not None:
            # Sent but not noted: a retry of the batch may report it again, which is harmless.
            with contextlib.suppress(ClientError):
                ledger.note(entry)
        return True

    def _attributes(self) -> dict[str, Any]:
        return {
            "kind": {"DataType": "String", "StringValue": POISON_KIND},
            "function": {"DataType": "String", "StringValue": self.function},
        }

    def body(self, reason: str, record: dict[str, Any], keys: dict[str, Any] | None) -> str:
        """The message body: the whole record if it fits, else cut, else a stub."""
        budget = (
            QUEUE_MAX_MESSAGE_BYTES - ENVELOPE_MARGIN_BYTES - _attributes_bytes(self._attributes())
        )
        head: dict[str, Any] = {
            "kind": POISON_KIND,
            "function": self.function,
            "reason": reason,
            "reported_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "keys": keys,
        }
        whole = _json({**head, "record": record})
        if _size(whole) <= budget:
            return whole
        # Cut: reason and keys to a fixed length, the record to what room is left.
        keys_text = _json(keys)
        cut = {
            **head,
            "reason": _cut_chars(reason, REASON_CHARS),
            "keys": keys if len(keys_text) <= KEYS_CHARS else None,
            **_locator(record),
        }
        if cut["keys"] is None and keys is not None:
            cut["keys_truncated"] = keys_text[:KEYS_CHARS]
        cut["record_truncated"] = ""
        room = budget - _size(_json(cut))
        if room > 0:
            cut["record_truncated"] = _fit(_json(record), room)
            text = _json(cut)
            if _size(text) <= budget:
                return text
        stub = {
            "kind": POISON_KIND,
            "function": self.function,
            "reason": _cut_chars(reason, STUB_FIELD_CHARS),
            "reported_at": head["reported_at"],
            "record_omitted": True,
            **{k: _cut_chars(str(v), STUB_FIELD_CHARS) for k, v in _locator(record).items()},
        }
        return _json(stub)


def _locator(record: dict[str, Any]) -> dict[str, Any]:
    """Where the record can be read back from its stream: event ID, sequence number, source."""
    sequence = (record.get("kinesis") or {}).get("sequenceNumber") or (
        record.get("dynamodb") or {}
    ).get("SequenceNumber")
    return {
        "event_id": record.get("eventID"),
        "sequence_number": sequence,
        "event_source_arn": record.get("eventSourceARN"),
    }


# Characters SQS refuses in a message (it takes #x9, #xA, #xD, #x20-#xD7FF, #xE000-#xFFFD and
# #x10000-#x10FFFF), though a DynamoDB string may hold U+FFFE and U+FFFF. JSON escapes the
# control characters itself; these are escaped here (they only occur inside JSON strings).
_SQS_REFUSED = re.compile("[\ud800-\udfff\ufffe\uffff]")


def _json(value: Any) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    return _SQS_REFUSED.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _encoded(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _size(text: str) -> int:
    return len(_encoded(text))


def _cut_chars(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _fit(text: str, room: int) -> str:
    """The longest prefix of `text` whose JSON string encoding fits in `room` bytes."""
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if _size(_json(text[:middle])) - 2 <= room:  # less the quotes, counted in `room`
            low = middle
        else:
            high = middle - 1
    return text[:low]


def _attributes_bytes(attributes: dict[str, Any]) -> int:
    """SQS counts each attribute's name, data type and value toward the message size."""
    return sum(
        _size(name) + _size(value["DataType"]) + _size(value["StringValue"])
        for name, value in attributes.items()
    )
