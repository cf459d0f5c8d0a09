"""verify: do both regions hold the same items? --repair: settle each difference by the merge
rule, never by letting one side win.

Both tables are scanned at once, each in parallel segments, and reduced to (key, digest,
version) rows in an on-disk index (item_index.py), so memory stays flat however big the tables
are. Reads can be held under a read-capacity budget per table (--max-rcu).

Repair re-reads each differing item from both sides (live replication may have settled it
meanwhile) and hands the newer state to the other side's replicator, as if it had arrived on
its stream: the same version-conditioned writes and tombstone checks. An item missing on one
side is a delete there when that side's tombstone is newer than the other's copy, and a missed
put otherwise.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from replication import versions, wire
from replication.inbound import Replicator
from replication.tombstones import Tombstones
from tools import cli
from tools.loader import RateLimiter
from tools.operations.context import Context
from tools.operations.functions import (
    apply_changes,
    delete_change,
    put_change,
    replicator_for,
)
from tools.operations.item_index import Difference, ItemIndex, Row, item_text, key_from_text, row
from tools.operations.sides import Side, mirror_keys, peer_table

SUMMARY = "compare both regions' tables item by item; --repair settles each difference"
DEFAULT_SEGMENTS = 4
DEFAULT_PAGE_SIZE = 1000
# An eventually consistent scan reads 4 KB per half unit; moto doesn't report ConsumedCapacity.
RCU_BYTES = 8192


@dataclass
class TableSide:
    """One of the two tables being compared."""

    name: str  # "here" or "peer", as in the index
    side: Side
    table: str


@dataclass
class VerifyResult:
    scanned: dict[str, int]
    differences: Counter = field(default_factory=Counter)  # kind -> count
    repairs: Counter = field(default_factory=Counter)  # outcome -> count
    seconds: float = 0.0

    @property
    def in_sync(self) -> bool:
        """True when the tables agree, or every difference found was settled."""
        settled = self.repairs["repaired"] + self.repairs["converged"]
        return settled == sum(self.differences.values())


def scan_table(
    index: ItemIndex,
    source: TableSide,
    key_names: tuple[str, ...],
    segment: int,
    segments: int,
    page_size: int,
    limiter: RateLimiter | None,
    on_page: Callable[[str, int], None],
) -> None:
    """Scan one segment of `source` into the index, page by page."""
    ddb = source.side.client("dynamodb")
    start: dict[str, Any] = {}
    while True:
        page = ddb.scan(
            TableName=source.table,
            Segment=segment,
            TotalSegments=segments,
            Limit=page_size,
            ReturnConsumedCapacity="TOTAL",
            **start,
        )
        unit = source.side.version_unit
        rows = [row(item, key_names, unit) for item in page.get("Items", [])]
        index.add(source.name, rows)
        on_page(source.name, len(rows))
        if limiter:
            limiter.acquire(consumed_rcu(page, rows))
        if "LastEvaluatedKey" not in page:
            return
        start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}


def consumed_rcu(page: dict[str, Any], rows: list[Row]) -> float:
    """What the page cost: as DynamoDB reports it, else estimated from the items' size."""
    reported = page.get("ConsumedCapacity", {}).get("CapacityUnits")
    if reported is not None:
        return float(reported)
    return max(0.5, sum(r.size for r in rows) / RCU_BYTES)


# -- repair -----------------------------------------------------------------------------------


class Repairer:
    """Settles one difference at a time through the replicators of both regions."""

    def __init__(self, here: TableSide, peer: TableSide, key_names: tuple[str, ...]):
        self.sides = {"here": here, "peer": peer}
        self.key_names = key_names
        self._replicators: dict[str, Replicator] = {}

    def replicator(self, name: str) -> Replicator:
        if name not in self._replicators:
            self._replicators[name] = replicator_for(self.sides[name].side, concurrency=4)
        return self._replicators[name]

    def read(self, name: str, key: dict[str, Any]) -> dict[str, Any] | None:
        s = self.sides[name]
        response = s.side.client("dynamodb").get_item(
            TableName=s.table, Key=key, ConsistentRead=True
        )
        return response.get("Item")

    def tombstone(self, name: str, key: dict[str, Any]) -> versions.Version | None:
        s = self.sides[name]
        tombstones = Tombstones(s.side.client("dynamodb"), s.side.names.tombstone_table, 0)
        kid = wire.key_id(s.table, wire.item_from_client(key))
        return tombstones.versions([kid]).get(kid)

    def plan(self, difference: Difference) -> tuple[str, str, Any]:
        """(action, target, payload) for the difference as the tables are now:
        ("none", "", None) when they agree, ("unresolved", reason, None) when the merge rule
        can't decide, ("put", target, item) or ("delete", target, version)."""
        key = key_from_text(difference.key, self.key_names)
        items = {name: self.read(name, key) for name in ("here", "peer")}
        if _same(items["here"], items["peer"]):
            return ("none", "", None)
        found = {
            name: versions.of_image(item, self.sides[name].side.version_unit)
            for name, item in items.items()
            if item
        }
        if len(found) == 1:
            [(holder, version)] = found.items()
            missing = _other(holder)
            if version is None:
                return ("unresolved", f"unversioned item only in {self._region(holder)}", None)
            tombstone = self.tombstone(missing, key)
            if tombstone is not None and tombstone > version:
                return ("delete", holder, tombstone)  # the delete is newer: it wins
            return ("put", missing, items[holder])
        here, peer = found["here"], found["peer"]
        if here is None and peer is None:
            return ("unresolved", "both copies are unversioned", None)
        if here == peer:
            return ("unresolved", f"same version {here} with different content", None)
        winner = (
            "here" if (here or versions.UNVERSIONED) > (peer or versions.UNVERSIONED) else "peer"
        )
        return ("put", "peer" if winner == "here" else "here", items[winner])

    def settle(self, difference: Difference, dry_run: bool) -> tuple[str, str]:
        """(outcome, detail): converged, repaired, would-repair, unresolved or failed."""
        action, target, payload = self.plan(difference)
        if action == "none":
            return ("converged", "")
        if action == "unresolved":
            return ("unresolved", target)
        detail = (
            f"{action} in {self._region(target)}"
            if action == "put"
            else f"delete in {self._region(target)} (tombstone {payload})"
        )
        if dry_run:
            return ("would-repair", detail)
        # A put carries the other side's item; a delete is the other side's, whose tombstone
        # it is. Either way it reaches `target` as a change from the other side.
        origin = self.sides[_other(target)]
        key = key_from_text(difference.key, self.key_names)
        if action == "put":
            change = put_change(
                origin.side.region, origin.table, payload, self.key_names, origin.side.version_unit
            )
        else:
            change = delete_change(origin.side.region, origin.table, key, payload)
        apply_changes(self.replicator(target), [change])
        if _same(self.read("here", key), self.read("peer", key)):
            return ("repaired", detail)
        return ("failed", f"{detail}: the tables still differ (a newer write may be in flight)")

    def _region(self, name: str) -> str:
        return self.sides[name].side.region


def _other(name: str) -> str:
    return "peer" if name == "here" else "here"


def _same(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return item_text(a) == item_text(b)


# -- the whole run ----------------------------------------------------------------------------


def verify(
    here: TableSide,
    peer: TableSide,
    segments: int = DEFAULT_SEGMENTS,
    page_size: int = DEFAULT_PAGE_SIZE,
    max_rcu: float | None = None,
    repair: bool = False,
    dry_run: bool = False,
    report: TextIO | None = None,
    workdir: Path | None = None,
    on_page: Callable[[str, int], None] = lambda side, n: None,
    on_difference: Callable[[], None] = lambda: None,
) -> VerifyResult:
    key_names = mirror_keys(here.side, here.table, peer.side, peer.table)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir=workdir, prefix="verify-") as scratch:
        index = ItemIndex(Path(scratch) / "items.sqlite")
        # One rate limit per table: they are read from different accounts' capacity.
        limiters = {
            s.name: RateLimiter(max_rcu, burst=max_rcu) if max_rcu else None for s in (here, peer)
        }
        with ThreadPoolExecutor(2 * segments, thread_name_prefix="scan") as pool:
            scans = [
                pool.submit(
                    scan_table,
                    index,
                    s,
                    key_names,
                    segment,
                    segments,
                    page_size,
                    limiters[s.name],
                    on_page,
                )
                for s in (here, peer)
                for segment in range(segments)
            ]
        # Every scan has ended (the pool waited), so nothing adds after the index closes.
        index.close()
        for scan in scans:
            scan.result()  # the first scan's error, if any
        result = VerifyResult(scanned=dict(index.counts))
        repairer = Repairer(here, peer, key_names) if repair else None
        for difference in index.differences():
            result.differences[difference.kind] += 1
            entry = {
                "kind": difference.kind,
                "key": dict(zip(key_names, json.loads(difference.key), strict=True)),
                here.side.region: _wire_version(difference.here),
                peer.side.region: _wire_version(difference.peer),
            }
            if repairer:
                outcome, detail = repairer.settle(difference, dry_run)
                result.repairs[outcome] += 1
                entry.update(repair=outcome, detail=detail)
            if report:
                report.write(json.dumps(entry, ensure_ascii=False) + "\n")
            on_difference()
    result.seconds = time.monotonic() - started
    return result


def _wire_version(version: versions.Version | None) -> dict[str, Any] | None:
    return version.to_wire() if version else None


# -- command line -----------------------------------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--table", help="the table in --region (needed when it replicates several)")
    add(
        "--segments",
        type=cli.int_in(1),
        default=DEFAULT_SEGMENTS,
        help="parallel scan segments per table (default: %(default)s)",
    )
    add(
        "--page-size",
        type=cli.int_in(1),
        default=DEFAULT_PAGE_SIZE,
        help="items per Scan page (default: %(default)s)",
    )
    add(
        "--max-rcu",
        type=cli.positive_float,
        metavar="UNITS",
        help="read capacity units per second per table (default: no limit)",
    )
    add("--report", type=Path, metavar="FILE", help="write each difference as a JSON line")
    add(
        "--repair",
        action="store_true",
        help="settle each difference by the merge rule (with --dry-run: say how)",
    )
    add(
        "--workdir",
        type=Path,
        metavar="DIR",
        help="where the on-disk index goes (default: the system's temp)",
    )


def main(args: argparse.Namespace, ctx: Context) -> int:
    table, theirs = peer_table(ctx.here.names, ctx.peer.names, args.table)
    here = TableSide("here", ctx.here, table)
    peer = TableSide("peer", ctx.peer, theirs)
    totals = {
        name: int(s.side.describe_table(s.table).get("ItemCount", 0))
        for name, s in (("here", here), ("peer", peer))
    }
    report = args.report.open("w") if args.report else None
    try:
        with ctx.progress() as progress:
            tasks = {
                name: progress.add_task(
                    f"{s.side.region} {s.table}", total=totals[name] or None, note=""
                )
                for name, s in (("here", here), ("peer", peer))
            }
            found = progress.add_task("differences", total=None, note="")
            result = verify(
                here,
                peer,
                segments=args.segments,
                page_size=args.page_size,
                max_rcu=args.max_rcu,
                repair=args.repair,
                dry_run=ctx.dry_run,
                report=report,
                workdir=args.workdir,
                on_page=lambda side, n: progress.advance(tasks[side], n),
                on_difference=lambda: progress.advance(found),
            )
    finally:
        if report:
            report.close()
    items = sum(result.scanned.values())
    summary = {
        "regions": {ctx.here.region: table, ctx.peer.region: theirs},
        "scanned": {
            ctx.here.region: result.scanned["here"],
            ctx.peer.region: result.scanned["peer"],
        },
        f"only_in_{ctx.here.region}": result.differences["only_here"],
        f"only_in_{ctx.peer.region}": result.differences["only_peer"],
        "differing": result.differences["differs"],
        "repairs": dict(result.repairs),
        "seconds": round(result.seconds, 2),
        "items_per_second": round(items / result.seconds) if result.seconds else None,
        "in_sync": result.in_sync,
    }
    rows = [
        (f"{ctx.here.region} {table}", f"{result.scanned['here']} items"),
        (f"{ctx.peer.region} {theirs}", f"{result.scanned['peer']} items"),
        (f"only in {ctx.here.region}", f"{result.differences['only_here']} items"),
        (f"only in {ctx.peer.region}", f"{result.differences['only_peer']} items"),
        ("differing", f"{result.differences['differs']} items"),
    ]
    width = max(len(label) for label, _ in rows) + 2
    lines = [f"{label:<{width}}{value:>12}" for label, value in rows]
    if args.repair:
        lines.append(
            "repairs "
            + (", ".join(f"{k} {v}" for k, v in sorted(result.repairs.items())) or "none needed")
        )
    lines.append(f"{items} items in {result.seconds:.1f} s ({summary['items_per_second']} items/s)")
    if result.in_sync:
        lines.append(
            "both regions hold the same items"
            if not result.differences
            else "every difference was settled"
        )
    elif not args.repair:
        lines.append(
            "run again with --repair to settle the differences (--dry-run --repair shows how)"
        )
    ctx.emit(summary, lines)
    return 0 if result.in_sync else 1
