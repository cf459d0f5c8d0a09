"""status: per region, what its replicator has applied (the stats table), what waits in its
failure queues, the latest replication lag, and whether it keeps up.

A region keeps up when its replicator applied a batch recently or has nothing to do, its
latest lag is under the threshold, and both its failure queues are empty. Where CloudWatch
has them, the functions' iterator ages over the last 15 minutes are shown too.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from emulator.pipeline import scan_all
from replication.stats import COUNTERS
from tools.loader import STATS_KEY_PREFIX
from tools.operations.context import Context
from tools.operations.sides import Side

SUMMARY = "replication counters, failure queues, lag and whether each region keeps up"
DEFAULT_LAG_THRESHOLD_MS = 60_000
DEFAULT_FUNCTIONS = {"sender": "ddb_send_to_kinesis", "replicator": "replicator_ddb"}


@dataclass
class RegionStatus:
    region: str
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)  # table -> counters
    loaded: dict[str, int] = field(default_factory=dict)  # table -> load_items.py's counter
    queues: dict[str, int] = field(default_factory=dict)  # queue name -> messages waiting
    iterator_age_ms: dict[str, int | None] = field(default_factory=dict)  # function -> max
    problems: list[str] = field(default_factory=list)

    @property
    def keeping_up(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "tables": self.tables,
            "loaded": self.loaded,
            "failure_queues": self.queues,
            "iterator_age_ms": self.iterator_age_ms,
            "keeping_up": self.keeping_up,
            "problems": self.problems,
        }


def read_counters(side: Side) -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
    """The stats table's items: the replicator's per table, and the load generator's."""
    counters: dict[str, dict[str, Any]] = {}
    loaded: dict[str, int] = {}
    for item in scan_all(side.client("dynamodb"), side.names.stats_table):
        key = item["PK"]["S"]
        if key.startswith(STATS_KEY_PREFIX):
            loaded[key[len(STATS_KEY_PREFIX) :]] = int(item.get("loaded", {}).get("N", 0))
            continue
        counters[key] = {
            **{name: int(item.get(name, {}).get("N", 0)) for name in (*COUNTERS, "batches")},
            "last_batch_at": _number(item.get("last_batch_at")),
            "last_lag_ms": _number(item.get("last_lag_ms")),
        }
    return counters, loaded


def _number(value: dict[str, str] | None) -> int | None:
    return int(value["N"]) if value and "N" in value else None


def queue_depths(side: Side) -> dict[str, int]:
    sqs = side.client("sqs")
    depths = {}
    for name in (side.names.sender_failure_queue, side.names.replicator_failure_queue):
        attributes = sqs.get_queue_attributes(
            QueueUrl=side.queue_url(name),
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        depths[name] = int(attributes.get("ApproximateNumberOfMessages", 0)) + int(
            attributes.get("ApproximateNumberOfMessagesNotVisible", 0)
        )
    return depths


def iterator_ages(side: Side, functions: dict[str, str]) -> dict[str, int | None]:
    """Each function's maximum IteratorAge over the last 15 minutes; None without data."""
    cloudwatch = side.client("cloudwatch")
    end = datetime.now(UTC)
    ages: dict[str, int | None] = {}
    for role, name in functions.items():
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/Lambda",
            MetricName="IteratorAge",
            Dimensions=[{"Name": "FunctionName", "Value": name}],
            StartTime=end - timedelta(minutes=15),
            EndTime=end,
            Period=300,
            Statistics=["Maximum"],
        ).get("Datapoints", [])
        ages[role] = int(max(p["Maximum"] for p in points)) if points else None
    return ages


def region_status(
    side: Side,
    lag_threshold_ms: int = DEFAULT_LAG_THRESHOLD_MS,
    functions: dict[str, str] = DEFAULT_FUNCTIONS,
    now_ms: int | None = None,
) -> RegionStatus:
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    tables, loaded = read_counters(side)
    status = RegionStatus(side.region, tables, loaded, queue_depths(side))
    status.iterator_age_ms = iterator_ages(side, functions)
    for queue, depth in status.queues.items():
        if depth:
            status.problems.append(
                f"{depth} message(s) in {queue}: run `ops.py redrive --region {side.region}`"
            )
    for table, counters in tables.items():
        lag = counters["last_lag_ms"]
        if lag is not None and lag > lag_threshold_ms:
            status.problems.append(
                f"{table}: last batch applied {lag / 1000:.1f} s after the write"
            )
        if counters["failed"] or counters["poison"]:
            at = counters["last_batch_at"]
            since = f" (last batch {(now_ms - at) / 1000:.0f} s ago)" if at else ""
            status.problems.append(
                f"{table}: {counters['failed']} failed and {counters['poison']} poison "
                f"change(s) so far{since}: check the failure queues, then verify"
            )
    for role, age in status.iterator_age_ms.items():
        if age is not None and age > lag_threshold_ms:
            status.problems.append(f"the {role} is {age / 1000:.0f} s behind its stream")
    return status


# -- command line -----------------------------------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add(
        "--lag-threshold-ms",
        type=int,
        default=DEFAULT_LAG_THRESHOLD_MS,
        help="lag (and iterator age) above which a region is falling behind (default: %(default)s)",
    )
    add("--sender-function", default=DEFAULT_FUNCTIONS["sender"], help="(default: %(default)s)")
    add(
        "--replicator-function",
        default=DEFAULT_FUNCTIONS["replicator"],
        help="(default: %(default)s)",
    )


def main(args: argparse.Namespace, ctx: Context) -> int:
    functions = {"sender": args.sender_function, "replicator": args.replicator_function}
    now_ms = int(time.time() * 1000)
    statuses = [
        region_status(side, args.lag_threshold_ms, functions, now_ms)
        for side in (ctx.here, ctx.peer)
    ]
    lines = []
    for status in statuses:
        lines.append(f"{status.region}: {'keeping up' if status.keeping_up else 'NEEDS ATTENTION'}")
        for table, c in sorted(status.tables.items()):
            at = c["last_batch_at"]
            age = f"{(now_ms - at) / 1000:.0f} s ago" if at else "never"
            lag = f"{c['last_lag_ms']} ms" if c["last_lag_ms"] is not None else "-"
            lines.append(
                f"  {table}: replicated {c['replicated']}, stale {c['stale']}, "
                f"failed {c['failed']}, poison {c['poison']}; last batch {age}, lag {lag}"
            )
        if not status.tables:
            lines.append("  nothing applied yet")
        for table, count in sorted(status.loaded.items()):
            lines.append(f"  {table}: {count} written by load_items.py")
        lines.append("  failure queues: " + ", ".join(f"{q} {n}" for q, n in status.queues.items()))
        ages = [
            f"{role} {age} ms" for role, age in status.iterator_age_ms.items() if age is not None
        ]
        if ages:
            lines.append("  iterator age (15 min max): " + ", ".join(ages))
        lines.extend(f"  - {problem}" for problem in status.problems)
    ctx.emit({"regions": [s.to_json() for s in statuses]}, lines)
    return 0 if all(s.keeping_up for s in statuses) else 1
