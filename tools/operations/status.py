"""status: per region, what its replicator has applied (the stats table), what waits in its
failure queues, the latest replication lag, the peer's latest heartbeat, and whether it keeps up.

A region keeps up when its replicator applied a batch recently or has nothing to do, its
latest lag is under the threshold, both its failure queues are empty, and the peer's latest
heartbeat is recent. Where CloudWatch has them, the functions' iterator ages over the last 15
minutes are shown too.

Heartbeats: each region's sender ships one every minute (an EventBridge schedule) through the
whole path, signed, with the peer's keys, over the link; the receiving replicator records it
in its stats table as heartbeat#<origin> (sent_at on the origin's clock, received_at on its
own). So the peer's heartbeat in this region's table says the direction peer -> here works,
and this region's in the peer's table the other. Its age is counted from when it was sent, so
a backlog shows as well as a cut. A table that has never seen a heartbeat is given the
threshold from its creation to receive the first (a new deployment); after that, none is a
problem.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from deployment.tables import LOADER_STATS_PREFIX, scan_all
from replication.stats import COUNTERS, HEARTBEAT_PREFIX
from tools import cli
from tools.operations.context import Context
from tools.operations.sides import Side

SUMMARY = "replication counters, failure queues, lag and whether each region keeps up"
DEFAULT_LAG_THRESHOLD_MS = 60_000
DEFAULT_HEARTBEAT_THRESHOLD_S = 300.0  # five missed heartbeats, sent every minute


@dataclass
class RegionStatus:
    region: str
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)  # table -> counters
    loaded: dict[str, int] = field(default_factory=dict)  # table -> load_items.py's counter
    queues: dict[str, int] = field(default_factory=dict)  # queue name -> messages waiting
    iterator_age_ms: dict[str, int | None] = field(default_factory=dict)  # function -> max
    heartbeat: Heartbeat | None = None  # the peer's latest, as this region received it
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
            "heartbeat": self.heartbeat.to_json() if self.heartbeat else None,
            "keeping_up": self.keeping_up,
            "problems": self.problems,
        }


@dataclass
class Heartbeat:
    """The latest heartbeat one region received from the other: the direction origin -> to."""

    origin: str
    to: str
    sent_at: int | None = None  # epoch ms, the origin's clock; None: none received yet
    received_at: int | None = None  # epoch ms, the receiver's clock
    age_s: float | None = None  # since it was sent
    state: str = "ok"  # ok | late | missing | awaited (none yet, in a new deployment)

    def to_json(self) -> dict[str, Any]:
        return {
            "from": self.origin,
            "to": self.to,
            "sent_at": self.sent_at,
            "received_at": self.received_at,
            "age_s": self.age_s,
            "state": self.state,
        }

    def line(self) -> str:
        where = f"heartbeat {self.origin} -> {self.to}"
        if self.sent_at is None or self.received_at is None or self.age_s is None:
            if self.state == "awaited":
                return f"{where}: none yet (the first is due within a few minutes of deploying)"
            return f"{where}: none received"
        took = (self.received_at - self.sent_at) / 1000
        return f"{where}: sent {_seconds(self.age_s)} ago, arrived after {took:.1f} s"


def read_counters(
    side: Side,
) -> tuple[dict[str, dict[str, Any]], dict[str, int], dict[str, tuple[int, int]]]:
    """The stats table's items: the replicator's per table, the load generator's, and the
    heartbeats received (origin -> sent_at, received_at)."""
    counters: dict[str, dict[str, Any]] = {}
    loaded: dict[str, int] = {}
    heartbeats: dict[str, tuple[int, int]] = {}
    for item in scan_all(side.client("dynamodb"), side.names.stats_table):
        key = item["PK"]["S"]
        if key.startswith(LOADER_STATS_PREFIX):
            loaded[key[len(LOADER_STATS_PREFIX) :]] = int(item.get("loaded", {}).get("N", 0))
            continue
        if key.startswith(HEARTBEAT_PREFIX):
            sent, received = _number(item.get("sent_at")), _number(item.get("received_at"))
            if sent is not None and received is not None:
                heartbeats[key[len(HEARTBEAT_PREFIX) :]] = (sent, received)
            continue
        counters[key] = {
            **{name: int(item.get(name, {}).get("N", 0)) for name in (*COUNTERS, "batches")},
            "last_batch_at": _number(item.get("last_batch_at")),
            "last_lag_ms": _number(item.get("last_lag_ms")),
        }
    return counters, loaded, heartbeats


def _seconds(value: float) -> str:
    """A number of seconds as precisely as it matters: tenths only below ten."""
    return f"{value:.1f} s" if value < 10 else f"{value:.0f} s"


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


def iterator_ages(side: Side) -> dict[str, int | None]:
    """Each function's maximum IteratorAge over the last 15 minutes; None without data."""
    cloudwatch = side.client("cloudwatch")
    end = datetime.now(UTC)
    ages: dict[str, int | None] = {}
    functions = {"sender": side.names.sender_function, "replicator": side.names.replicator_function}
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


def heartbeat_status(
    side: Side,
    origin: str,
    received: tuple[int, int] | None,
    threshold_s: float,
    now_ms: int,
) -> tuple[Heartbeat, str | None]:
    """The direction origin -> side.region: its latest heartbeat, and the problem if any."""
    beat = Heartbeat(origin, side.region)
    checks = (
        f"check the link into {side.region}, {origin}'s keys for it (`peer_keys.py --region "
        f"{origin} --check`), the signing keys (`signing_keys.py check --region {side.region}`), "
        f"{origin}'s sender schedule (a heartbeat every minute), then `ops.py redrive --region "
        f"{origin}`"
    )
    if received is None:
        created = side.describe_table(side.names.stats_table).get("CreationDateTime")
        table_age_s = now_ms / 1000 - created.timestamp() if created else None
        if table_age_s is not None and table_age_s < threshold_s:
            beat.state = "awaited"
            return beat, None
        beat.state = "missing"
        return beat, (
            f"no heartbeat from {origin} has arrived (if heartbeats were deployed only minutes "
            f"ago, wait for the first): {checks}"
        )
    beat.sent_at, beat.received_at = received
    beat.age_s = round(max(0, now_ms - beat.sent_at) / 1000, 1)
    if beat.age_s <= threshold_s:
        return beat, None
    beat.state = "late"
    return beat, (
        f"the latest heartbeat from {origin} was sent {_seconds(beat.age_s)} ago (over "
        f"{threshold_s:g} s): {checks}"
    )


# modules/replication_node/monitoring.tf's topic, which alarm_emails subscribe to.
ALARM_TOPIC = "ddb-replication-alarms"


def unconfirmed_alarm_emails(side: Side) -> list[str]:
    """The alarm e-mail addresses whose subscription nobody confirmed yet: SNS mails each one
    a link and delivers nothing to it until it is opened. Empty where the topic can't be read."""
    sns = side.client("sns")
    try:
        topics = [
            topic["TopicArn"]
            for page in sns.get_paginator("list_topics").paginate()
            for topic in page.get("Topics", [])
            if topic["TopicArn"].endswith(f":{ALARM_TOPIC}")
        ]
        pending = [
            subscription["Endpoint"]
            for arn in topics
            for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=arn)
            for subscription in page.get("Subscriptions", [])
            if subscription.get("SubscriptionArn") == "PendingConfirmation"
        ]
    except ClientError:
        return []  # not allowed to look: alarms are the deployment's business, not status's
    return sorted(pending)


def region_status(
    side: Side,
    lag_threshold_ms: int = DEFAULT_LAG_THRESHOLD_MS,
    now_ms: int | None = None,
    peer_region: str | None = None,
    heartbeat_threshold_s: float = DEFAULT_HEARTBEAT_THRESHOLD_S,
) -> RegionStatus:
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    tables, loaded, heartbeats = read_counters(side)
    status = RegionStatus(side.region, tables, loaded, queue_depths(side))
    status.iterator_age_ms = iterator_ages(side)
    origin = peer_region or side.names.peer_region
    status.heartbeat, problem = heartbeat_status(
        side, origin, heartbeats.get(origin), heartbeat_threshold_s, now_ms
    )
    if problem:
        status.problems.append(problem)
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
    pending = unconfirmed_alarm_emails(side)
    if pending:
        status.problems.append(
            f"no alarm reaches {', '.join(pending)} until confirmed: open the link in the "
            f"mail AWS Notifications sent to each (or resend it from the SNS console, topic "
            f"{ALARM_TOPIC})"
        )
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
    add(
        "--heartbeat-threshold",
        type=cli.positive_float,
        default=DEFAULT_HEARTBEAT_THRESHOLD_S,
        metavar="SECONDS",
        help="age of the peer's latest heartbeat above which a direction needs attention "
        "(default: %(default)g)",
    )


def main(args: argparse.Namespace, ctx: Context) -> int:
    now_ms = int(time.time() * 1000)
    statuses = [
        region_status(side, args.lag_threshold_ms, now_ms, other.region, args.heartbeat_threshold)
        for side, other in ((ctx.here, ctx.peer), (ctx.peer, ctx.here))
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
        if status.heartbeat:
            lines.append("  " + status.heartbeat.line())
        lines.extend(f"  - {problem}" for problem in status.problems)
    ctx.emit({"regions": [s.to_json() for s in statuses]}, lines)
    return 0 if all(s.keeping_up for s in statuses) else 1
