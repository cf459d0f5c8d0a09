"""The application-writer contract, as code: stamp every write with a version.

Each write to a replicated table should set `last_update_timestamp` (epoch milliseconds, or
epoch seconds where the deployment's VERSION_UNIT is `seconds`) and `last_updater_region`
(the region written in). A write that does not is still
replicated: the sender stamps it after the fact, one extra write later, and counts it
as `Restamped`. Until then a concurrent change from the peer region wins over it.

    table.put_item(Item=stamp({"PK": "u1", "name": "Li"}, "cn-north-1"))
    client.update_item(TableName="user-cn", Key=key,
                       **stamped_update("cn-north-1", "SET #n = :n", {"#n": "name"},
                                        {":n": {"S": "Li"}}))
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from replication.versions import MILLISECONDS, REGION_ATTR, TIMESTAMP_ATTR, Version, now_ms

# The SET keyword, not a placeholder such as #set or :set.
_SET = re.compile(r"(?<![#:\w])SET\b", re.IGNORECASE)


def version_attributes(
    region: str, now: int | None = None, typed: bool = False, unit: str = MILLISECONDS
) -> dict[str, Any]:
    """The two version attributes, as Python values (boto3 resource API) or typed (client),
    the time (`now`, epoch milliseconds) stored in `unit`."""
    version = Version(now_ms() if now is None else now, region)
    if typed:
        return version.to_typed(unit)
    timestamp = version.timestamp if unit == MILLISECONDS else Decimal(version.stored(unit))
    return {TIMESTAMP_ATTR: timestamp, REGION_ATTR: region}


def stamp(
    item: dict[str, Any],
    region: str,
    now: int | None = None,
    typed: bool = False,
    unit: str = MILLISECONDS,
) -> dict[str, Any]:
    """A copy of `item` carrying a fresh version, for put_item."""
    return {**item, **version_attributes(region, now, typed, unit)}


def stamped_update(
    region: str,
    update_expression: str = "",
    names: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
    now: int | None = None,
    typed: bool = True,
    unit: str = MILLISECONDS,
) -> dict[str, Any]:
    """update_item keyword arguments with the version attributes added to the SET clause."""
    stamp_clause = "#_repl_ts = :_repl_ts, #_repl_region = :_repl_region"
    if _SET.search(update_expression):
        expression = _SET.sub(f"SET {stamp_clause},", update_expression, count=1)
    else:
        expression = f"SET {stamp_clause} {update_expression}".strip()
    version = version_attributes(region, now, typed, unit)
    return {
        "UpdateExpression": expression,
        "ExpressionAttributeNames": {
            **(names or {}),
            "#_repl_ts": TIMESTAMP_ATTR,
            "#_repl_region": REGION_ATTR,
        },
        "ExpressionAttributeValues": {
            **(values or {}),
            ":_repl_ts": version[TIMESTAMP_ATTR],
            ":_repl_region": version[REGION_ATTR],
        },
    }


def stamped_delete(
    region: str,
    key_attribute: str,
    now: int | None = None,
    typed: bool = True,
    unit: str = MILLISECONDS,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A delete with a precise version, for tables captured through DynamoDB Streams, whose
    records carry whole seconds: update_item keyword arguments that stamp the item (if it
    exists), then delete_item keyword arguments that delete it only while it carries that
    stamp. The delete's version is then the stamp's plus a millisecond, so it wins over any
    write made before it, at the cost of one extra write. If the delete's condition fails, the
    item was written meanwhile: read it again and decide.

        stamp_it, delete_it = stamped_delete("cn-north-1", "PK")
        client.update_item(TableName="user-cn", Key=key, **stamp_it)
        client.delete_item(TableName="user-cn", Key=key, **delete_it)
    """
    version = version_attributes(region, now, typed, unit)
    names = {"#_repl_ts": TIMESTAMP_ATTR, "#_repl_region": REGION_ATTR, "#_repl_key": key_attribute}
    values = {":_repl_ts": version[TIMESTAMP_ATTR], ":_repl_region": version[REGION_ATTR]}
    stamp_it = {
        "UpdateExpression": "SET #_repl_ts = :_repl_ts, #_repl_region = :_repl_region",
        "ConditionExpression": "attribute_exists(#_repl_key)",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }
    delete_it = {
        "ConditionExpression": "#_repl_ts = :_repl_ts AND #_repl_region = :_repl_region",
        "ExpressionAttributeNames": {k: v for k, v in names.items() if k != "#_repl_key"},
        "ExpressionAttributeValues": values,
    }
    return stamp_it, delete_it
