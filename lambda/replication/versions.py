"""Item versions and the last-writer-wins rule both regions apply.

A version is the pair (last_update_timestamp, last_updater_region): a time, then the region
name as a tie-break, so two regions that write the same key at the same instant still pick
the same winner. Every write the system applies is conditioned on the incoming version being
strictly newer than the stored one, which makes replays and duplicates harmless.

The time is stored in one unit for the whole deployment (VERSION_UNIT): whole epoch
milliseconds (this project's), or epoch seconds, fractions allowed (the original sample's
applications stamp `Decimal(time.time())`). Inside the engine a version is always milliseconds:
`timestamp` the whole milliseconds, and, for a seconds stamp finer than that, `fraction` the
rest of a millisecond, kept exactly so that versions order here as DynamoDB orders the stored
numbers.
"""

from __future__ import annotations

import re
import time
from decimal import Context, Decimal, InvalidOperation
from typing import Any, NamedTuple

TIMESTAMP_ATTR = "last_update_timestamp"
REGION_ATTR = "last_updater_region"
MILLISECONDS, SECONDS = "milliseconds", "seconds"
VERSION_UNITS = (MILLISECONDS, SECONDS)
# A wire fraction: the digits of any stored number's rest of a millisecond. DynamoDB keeps
# 38 significant digits down to 1E-130, so one can start 127 zeros after the point.
_FRACTION = re.compile(r"0\.[0-9]{1,170}")
# Exact arithmetic on any number DynamoDB can store (38 significant digits), scaled.
_EXACT = Context(prec=100)


class Version(NamedTuple):
    """Orders by time (milliseconds, then any fraction of one), then region name."""

    timestamp: int  # epoch milliseconds, whole
    region: str
    fraction: Decimal | int = 0  # the rest of a millisecond, in [0, 1): seconds stamps only

    def _order(self) -> tuple[int, Decimal | int, str]:
        return (self.timestamp, self.fraction, self.region)

    def __lt__(self, other: object) -> bool:
        return self._order() < other._order()  # type: ignore[attr-defined]

    def __le__(self, other: object) -> bool:
        return self._order() <= other._order()  # type: ignore[attr-defined]

    def __gt__(self, other: object) -> bool:
        return self._order() > other._order()  # type: ignore[attr-defined]

    def __ge__(self, other: object) -> bool:
        return self._order() >= other._order()  # type: ignore[attr-defined]

    def beyond(self, horizon_ms: int) -> bool:
        """Later than `horizon_ms`, by as little as a fraction of a millisecond (as a
        condition comparing the stored numbers finds it)."""
        return (self.timestamp, self.fraction) > (horizon_ms, 0)

    def bumped(self, now_ms: int, region: str) -> Version:
        """A version for `region` newer than this one, at `now_ms` unless the clock lags."""
        return Version(max(now_ms, self.timestamp + 1), region)

    def stored(self, unit: str = MILLISECONDS) -> str:
        """The timestamp as the number stored in `unit`: exact, never in exponent form."""
        if unit == MILLISECONDS and not self.fraction:
            return str(self.timestamp)
        exact = _EXACT.add(Decimal(self.timestamp), Decimal(self.fraction))
        if unit == SECONDS:
            exact = _EXACT.scaleb(exact, -3)
        return format(exact, "f")

    def to_typed(self, unit: str = MILLISECONDS) -> dict[str, dict[str, str]]:
        return {TIMESTAMP_ATTR: {"N": self.stored(unit)}, REGION_ATTR: {"S": self.region}}

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"timestamp": self.timestamp, "region": self.region}
        if self.fraction:
            wire["fraction"] = format(self.fraction, "f")
        return wire


# What an item that was never stamped counts as: older than any real write.
UNVERSIONED = Version(0, "")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# Far beyond any epoch millisecond, and far below what makes int() of a Decimal slow.
MAX_TIMESTAMP_DIGITS = 40


def parse_timestamp(raw: Any) -> int | None:
    """Epoch milliseconds from a DynamoDB number string; None unless a whole number >= 0."""
    parsed = parse_stored(raw, MILLISECONDS)
    return None if parsed is None or parsed[1] else parsed[0]


def parse_stored(raw: Any, unit: str = MILLISECONDS) -> tuple[int, Decimal | int] | None:
    """(whole milliseconds, fraction of one) from a stored number in `unit`; None unless it is
    a number >= 0 that the unit allows (milliseconds: whole ones only)."""
    try:
        value = Decimal(raw)
    except (InvalidOperation, TypeError, ValueError):
        return None
    if not value.is_finite() or value < 0 or value.adjusted() >= MAX_TIMESTAMP_DIGITS:
        return None
    if unit == SECONDS:
        value = _EXACT.scaleb(value, 3)
    whole = value.to_integral_value(rounding="ROUND_FLOOR")
    if whole == value:
        return int(whole), 0
    if unit == MILLISECONDS:
        return None
    return int(whole), _EXACT.subtract(value, whole)


def of_image(image: dict[str, Any] | None, unit: str = MILLISECONDS) -> Version | None:
    """The version a typed item image carries, or None when it is not properly stamped."""
    if not image:
        return None
    ts = image.get(TIMESTAMP_ATTR, {})
    region = image.get(REGION_ATTR, {})
    if "N" not in ts or "S" not in region:
        return None
    parsed = parse_stored(ts["N"], unit)
    if parsed is None or not region["S"]:
        return None
    return Version(parsed[0], region["S"], parsed[1])


def from_wire(raw: Any) -> Version:
    """Parse a wire version; raises ValueError on anything but {timestamp: int, region: str}
    and, for a seconds stamp finer than a millisecond, fraction: "0.<digits>"."""
    if not isinstance(raw, dict):
        raise ValueError("version must be an object")
    timestamp, region = raw.get("timestamp"), raw.get("region")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp < 0:
        raise ValueError("version.timestamp must be a whole number of milliseconds")
    if not isinstance(region, str) or not region:
        raise ValueError("version.region must be a non-empty string")
    if "fraction" not in raw:
        return Version(timestamp, region)
    fraction = raw["fraction"]
    if not isinstance(fraction, str) or not _FRACTION.fullmatch(fraction):
        raise ValueError("version.fraction must be a decimal string between 0 and 1")
    value = Decimal(fraction)
    if not value:
        raise ValueError("version.fraction must be a decimal string between 0 and 1")
    return Version(timestamp, region, value)


def trusted(version: Version | None, horizon_ms: int) -> Version:
    """`version`, unless it is missing or further ahead than `horizon_ms` (this function's
    clock plus the allowed skew): such a version was stamped by a clock gone wrong, and counts
    as older than any real one, so it can't freeze the item it is on."""
    if version is None or version.beyond(horizon_ms):
        return UNVERSIONED
    return version


def older_than_condition(
    version: Version, horizon_ms: int | None = None, unit: str = MILLISECONDS
) -> dict[str, Any]:
    """ConditionExpression parameters that hold when the stored item is older than `version`.

    True for a missing item and for an item that was never stamped, so an incoming
    change always beats them; with `horizon_ms`, also for an item stamped beyond it
    (see trusted).
    """
    condition = (
        "attribute_not_exists(#vts) OR #vts < :vts"
        " OR (#vts = :vts AND (attribute_not_exists(#vreg) OR #vreg < :vreg))"
    )
    values = {":vts": {"N": version.stored(unit)}, ":vreg": {"S": version.region}}
    if horizon_ms is not None:
        condition += " OR #vts > :vhorizon"
        values[":vhorizon"] = {"N": Version(horizon_ms, "").stored(unit)}
    return {
        "ConditionExpression": condition,
        "ExpressionAttributeNames": {"#vts": TIMESTAMP_ATTR, "#vreg": REGION_ATTR},
        "ExpressionAttributeValues": values,
    }


def replica_older_than_condition(
    version: Version, local_region: str, unit: str = MILLISECONDS
) -> dict[str, Any]:
    """Like older_than_condition, but only for an item the replicator wrote: stamped by
    another region. Never matches a local application write, stamped or not."""
    return {
        "ConditionExpression": (
            "attribute_exists(#vreg) AND #vreg <> :vlocal"
            " AND (#vts < :vts OR (#vts = :vts AND #vreg < :vreg))"
        ),
        "ExpressionAttributeNames": {"#vts": TIMESTAMP_ATTR, "#vreg": REGION_ATTR},
        "ExpressionAttributeValues": {
            ":vts": {"N": version.stored(unit)},
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


def restamp_update(
    image: dict[str, Any], key_attribute: str, fresh: Version, unit: str = MILLISECONDS
) -> dict[str, Any]:
    """update_item parameters that set the item's version to `fresh`, provided it still exists
    and carries the version attributes `image` has (see unchanged_condition)."""
    params = unchanged_condition(image, key_attribute)
    params["UpdateExpression"] = "SET #vts = :nts, #vreg = :nreg"
    params["ExpressionAttributeValues"] = {
        **params.get("ExpressionAttributeValues", {}),
        ":nts": {"N": fresh.stored(unit)},
        ":nreg": {"S": fresh.region},
    }
    return params
