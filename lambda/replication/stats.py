"""The replicator_stats table: running counters per replicated table.

One UpdateItem per table per batch; ADD creates the counters on first use, so the table
needs no seeding. The partition key is `PK` (S), holding the local table's name. The peer's
heartbeats are kept beside them, as `heartbeat#<peer region>`: when the latest was sent (its
version, the peer's clock) and received (this clock), in epoch milliseconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

COUNTERS = ("replicated", "stale", "failed", "poison")
HEARTBEAT_PREFIX = "heartbeat#"


class StatsTable:
    def __init__(self, dynamodb: Any, table: str):
        self._dynamodb = dynamodb
        self.table = table

    def add(
        self, replicated_table: str, counts: Mapping[str, int], max_lag_ms: int | None, now_ms: int
    ):
        names = {"#batches": "batches", "#at": "last_batch_at"}
        values: dict[str, Any] = {":one": {"N": "1"}, ":now": {"N": str(now_ms)}}
        adds = ["#batches :one"]
        for counter in COUNTERS:
            adds.append(f"#{counter} :{counter}")
            names[f"#{counter}"] = counter
            values[f":{counter}"] = {"N": str(counts.get(counter, 0))}
        sets = ["#at = :now"]
        if max_lag_ms is not None:
            names["#lag"] = "last_lag_ms"
            values[":lag"] = {"N": str(max_lag_ms)}
            sets.append("#lag = :lag")
        self._dynamodb.update_item(
            TableName=self.table,
            Key={"PK": {"S": replicated_table}},
            UpdateExpression=f"ADD {', '.join(adds)} SET {', '.join(sets)}",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def heartbeat(self, origin: str, sent_at_ms: int, now_ms: int) -> None:
        """Record the peer's heartbeat, unless a later one is recorded already (a replay)."""
        try:
            self._dynamodb.update_item(
                TableName=self.table,
                Key={"PK": {"S": f"{HEARTBEAT_PREFIX}{origin}"}},
                UpdateExpression="SET #sent = :sent, #received = :received",
                ConditionExpression="attribute_not_exists(#sent) OR #sent < :sent",
                ExpressionAttributeNames={"#sent": "sent_at", "#received": "received_at"},
                ExpressionAttributeValues={
                    ":sent": {"N": str(sent_at_ms)},
                    ":received": {"N": str(now_ms)},
                },
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
