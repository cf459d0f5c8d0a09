"""Replicator throughput and API calls per replicated item, on moto.

- Apply: one batch of N changes to distinct items, with a fixed latency injected into
  every DynamoDB call (moto itself answers in well under a millisecond), applied by the
  real Replicator with its concurrent, per-item-ordered processor, and by the same code
  with one worker. Target: at least 15x, so one lane keeps up with a shard's 1,000/s.
- Calls: every AWS API call made per replicated item, counted with botocore event hooks
  on every client involved, for the replicator alone and for the whole path (sender in
  one region, replicator in the other), for new items and for updates; and for writers
  stamping as the original sample's applications do (Decimal(time.time()), epoch seconds),
  in a deployment with VERSION_UNIT milliseconds (each such write is stamped afresh) and
  seconds (shipped as it is).

Prints a table and writes JSON (default benchmarks/results/replicator_apply.json).
Run it with `make bench` (or .venv/bin/python, once `make` has installed the project).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import boto3
from moto import mock_aws

from deployment import events as lambda_events
from deployment import names as topology
from emulator import events, resources
from emulator.environment import use_local_aws
from emulator.stream_sources import DynamoDBStreamSource
from replication import wire
from replication.clients import Clients
from replication.inbound import Replicator
from replication.outbound import Sender
from replication.stamping import stamp
from replication.versions import MILLISECONDS, SECONDS, Version, now_ms

ROOT = Path(__file__).resolve().parent.parent


class CallCounter:
    def __init__(self):
        self.calls: Counter = Counter()

    def __call__(self, event_name: str, **_):
        # event_name is "after-call.<service>.<Operation>"
        _, service, operation = event_name.split(".", 2)
        self.calls[f"{service}.{operation}"] += 1

    def attach(self, emitter) -> None:
        emitter.register("after-call", self)

    @property
    def total(self) -> int:
        return sum(self.calls.values())


def add_latency(session: boto3.Session, seconds: float) -> None:
    session.events.register("before-call.dynamodb", lambda **_: time.sleep(seconds))


# What DynamoDB answers when every write succeeds and no tombstone exists.
_CANNED = {
    "PutItem": {},
    "DeleteItem": {},
    "UpdateItem": {},
    "BatchGetItem": {"Responses": {}, "UnprocessedKeys": {}},
}


def answer_after_latency(session: boto3.Session, seconds: float) -> None:
    """DynamoDB as latency alone: each call sleeps, then gets the answer the real service
    would give, without moto's request handling (CPU that, under the GIL, serializes)."""

    def respond(model, **_):
        time.sleep(seconds)
        return _HttpOk(), {**_CANNED[model.name], "ResponseMetadata": {"HTTPStatusCode": 200}}

    session.events.register("before-call.dynamodb", respond)


class _HttpOk:
    status_code = 200
    headers: dict = {}


def put_changes(prefix: str, count: int, source_region: str, source_table: str):
    changes = []
    for i in range(count):
        keys = {"PK": {"S": f"{prefix}-{i}"}}
        version = Version(now_ms(), source_region)
        item = {**keys, "name": {"S": f"user {i}"}, **version.to_typed()}
        changes.append(
            wire.Change(source_table, wire.PUT, keys, version, source_region, now_ms(), item)
        )
    return changes


def measure_apply(
    region, count: int, latency_s: float, concurrency: int, prefix: str, backend: str = "moto"
):
    session = boto3.Session()
    if backend == "moto":
        add_latency(session, latency_s)
    else:
        answer_after_latency(session, latency_s)
    counter = CallCounter()
    counter.attach(session.events)
    replicator = Replicator(
        resources.replicator_settings(region, concurrency=concurrency),
        clients=Clients(region.names.region, pool_size=concurrency + 4, session=session),
    )
    source_table = next(iter(region.names.table_map))
    event = events.kinesis_batch(
        put_changes(prefix, count, region.names.peer_region, source_table),
        region.replication_stream_arn,
        region.names.region,
        keys=resources.SIGNING_KEYS,  # signed, as the peer's sender signs them
    )
    started = time.perf_counter()
    response = replicator.handle(event)
    elapsed = time.perf_counter() - started
    assert response == {"batchItemFailures": []}, response
    assert replicator.last_counts == {"replicated": count}, replicator.last_counts
    return {
        "backend": backend,
        "concurrency": concurrency,
        "records": count,
        "seconds": round(elapsed, 3),
        "records_per_second": round(count / elapsed, 1),
        "api_calls": counter.total,
        "calls_per_item": round(counter.total / count, 4),
        "calls": dict(counter.calls),
    }


def sample_stamp(item: dict, region: str) -> dict:
    """As the original sample's applications stamp a write: Decimal(time.time())."""
    return {
        **item,
        "last_update_timestamp": {"N": str(Decimal(time.time()))},
        "last_updater_region": {"S": region},
    }


def contract_stamp(item: dict, region: str) -> dict:
    return stamp(item, region, typed=True)


def measure_path(source, target, count: int, updates: bool, stamper=contract_stamp):
    """Local writes in `source`, through its sender and `target`'s replicator."""
    counter = CallCounter()
    sessions = [boto3.Session(), boto3.Session()]
    for session in sessions:
        counter.attach(session.events)
    sender = Sender(
        resources.sender_settings(source), clients=Clients(source.names.region, session=sessions[0])
    )
    replicator = Replicator(
        resources.replicator_settings(target),
        clients=Clients(target.names.region, session=sessions[1]),
    )
    counter.attach(sender.peer.client().meta.events)
    counter.calls.clear()
    ddb = source.client("dynamodb")
    table = source.names.tables[0]
    prefix = "path-update" if updates else "path-new"
    for i in range(count):
        item = stamper({"PK": {"S": f"{prefix}-{i}"}, "n": {"N": "0"}}, source.names.region)
        ddb.put_item(TableName=table, Item=item)
    streams = DynamoDBStreamSource(
        source.client("dynamodbstreams"), source.stream_arns[table], source.names.region
    )
    shard = streams.shards()[0]
    everything = streams.read(shard, None, 10_000)
    if updates:
        # Deliver the inserts first, uncounted, then measure the updates that follow.
        _deliver(sender, replicator, target, everything, streams, shard)
        last = streams.read(shard, None, 100_000)[-1]["dynamodb"]["SequenceNumber"]
        for i in range(count):
            item = stamper({"PK": {"S": f"{prefix}-{i}"}, "n": {"N": "1"}}, source.names.region)
            ddb.put_item(TableName=table, Item=item)
        counter.calls.clear()
        everything = streams.read(shard, last, 10_000)
    _deliver(sender, replicator, target, everything, streams, shard)
    return {
        "kind": "updates" if updates else "new items",
        "items": count,
        "api_calls": counter.total,
        "calls_per_item": round(counter.total / count, 4),
        "calls": dict(counter.calls),
    }


def _deliver(sender, replicator, target, stream_events, streams=None, shard=None):
    """The sender takes the stream's records (and, given the stream, the writes its own
    restamps put there after them), then the replicator takes what reached the peer."""
    while stream_events:
        assert sender.handle({"Records": stream_events}) == {"batchItemFailures": []}
        if streams is None:
            break
        last = stream_events[-1]["dynamodb"]["SequenceNumber"]
        stream_events = streams.read(shard, last, 10_000)
    kinesis = target.client("kinesis")
    shard = kinesis.list_shards(StreamName=target.names.replication_stream)["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(
        StreamName=target.names.replication_stream,
        ShardId=shard,
        ShardIteratorType="AT_SEQUENCE_NUMBER",
        StartingSequenceNumber=_first_unread(target, shard),
    )["ShardIterator"]
    records = kinesis.get_records(ShardIterator=iterator, Limit=10_000)["Records"]
    _deliver.read[target.names.region] = records[-1]["SequenceNumber"]
    batch = [
        lambda_events.kinesis_record(r, target.replication_stream_arn, shard, target.names.region)
        for r in records
    ]
    assert replicator.handle({"Records": batch}) == {"batchItemFailures": []}


_deliver.read = {}


def _first_unread(target, shard):
    last = _deliver.read.get(target.names.region)
    if last is None:
        kinesis = target.client("kinesis")
        iterator = kinesis.get_shard_iterator(
            StreamName=target.names.replication_stream,
            ShardId=shard,
            ShardIteratorType="TRIM_HORIZON",
        )["ShardIterator"]
        return kinesis.get_records(ShardIterator=iterator, Limit=1)["Records"][0]["SequenceNumber"]
    return str(int(last) + 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=500, help="changes per batch")
    parser.add_argument(
        "--latency-ms", type=float, default=10.0, help="added to every DynamoDB call"
    )
    parser.add_argument("--concurrency", type=int, default=32, help="replicator worker threads")
    parser.add_argument(
        "--json", type=Path, default=ROOT / "benchmarks/results/replicator_apply.json"
    )
    args = parser.parse_args()
    use_local_aws()

    with mock_aws():
        names = topology.region_names()
        china = resources.create_region(names[topology.CHINA])
        world = resources.create_region(names[topology.GLOBAL])
        latency = args.latency_ms / 1000
        # moto's own CPU per call (no added latency) bounds what threads can overlap.
        cpu = measure_apply(china, args.records, 0, 1, "cpu")
        runs = {}
        for backend in ("moto", "latency-only"):
            runs[backend] = [
                measure_apply(
                    china, args.records, latency, workers, f"{backend}-{workers}", backend
                )
                for workers in (1, args.concurrency)
            ]
        paths = [
            measure_path(world, china, args.records, updates=False),
            measure_path(world, china, args.records, updates=True),
        ]
    sample_paths = {}
    for unit in (MILLISECONDS, SECONDS):
        with mock_aws():
            names = topology.region_names()
            china = resources.create_region(names[topology.CHINA], version_unit=unit)
            world = resources.create_region(names[topology.GLOBAL], version_unit=unit)
            _deliver.read.clear()
            sample_paths[unit] = measure_path(
                world, china, args.records, updates=True, stamper=sample_stamp
            )

    moto_cpu_ms = 1000 * cpu["seconds"] / args.records
    ceiling = (args.latency_ms + moto_cpu_ms) / moto_cpu_ms
    speedups = {
        backend: round(pair[1]["records_per_second"] / pair[0]["records_per_second"], 2)
        for backend, pair in runs.items()
    }
    print(f"Replicator, one batch of {args.records} new items,", end=" ")
    print(f"{args.latency_ms:g} ms per DynamoDB call")
    print(f"{'backend':<14} {'workers':>8} {'seconds':>9} {'records/s':>11} {'calls/item':>11}")
    for backend, pair in runs.items():
        for run in pair:
            print(
                f"{backend:<14} {run['concurrency']:>8} {run['seconds']:>9.3f}"
                f" {run['records_per_second']:>11.1f} {run['calls_per_item']:>11.4f}"
            )
    print(
        f"speed-up on moto: {speedups['moto']:.1f}x; moto spends about {moto_cpu_ms:.2f} ms of CPU"
        f" per record, which threads cannot overlap, so about {ceiling:.1f}x is the most there"
    )
    print(
        f"speed-up with DynamoDB as latency only: {speedups['latency-only']:.1f}x (target >= 15x)"
    )
    print()
    print(f"API calls per replicated item, whole path (sender + replicator), {args.records} items")
    for path in paths:
        breakdown = ", ".join(f"{k} {v}" for k, v in sorted(path["calls"].items()))
        print(f"  {path['kind']:<10} {path['calls_per_item']:.4f}   ({breakdown})")
    print("  writers stamping as the original sample's do (updates), by VERSION_UNIT:")
    for unit, path in sample_paths.items():
        breakdown = ", ".join(f"{k} {v}" for k, v in sorted(path["calls"].items()))
        print(f"  {unit:<12} {path['calls_per_item']:.4f}   ({breakdown})")
    replicator_alone = runs["moto"][1]["calls_per_item"]
    print(f"replicator alone, new items: {replicator_alone:.4f} (target <= 1.02)")

    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "records": args.records,
                "latency_ms": args.latency_ms,
                "moto_cpu_ms_per_record": round(moto_cpu_ms, 3),
                "moto_speedup_ceiling": round(ceiling, 2),
                "runs": runs,
                "speedups": speedups,
                "paths": paths,
                "sample_writers": sample_paths,
            },
            indent=2,
        )
    )
    print(f"wrote {args.json.relative_to(ROOT) if args.json.is_relative_to(ROOT) else args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
