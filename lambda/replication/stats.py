"""The replicator_stats table: running counters per replicated table.

One UpdateItem per table per batch; ADD creates the counters on first use, so the table
needs no seeding. The partition key is `PK` (S), holding the local table's name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

COUNTERS = ("replicated", "stale", "failed", "poison")


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
