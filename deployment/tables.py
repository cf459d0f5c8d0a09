"""Reading the deployment's tables: a whole table, and the stats table's items that the engine
doesn't write itself."""

from __future__ import annotations

from typing import Any

# The load generator's counter in a region's stats table: loader_stats#<table>, its `loaded`
# the items it wrote there (tools/loader.py writes it, `ops.py status` shows it).
LOADER_STATS_PREFIX = "loader_stats#"


def scan_all(client: Any, table: str) -> list[dict[str, Any]]:
    """Every item of a table (client form), every page, read consistently."""
    items, start = [], {}
    while True:
        page = client.scan(TableName=table, ConsistentRead=True, **start)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}
