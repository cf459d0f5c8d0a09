"""Records that can never be processed go to the function's failure queue, whole.

Retrying a poison record would only block the shard behind it, so it is taken out of
the batch at once and sent, with the reason, to the same SQS queue that receives the
event source mapping's on-failure records. If that send fails, the record is reported
as a batch failure instead, so nothing is ever dropped silently.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

# SQS takes messages up to 256 KiB; keep well inside it with the envelope.
MAX_RECORD_CHARS = 200_000
POISON_KIND = "poison-record"


class FailureQueue:
    def __init__(self, sqs: Any, url: str, function: str):
        self._sqs = sqs
        self.url = url
        self.function = function

    def report(
        self, reason: str, record: dict[str, Any], keys: dict[str, Any] | None = None
    ) -> None:
        body: dict[str, Any] = {
            "kind": POISON_KIND,
            "function": self.function,
            "reason": reason,
            "reported_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "keys": keys,
        }
        raw = json.dumps(record, default=str, ensure_ascii=False)
        if len(raw) <= MAX_RECORD_CHARS:
            body["record"] = record
        else:
            body["record_truncated"] = raw[:MAX_RECORD_CHARS]
        self._sqs.send_message(
            QueueUrl=self.url,
            MessageBody=json.dumps(body, default=str, ensure_ascii=False),
            MessageAttributes={
                "kind": {"DataType": "String", "StringValue": POISON_KIND},
                "function": {"DataType": "String", "StringValue": self.function},
            },
        )
