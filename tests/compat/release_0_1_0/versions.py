"""Item versions and the last-writer-wins rule both regions apply.

A version is the pair (last_update_timestamp, last_updater_region): epoch milliseconds,
then the region name as a tie-break, so two regions that write the same key in the same
millisecond still pick the same winner. Every write the system applies is conditioned on
the incoming version being strictly newer than the stored one, which makes replays and
duplicates harmless.
"""

from __future__ import annotations

import time
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

TIMESTAMP_ATTR = "last_update_timestamp"
REGION_ATTR = "last_updater_region"


class Version(NamedTuple):
    """Orders as a tuple: timestamp first, region name second."""

    timestamp: int
    region: str

    def bumped(self, now_ms: int, region: str) -> Version:
        """A version for `region` newer than this one, at `now_ms` unless the clock lags."""
        return Version(max(now_ms, self.timestamp + 1), region)

    def to_typed(self) -> dict[str, dict[str, str]]:
        return {TIMESTAMP_ATTR: {"N": str(self.timestamp)}, REGION_ATTR: {"S": self.region}}

    def to_wire(self) -> dict[str, Any]:
        return {"timestamp": self.timestamp, "region": self.region}


# What an item that was never stamped counts as: older than any real write.
UNVERSIONED = Version(0, "")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def parse_timestamp(raw: Any) -> int | None:
    """Epoch milliseconds from a DynamoDB number string; None unless a whole number >= 0."""
    try:
        value = Decimal(raw)
    except (InvalidOperation, TypeError, ValueError):
        return None
    if not value.is_finite() or value != value.to_integral_value() or value < 0:
        return None
    return int(value)


def of_image(image: dict[str, Any] | None) -> Version | None:
    """The version a typed item image carries, or None when it is not properly stamped."""
    if not image:
        return None
    ts = image.get(TIMESTAMP_ATTR, {})
    region = image.get(REGION_ATTR, {})
    if "N" not in ts or "S" not in region:
        return None
    timestamp = parse_timestamp(ts["N"])
    if timestamp is None or not region["S"]:
        return None
    return Version(timestamp, region["S"])


def from_wire(raw: Any) -> Version:
    """Parse a wire version; raises ValueError on anything but {timestamp: int, region: str}."""
    if not isinstance(raw, dict):
        raise ValueError("version must be an object")
    timestamp, region = raw.get("timestamp"), raw.get("region")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp < 0:
        raise ValueError("version.timestamp must be a whole number of milliseconds")
    if not isinstance(region, str) or not region:
        raise ValueError("version.region must be a non-empty string")
    return Version(timestamp, region)


def older_than_condition(version: Version) -> dict[str, Any]:
    """ConditionExpression parameters that hold when the stored item is older than `version`.

    True for a missing item and for an item that was never stamped, so an incoming
    change always beats them.
    """
    return {
        "ConditionExpression": (
            "attribute_not_exists(#vts) OR #vts < :vts"
            " OR (#vts = :vts AND (attribute_not_exists(#vreg) OR #vreg < :vreg))"
        ),
        "ExpressionAttributeNames": {"#vts": TIMESTAMP_ATTR, "#vreg": REGION_ATTR},
        "ExpressionAttributeValues": {
            ":vts": {"N": str(version.timestamp)},
            ":vreg": {"S": version.region},
        },
    }


def replica_older_than_condition(version: Version, local_region: str) -> dict[str, Any]:
    """Like older_than_condition, but only for an item the replicator wrote: stamped by
    another region. Never matches a local application write, stamped or not."""
    return {
        "ConditionExpression": (
            "attribute_exists(#vreg) AND #vreg <> :vlocal"
            " AND (#vts < :vts OR (#vts = :vts AND #vreg < :vreg))"
        ),
        "ExpressionAttributeNames": {"#vts": TIMESTAMP_ATTR, "#vreg": REGION_ATTR},
        "ExpressionAttributeValues": {
            ":vts": {"N": str(version.timestamp)},
            ":vreg": {"S": version.region},
            ":vlocal": {"S": local_region},
        },
    }


def unchanged_condition(image: dict[str, Any], key_attribute: str) -> dict[str, Any]:
    """ConditionExpression parameters that hold while the stored item still exists and carries
    the same version attributes as `image` (compared as stored, even if malformed or absent)."""
    names = {"#vkey": key_attribute}
    values: dict[str, Any] = {}
    clauses = ["attribute_exists(#vkey)"]
    for placeholder, attribute in (("vts", TIMESTAMP_ATTR), ("vreg", REGION_ATTR)):
        names[f"#{placeholder}"] = attribute
        if attribute in image:
            values[f":{placeholder}"] = image[attribute]
            clauses.append(f"#{placeholder} = :{placeholder}")
        else:
            clauses.append(f"attribute_not_exists(#{placeholder})")
    params: dict[str, Any] = {
        "ConditionExpression": " AND ".join(clauses),
        "ExpressionAttributeNames": names,
    }
    if values:
        params["ExpressionAttributeValues"] = values
    return params


def restamp_update(image: dict[str, Any], key_attribute: str, fresh: Version) -> dict[str, Any]:
    """update_item parameters that set the item's version to `fresh`, provided it still exists
    and carries the version attributes `image` has (see unchanged_condition)."""
    params = unchanged_condition(image, key_attribute)
    params["UpdateExpression"] = "SET #vts = :nts, #vreg = :nreg"
    params["ExpressionAttributeValues"] = {
        **params.get("ExpressionAttributeValues", {}),
        ":nts": {"N": str(fresh.timestamp)},
        ":nreg": {"S": fresh.region},
    }
    return params
