"""What a deployment costs: idle per month, and per million replicated changes, per region.

Reads the price table (docs/cost/prices.json) and an explicit usage model: how much of each
meter one region uses in a month with nothing written, per change it sends to the peer, and per
change it applies from the peer. The usage comes from the code path (lambda/replication/
outbound.py and inbound.py) and the call counts `make bench` measures (per 500 new items:
sender 5 BatchGetItem and 1 PutRecords, replicator 500 PutItem, 5 BatchGetItem and 1 UpdateItem).
A change's bytes are measured by packing a real change with the engine's wire format.

A change from cn-north-1 to ap-southeast-1 costs cn-north-1's "sent" figure (in CNY) plus
ap-southeast-1's "applied" figure (in USD); each account pays its own part, in its currency.

Prints a table per region and writes JSON (default benchmarks/results/cost.json).
Run it with `make bench-cost` (or .venv/bin/python benchmarks/cost_model.py).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "lambda"))

sys.path.insert(0, str(ROOT))

from deployment import events  # noqa: E402
from replication import wire  # noqa: E402
from replication.signing import SigningKeys  # noqa: E402
from replication.versions import Version  # noqa: E402

PRICES = ROOT / "docs/cost/prices.json"
REGIONS = ("cn-north-1", "ap-southeast-1")
HOURS_PER_MONTH = 730
HEARTBEATS_PER_MONTH = HOURS_PER_MONTH * 60  # the schedule's rate(1 minute)
GB = 1024**3
# Alarms modules/replication_node/monitoring.tf creates per region: six per function (iterator
# age, errors, destination delivery failures, throttles, queue not empty, oldest message),
# replication lag, heartbeat, five refusals, clamped future versions.
ALARMS = 2 * 6 + 2 + 5 + 1
# Metrics (service dimension) a quiet region still publishes: the heartbeat's, sent here and
# received from the peer (HeartbeatsSent, HeartbeatsReceived, HeartbeatAge). With traffic,
# Shipped, Replicated, ReplicationLag and EchoesDropped join them.
IDLE_METRICS = 3
TRAFFIC_METRICS = 4


@dataclass(frozen=True)
class Assumptions:
    """What the model takes as given. Each can be changed on the command line."""

    item_bytes: int = 1024  # DynamoDB item size (names and values)
    batch_size: int = 100  # records per invocation, both functions (the mappings allow 500)
    new_item_fraction: float = 1.0  # applied puts that create an item: one tombstone read each
    unstamped_fraction: float = 0.0  # local writes without a newer version: the sender stamps
    delete_fraction: float = 0.0  # changes that are deletes
    stream_mode: str = "on_demand"  # the replication (and capture) stream: on_demand or provisioned
    shards: int = 1  # provisioned only
    retention_hours: int = 72  # replication_stream_retention_hours
    # Where the sender reads the tables' changes: dynamodb_streams (free to read from Lambda),
    # or kinesis (DynamoDB's change data capture units, and a capture stream per region, kept
    # capture_retention_hours). Both regions alike.
    capture: str = "dynamodb_streams"
    capture_retention_hours: int = 168  # capture_stream_retention_hours
    memory_mb: int = 512  # memory_size
    # Invocation time, ms. The sender waits for one PutRecords across the border; the
    # replicator applies about 0.7 ms per record (make bench: 1,452 records/s, 32 workers,
    # 10 ms per DynamoDB call); a batch of echoes makes no call at all.
    sender_fixed_ms: float = 300.0
    sender_per_record_ms: float = 0.5
    replicator_fixed_ms: float = 50.0
    replicator_per_record_ms: float = 0.7
    echo_fixed_ms: float = 20.0
    echo_per_record_ms: float = 0.1
    heartbeat_sender_ms: float = 200.0
    heartbeat_replicator_ms: float = 30.0
    log_bytes_per_invocation: int = 1500  # START/END/REPORT lines and one EMF line
    # Sources of KMS requests with cached keys, each about one request per 5 minutes: the
    # functions' Parameter Store reads, the three tables, the stream's producer and consumer,
    # the log groups.
    kms_callers: int = 10
    # Bytes on the wire besides the records: SigV4 headers and TLS per PutRecords request, and
    # the JSON around each base64 record.
    request_overhead_bytes: int = 1500
    record_overhead_bytes: int = 60


def load_prices(path: Path = PRICES) -> dict:
    return json.loads(Path(path).read_text())


# -- the usage model -------------------------------------------------------------------


def change_bytes(item_bytes: int, op: str = wire.PUT) -> int:
    """A change's Kinesis record (data plus partition key), packed and signed as the sender
    does, for an item of about `item_bytes` as DynamoDB counts them."""
    keys = {"PK": {"S": "user-0000000001"}}
    version = Version(1_795_704_645_095, "cn-north-1")
    item = {**keys, **version.to_typed()}
    used = sum(len(k) + len(next(iter(v.values()))) for k, v in item.items())
    item["payload"] = {"S": "x" * max(0, item_bytes - used - len("payload"))}
    change = wire.Change(
        "user-cn",
        op,
        keys,
        version,
        "cn-north-1",
        1_795_704_645_000,
        item if op == wire.PUT else None,
        event_id="c0ffee" * 5,
    )
    data = wire.pack(change, SigningKeys.generate("k20261201000000ab12"))
    return len(data) + len(wire.partition_key(change))


def capture_bytes(item_bytes: int) -> int:
    """A change's record in a capture stream: Kinesis Data Streams for DynamoDB's JSON with both
    images of an update of an item of about `item_bytes` (the shape the emulator writes, from
    deployment.events), plus its partition key."""
    keys = {"PK": {"S": "user-0000000001"}}
    image = {**keys, "payload": {"S": "x" * max(0, item_bytes - 20)}}
    raw = {
        "eventID": "c0ffee" * 5 + "00",
        "eventName": "MODIFY",
        "dynamodb": {"Keys": keys, "NewImage": image, "OldImage": image, "SizeBytes": item_bytes},
    }
    payload = events.capture_payload(raw, "user-cn", "cn-north-1", 1_795_704_645_095_123)
    return len(json.dumps(payload).encode()) + 32  # the partition key: an MD5, in hex


def kb_rounded(size: int) -> int:
    """Kinesis on-demand bills each record rounded up to the next 1 KB."""
    return 1024 * math.ceil(size / 1024)


def wire_bytes(record: int, a: Assumptions) -> float:
    """Bytes one change puts on the internet: the record base64-encoded in PutRecords' JSON,
    plus its share of the request."""
    return (
        4 * math.ceil(record / 3)
        + a.record_overhead_bytes
        + a.request_overhead_bytes / a.batch_size
    )


def lambda_gb_seconds(ms: float, a: Assumptions) -> float:
    return ms / 1000 * a.memory_mb / 1024


def _stream_usage(
    records: float, size: int, a: Assumptions, retention_hours: int | None = None
) -> dict[str, float]:
    """A stream's meters for `records` records of `size` bytes (data in, data out to the
    function's mapping, and what is kept beyond 24 hours): the replication stream's, or with
    `retention_hours` the capture stream's."""
    if a.stream_mode == "provisioned":
        return {"kinesis_put_payload_unit": records * math.ceil(size / (25 * 1024))}
    gb = records * kb_rounded(size) / GB
    hours = a.retention_hours if retention_hours is None else retention_hours
    kept = max(0, hours - 24) / HOURS_PER_MONTH
    return {
        "kinesis_on_demand_data_in_gb": gb,
        "kinesis_on_demand_data_out_gb": gb,
        "kinesis_on_demand_extended_retention_gb_month": gb * kept,
    }


def _stream_hours(a: Assumptions, retention_hours: int) -> dict[str, float]:
    """A stream's standing charge for a month: stream-hours on-demand, shard-hours (and their
    extended retention) provisioned."""
    if a.stream_mode == "on_demand":
        return {"kinesis_on_demand_stream_hour": HOURS_PER_MONTH}
    hours = {"kinesis_shard_hour": a.shards * HOURS_PER_MONTH}
    if retention_hours > 24:
        hours["kinesis_extended_retention_shard_hour"] = a.shards * HOURS_PER_MONTH
    return hours


def _captured(records: float, a: Assumptions) -> dict[str, float]:
    """What `records` table changes cost on their way to the sender with kinesis capture:
    change data capture units (one per KB of the item, as for a write) and the capture stream;
    nothing with dynamodb_streams, whose reads by Lambda are free."""
    if a.capture != "kinesis":
        return {}
    return {
        "dynamodb_change_data_capture_unit": records * math.ceil(a.item_bytes / 1024),
        **_stream_usage(records, capture_bytes(a.item_bytes), a, a.capture_retention_hours),
    }


def _add(*usages: Mapping[str, float]) -> dict[str, float]:
    total: dict[str, float] = {}
    for usage in usages:
        for meter, amount in usage.items():
            total[meter] = total.get(meter, 0.0) + amount
    return total


def _read_by_sender(invocations: float, a: Assumptions) -> dict[str, float]:
    """The sender's reads of its source: a DynamoDB stream's are free to Lambda (shown, to say
    so); a capture stream's are its data out, counted in _captured."""
    if a.capture == "kinesis":
        return {}
    return {"dynamodb_streams_read_request_lambda": invocations}


def usage_sent(a: Assumptions, record: int) -> dict[str, float]:
    """Meters one change uses in the region it was written in (the sender's side)."""
    wru = math.ceil(a.item_bytes / 1024)
    # A stamped write comes round on the stream once more and is processed again.
    records = 1 + a.unstamped_fraction
    invocations = records / a.batch_size
    ms = invocations * a.sender_fixed_ms + records * a.sender_per_record_ms
    return _add(
        _read_by_sender(invocations, a),
        _captured(records, a),
        {
            # One strongly consistent tombstone read per local write or delete (BatchGetItem,
            # 100 keys a call, each key billed as one read of up to 4 KB, found or not).
            "dynamodb_read_request_unit": records,
            # Stamping (an update, billed at the item's size); a delete's tombstone and the
            # conditional delete that undoes a racing put (one unit each: small, or absent).
            "dynamodb_write_request_unit": a.unstamped_fraction * wru + a.delete_fraction * 2,
            "lambda_request": invocations,
            "lambda_gb_second_x86": lambda_gb_seconds(ms, a),
            "cloudwatch_logs_ingestion_gb": invocations * a.log_bytes_per_invocation / GB,
            "data_transfer_out_internet_gb": wire_bytes(record, a) / GB,
        },
    )


def usage_applied(a: Assumptions, record: int) -> dict[str, float]:
    """Meters one change uses in the region that applies it (the replicator's side), including
    this region's sender dropping the applied write as an echo when it comes round."""
    wru = math.ceil(a.item_bytes / 1024)
    puts = 1 - a.delete_fraction
    invocations = 1 / a.batch_size
    ms = invocations * a.replicator_fixed_ms + a.replicator_per_record_ms
    echo_ms = invocations * a.echo_fixed_ms + a.echo_per_record_ms
    return _add(
        # The applied write comes round to this region's sender, as an echo to drop.
        _read_by_sender(invocations, a),
        _captured(1, a),
        {
            **_stream_usage(1, record, a),
            # The conditional put (billed whether it applies or is stale); a delete writes its
            # tombstone and deletes the item; the stats counters once per batch.
            "dynamodb_write_request_unit": puts * wru + a.delete_fraction * (1 + wru) + invocations,
            # A put that created its item is checked against the tombstones.
            "dynamodb_read_request_unit": puts * a.new_item_fraction,
            "lambda_request": 2 * invocations,
            "lambda_gb_second_x86": lambda_gb_seconds(ms + echo_ms, a),
            "cloudwatch_logs_ingestion_gb": 2 * invocations * a.log_bytes_per_invocation / GB,
        },
    )


def usage_idle(a: Assumptions) -> dict[str, float]:
    """One region for a month with nothing written: the stream, the key, the alarms and the
    dashboard, and a heartbeat each way every minute."""
    heartbeat = change_bytes(0, wire.HEARTBEAT)
    beats = HEARTBEATS_PER_MONTH
    stream = _stream_hours(a, a.retention_hours)
    if a.capture == "kinesis":  # the capture stream stands beside the replication stream
        stream = _add(stream, _stream_hours(a, a.capture_retention_hours))
    usage = {
        **stream,
        **_stream_usage(beats, heartbeat, a),  # the peer's heartbeats arriving here
        "dynamodb_write_request_unit": beats,  # each recorded in the stats table
        "lambda_request": 2 * beats,  # this sender's heartbeat, the peer's at this replicator
        "lambda_gb_second_x86": beats
        * lambda_gb_seconds(a.heartbeat_sender_ms + a.heartbeat_replicator_ms, a),
        "eventbridge_scheduled_invocation": beats,
        "data_transfer_out_internet_gb": beats
        * (wire_bytes(heartbeat, a) + a.request_overhead_bytes)
        / GB,
        "kms_key_month": 1,
        "kms_request": a.kms_callers * 12 * HOURS_PER_MONTH,
        "cloudwatch_alarm_month": ALARMS,
        "cloudwatch_dashboard_month": 1,
        "cloudwatch_custom_metric_month": IDLE_METRICS,
        "cloudwatch_logs_ingestion_gb": 2 * beats * a.log_bytes_per_invocation / GB,
        # The failure queues are only written when something fails; alarms rarely notify.
        "sqs_request": 0,
        "sns_request": 0,
    }
    return usage


# -- the arithmetic --------------------------------------------------------------------


class MissingPrice(KeyError):
    pass


def cost(meters: Mapping[str, dict], usage: Mapping[str, float], scale: float = 1.0) -> dict:
    """Each meter's contribution (usage x scale / the price's quantity x price) and the total."""
    parts = {}
    for meter, amount in usage.items():
        if meter not in meters:
            raise MissingPrice(f"prices.json has no {meter!r}: add it for every region")
        entry = meters[meter]
        parts[meter] = amount * scale / entry["quantity"] * entry["price"]
    return {"meters": parts, "total": sum(parts.values())}


def region_costs(prices: dict, region: str, a: Assumptions) -> dict:
    meters = prices["regions"][region]["meters"]
    record = change_bytes(a.item_bytes)
    per_million = 1_000_000
    return {
        "currency": prices["regions"][region]["currency"],
        "record_bytes": record,
        "idle_monthly": cost(meters, usage_idle(a)),
        "traffic_monthly_extra": cost(meters, {"cloudwatch_custom_metric_month": TRAFFIC_METRICS}),
        "per_million_sent": cost(meters, usage_sent(a, record), per_million),
        "per_million_applied": cost(meters, usage_applied(a, record), per_million),
    }


def global_tables_reference(prices: dict, a: Assumptions, region: str = "ap-southeast-1"):
    """What Global Tables charges a replica region per million replicated writes of this size
    (on-demand replicated write request units); the source region also pays data transfer."""
    entry = prices["regions"][region]["meters"]["dynamodb_replicated_write_request_unit"]
    units = math.ceil(a.item_bytes / 1024) * 1_000_000
    return {
        "region": region,
        "currency": entry["currency"],
        "per_million": units / entry["quantity"] * entry["price"],
    }


def meters_used(a: Assumptions) -> set[str]:
    record = change_bytes(a.item_bytes)
    return set(usage_idle(a)) | set(usage_sent(a, record)) | set(usage_applied(a, record))


# -- the table ---------------------------------------------------------------------------


def _money(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.2f}"
    return f"{value:.4f}".rstrip("0").rstrip(".") if abs(value) >= 0.0001 else f"{value:.2e}"


def render(results: dict, reference: dict, a: Assumptions) -> str:
    """The Markdown table docs/cost.md carries (a test compares the two)."""
    lines = [
        f"Item of {a.item_bytes} bytes, {a.batch_size} records per invocation, "
        f"{a.stream_mode.replace('_', '-')} replication stream kept {a.retention_hours} h, "
        + (
            f"kinesis capture into a capture stream kept {a.capture_retention_hours} h, "
            if a.capture == "kinesis"
            else ""
        )
        + f"functions of {a.memory_mb} MB.",
        "",
    ]
    for region, r in results.items():
        cur = r["currency"]
        lines += [
            f"**{region}** ({cur}; a change is a {r['record_bytes']}-byte Kinesis record)",
            "",
            "| meter | idle, per month | per 1M sent from here | per 1M applied here |",
            "| --- | ---: | ---: | ---: |",
        ]
        names = sorted(
            set(r["idle_monthly"]["meters"])
            | set(r["per_million_sent"]["meters"])
            | set(r["per_million_applied"]["meters"])
        )
        for name in names:
            row = [
                _money(r[part]["meters"][name]) if name in r[part]["meters"] else ""
                for part in ("idle_monthly", "per_million_sent", "per_million_applied")
            ]
            lines.append(f"| {name} | {' | '.join(row)} |")
        totals = [
            _money(r[part]["total"])
            for part in ("idle_monthly", "per_million_sent", "per_million_applied")
        ]
        lines += [f"| **total** | **{'** | **'.join(totals)}** |", ""]
        lines += [
            f"With traffic, {TRAFFIC_METRICS} more custom metrics: "
            f"+{_money(r['traffic_monthly_extra']['total'])} {cur} per month.",
            "",
        ]
    lines.append(
        f"Global Tables, for comparison: {_money(reference['per_million'])} "
        f"{reference['currency']} per million replicated writes of this item in "
        f"{reference['region']} (replicated write request units, on-demand)."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prices", type=Path, default=PRICES)
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks/results/cost.json")
    defaults = Assumptions()
    for field, value in asdict(defaults).items():
        parser.add_argument(f"--{field.replace('_', '-')}", type=type(value), default=value)
    args = parser.parse_args(argv)
    a = Assumptions(**{f: getattr(args, f) for f in asdict(defaults)})
    if a.stream_mode not in ("on_demand", "provisioned"):
        parser.error("--stream-mode must be on_demand or provisioned")
    if a.capture not in ("dynamodb_streams", "kinesis"):
        parser.error("--capture must be dynamodb_streams or kinesis")
    if a.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    prices = load_prices(args.prices)
    results = {region: region_costs(prices, region, a) for region in REGIONS}
    reference = global_tables_reference(prices, a)
    print(render(results, reference, a))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "prices_read_on": prices["read_on"],
                "assumptions": asdict(a),
                "regions": results,
                "global_tables_reference": reference,
            },
            indent=2,
        )
    )
    shown = args.json.relative_to(ROOT) if args.json.is_relative_to(ROOT) else args.json
    print(f"\nwrote {shown}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
