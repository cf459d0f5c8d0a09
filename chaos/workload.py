"""What a campaign writes: applications in both regions on a shared, hot set of keys, and a
hostile peer.

Each region runs a few application instances, one with the true time and the others with
clocks skewed up to ±10 s. They put, update and delete, mostly stamping their writes as the
writer contract asks, some not at all, some deleting with a stamp. Every write carries a value
no other write has, so the checker can tell whose write an item holds. Each acknowledged write
is logged with the true time it was made.

The hostile peer puts records straight onto a region's replication stream: bytes that are no
change at all, an unsigned change, one signed with a key the ring does not have, and one that
claims to come from the region itself. Every one must be isolated as poison, and nothing else.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from botocore.exceptions import ClientError

from emulator.stepped import Node, TwoRegions
from replication import wire
from replication.signing import SigningKeys
from replication.stamping import stamp, stamped_delete, stamped_update
from replication.versions import REGION_ATTR, TIMESTAMP_ATTR, Version

HOT_KEYS = [f"hot-{i}" for i in range(8)]
MAX_SKEW_MS = 10_000
OPS = (
    ("put", 30),
    ("stamped update", 15),
    ("unstamped put", 8),
    ("unstamped update", 10),
    ("delete", 14),
    ("stamped delete", 6),
    ("tied put", 5),
    ("poison", 4),
)


@dataclass(frozen=True)
class Write:
    """An acknowledged application write, at its true time."""

    region: str
    key: str
    op: str
    true_ms: int
    content: dict[str, Any] | None  # the item after the write, without its version; None: gone
    stamp: Version | None = None  # the version the application wrote, if it stamped


@dataclass
class Workload:
    regions: TwoRegions
    seed: int
    log: list[Write] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    poison: Counter = field(default_factory=Counter)  # region -> records put on its stream

    def __post_init__(self) -> None:
        self.rng = random.Random(f"chaos-workload:{self.seed}")
        self.skews = {
            name: [0, *(self.rng.randint(-MAX_SKEW_MS, MAX_SKEW_MS) for _ in range(2))]
            for name in self.regions.nodes
        }
        self.tied_ms: int | None = None
        self.serial = 0

    def write(self) -> str:
        node = self.rng.choice(list(self.regions.nodes.values()))
        op = self.rng.choices([o for o, _ in OPS], [w for _, w in OPS])[0]
        key = {"PK": {"S": self.rng.choice(HOT_KEYS)}}
        self.serial += 1
        value = {"S": f"{node.name}-{self.serial}"}
        app_clock = node.clock() + self.rng.choice(self.skews[node.name])
        done = getattr(self, "_" + op.replace(" ", "_"))(node, key, value, app_clock)
        self.counts[op if done else f"{op} (not acknowledged)"] += 1
        return op

    # -- the operations ------------------------------------------------------------------

    def _put(self, node: Node, key, value, app_clock: int) -> bool:
        item = stamp({**key, "v": value}, node.name, app_clock, typed=True)
        return self._put_item(node, key, item)

    def _tied_put(self, node: Node, key, value, app_clock: int) -> bool:
        """The same instant in both regions: only the region tie-break decides."""
        if self.tied_ms is None:
            self.tied_ms = app_clock
        item = stamp({**key, "v": value}, node.name, self.tied_ms, typed=True)
        return self._put_item(node, key, item)

    def _unstamped_put(self, node: Node, key, value, app_clock: int) -> bool:
        return self._put_item(node, key, {**key, "v": value})

    def _stamped_update(self, node: Node, key, value, app_clock: int) -> bool:
        update = stamped_update(node.name, "SET #v = :v", {"#v": "v"}, {":v": value}, app_clock)
        return self._update(node, key, update, stamped=True)

    def _unstamped_update(self, node: Node, key, value, app_clock: int) -> bool:
        update = {
            "UpdateExpression": "SET #v = :v",
            "ExpressionAttributeNames": {"#v": "v"},
            "ExpressionAttributeValues": {":v": value},
        }
        return self._update(node, key, update)

    def _delete(self, node: Node, key, value, app_clock: int) -> bool:
        gone = node.client("dynamodb").delete_item(
            TableName=node.table, Key=key, ReturnValues="ALL_OLD"
        )
        if gone.get("Attributes"):  # a delete of nothing makes no change to judge
            self._log(node, key, "delete", None)
        return True

    def _stamped_delete(self, node: Node, key, value, app_clock: int) -> bool:
        stamp_it, delete_it = stamped_delete(node.name, "PK", app_clock)
        ddb = node.client("dynamodb")
        try:
            stamped = ddb.update_item(
                TableName=node.table, Key=key, ReturnValues="ALL_NEW", **stamp_it
            )["Attributes"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return False  # nothing to delete
        self._log(node, key, "stamp before delete", stamped, stamped=True)
        try:
            ddb.delete_item(TableName=node.table, Key=key, **delete_it)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return False  # written meanwhile: the application would read it again
        self._log(node, key, "stamped delete", None)
        return True

    def _poison(self, node: Node, key, value, app_clock: int) -> bool:
        """A record from a hostile peer on this region's replication stream."""
        peer = next(n for n in self.regions.nodes.values() if n is not node)
        change = wire.Change(
            table=peer.table,
            op=wire.PUT,
            keys=key,
            version=Version(peer.clock(), peer.name),
            origin=peer.name,
            stream_ts_ms=peer.clock(),
            item={**key, "v": value, **Version(peer.clock(), peer.name).to_typed()},
            event_id=f"forged-{self.serial}",
        )
        kind = self.rng.randrange(4)
        if kind == 0:
            data = b"\x00 not a change \xff"
        elif kind == 1:
            data = wire.pack(change, None)  # unsigned
        elif kind == 2:
            data = wire.pack(change, SigningKeys.generate("k20260101000000forged"))
        else:  # claims to come from this region: a loop
            data = wire.pack(replace(change, origin=node.name), None)
        node.client("kinesis").put_record(
            StreamName=node.region.names.replication_stream,
            Data=data,
            PartitionKey=f"forged-{self.serial}",
        )
        self.poison[node.name] += 1
        return True

    # -- helpers --------------------------------------------------------------------------

    def _put_item(self, node: Node, key, item: dict[str, Any]) -> bool:
        node.client("dynamodb").put_item(TableName=node.table, Item=item)
        self._log(node, key, "put", item, stamped=TIMESTAMP_ATTR in item)
        return True

    def _update(self, node: Node, key, update: dict[str, Any], stamped: bool = False) -> bool:
        after = node.client("dynamodb").update_item(
            TableName=node.table, Key=key, ReturnValues="ALL_NEW", **update
        )["Attributes"]
        self._log(node, key, "update", after, stamped=stamped)
        return True

    def _log(
        self, node: Node, key, op: str, item: dict[str, Any] | None, stamped: bool = False
    ) -> None:
        content = None if item is None else without_version(item)
        version = None
        if stamped and item is not None:
            version = Version(int(item[TIMESTAMP_ATTR]["N"]), item[REGION_ATTR]["S"])
        self.log.append(Write(node.name, key["PK"]["S"], op, node.clock(), content, version))


def without_version(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in (TIMESTAMP_ATTR, REGION_ATTR)}
