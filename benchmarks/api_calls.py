"""AWS API calls per replicated change, through both functions of both regions, in the emulator.

Issue 15's per-batch overhead: each invocation makes calls whatever its size (the sender a
tombstone read and a PutRecords, the replicator a tombstone read and a stats update), so a
trickle of writes dealt over ten ParallelizationFactor lanes makes small batches and many calls
per change. This measures it on the stepped emulator in simulated time: both regions write
stamped items at a steady rate, the sender mappings are polled every 250 ms and the replicator
mappings every second (AWS's rates for DynamoDB Streams and Kinesis), and every call the
functions make is counted (botocore's after-call events on their own sessions, and on each
client of the peer's stream). A bulk run writes everything first, so batches fill to 500.

Prints a table and writes JSON (default benchmarks/results/api_calls.json).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

from moto import mock_aws

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "lambda"), str(ROOT)]

from emulator.environment import use_local_aws  # noqa: E402
from emulator.esm import REPLICATOR_MAPPING, SENDER_MAPPING  # noqa: E402
from emulator.simulated_time import SimulatedTime, simulated  # noqa: E402
from emulator.stepped import TwoRegions  # noqa: E402
from replication.stamping import stamp  # noqa: E402
from replication.versions import now_ms  # noqa: E402

SENDER_POLL_MS, REPLICATOR_POLL_MS = 250, 1_000
TICK_MS = 10


class Calls:
    def __init__(self) -> None:
        self.counts: Counter = Counter()

    def __call__(self, event_name: str, **_) -> None:
        _, service, operation = event_name.split(".", 2)
        self.counts[f"{service}.{operation}"] += 1

    def watch(self, regions: TwoRegions) -> None:
        for node in regions.nodes.values():
            for function in (node.sender, node.replicator):
                function.clients.session.events.register("after-call", self)
            peer, build = node.sender.peer, node.sender.peer.client
            watched: set[int] = set()

            def client(build=build, watched=watched):
                made = build()
                if id(made) not in watched:
                    watched.add(id(made))
                    made.meta.events.register("after-call", self)
                return made

            peer.client = client


def _drained(regions: TwoRegions, items: int, elapsed_ms: int) -> bool:
    """Every item in both tables and nothing in a lane (checked once a simulated second)."""
    if elapsed_ms % 1_000 or not all(m.idle() for m in regions.mappings()):
        return False
    return all(
        node.client("dynamodb").scan(TableName=node.table, Select="COUNT")["Count"] == items
        for node in regions.nodes.values()
    )


def run(pf: int, rate: float, writes: int, bulk: bool = False) -> dict:
    time = SimulatedTime((now_ms() - 3_600_000) // 1000 * 1000)
    with mock_aws(), simulated(time):
        regions = TwoRegions(
            time_source=time,
            concurrency=1,
            sender_mapping=replace(SENDER_MAPPING, parallelization_factor=pf),
            replicator_mapping=replace(REPLICATOR_MAPPING, parallelization_factor=pf),
        )
        calls = Calls()
        calls.watch(regions)
        nodes = list(regions.nodes.values())
        spacing = 0 if bulk else 1000 / rate
        due = [i * spacing for i in range(writes)]
        started, written, last_poll = time(), 0, {}
        while written < 2 * writes or not _drained(regions, 2 * writes, time() - started):
            now = time() - started
            while written < 2 * writes and due[written // 2] <= now:
                node = nodes[written % 2]
                key = f"{node.name}-{written // 2}"
                item = stamp(
                    {"PK": {"S": key}, "n": {"N": str(written)}},
                    node.name,
                    node.clock(),
                    typed=True,
                )
                node.client("dynamodb").put_item(TableName=node.table, Item=item)
                written += 1
            for node in nodes:
                for mapping in node.mappings():
                    every = (
                        REPLICATOR_POLL_MS if mapping is node.replicator_mapping else SENDER_POLL_MS
                    )
                    if now - last_poll.get(id(mapping), -every) >= every:
                        last_poll[id(mapping)] = now
                        mapping.step()
            time.ms += TICK_MS
            if time() - started > 3_600_000:
                raise RuntimeError("the emulator did not drain")
        invocations = sum(m.stats.invocations for m in regions.mappings())
        replicated = 2 * writes
    total = sum(calls.counts.values())
    return {
        "parallelization_factor": pf,
        "rate_per_region": None if bulk else rate,
        "bulk": bulk,
        "changes": replicated,
        "invocations": invocations,
        "api_calls": total,
        "calls_per_change": round(total / replicated, 3),
        "calls": dict(sorted(calls.counts.items())),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=300, help="per region, per configuration")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks/results/api_calls.json")
    args = parser.parse_args(argv)
    use_local_aws()
    runs = [run(pf, rate, args.writes) for pf in (1, 10) for rate in (5, 50)]
    runs += [run(pf, 0, max(args.writes, 1000), bulk=True) for pf in (1, 10)]
    header = ("PF", "writes/s", "changes", "invocations", "calls", "calls/change")
    print("{:>3} {:>9} {:>8} {:>12} {:>7} {:>13}".format(*header))
    for r in runs:
        rate = "bulk" if r["bulk"] else f"{r['rate_per_region']:g}"
        print(
            f"{r['parallelization_factor']:>3} {rate:>9} {r['changes']:>8} {r['invocations']:>12}"
            f" {r['api_calls']:>7} {r['calls_per_change']:>13.3f}"
        )
    for r in runs:
        rate = "bulk" if r["bulk"] else f"{r['rate_per_region']:g}/s"
        print(
            f"  PF {r['parallelization_factor']}, {rate}: "
            + ", ".join(f"{k} {v}" for k, v in r["calls"].items())
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"runs": runs}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
