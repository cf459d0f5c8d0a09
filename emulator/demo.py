"""`make demo`: both regions on this machine, writing at once, replicating both ways.

Creates both regions on moto (in this process), writes stamped items into each region's
table, moves the changes with the real sender and replicator handlers, then compares the
two tables item by item. Exits 1 if they differ.
"""

from __future__ import annotations

import argparse
import random
import sys
import time

from moto import mock_aws

from emulator.environment import use_local_aws
from emulator.pipeline import TwoRegions, scan_all
from replication.stamping import stamp


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--items", type=int, default=300, help="items written per region")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    use_local_aws()
    rng = random.Random(args.seed)

    with mock_aws():
        regions = TwoRegions()
        nodes = list(regions.nodes.values())
        started = time.perf_counter()
        written = 0
        for i in range(args.items):
            for node in nodes:
                # Half the keys are shared, so both regions fight over them.
                key = f"shared-{rng.randrange(args.items // 2)}" if i % 2 else f"{node.name}-{i}"
                item = {"PK": {"S": key}, "name": {"S": f"written in {node.name}"}}
                node.client("dynamodb").put_item(
                    TableName=node.table, Item=stamp(item, node.name, node.clock(), typed=True)
                )
                written += 1
            if i % 50 == 49:
                moved = regions.step()
                print(f"  wrote {written:>5} items, moved {moved:>4} records", flush=True)
        moved = regions.settle()
        elapsed = time.perf_counter() - started

        tables = {n.name: scan_all(n.client("dynamodb"), n.table) for n in nodes}
        keyed = {
            region: {item["PK"]["S"]: item for item in items} for region, items in tables.items()
        }
        china, world = keyed.values()
        divergent = sorted(k for k in china.keys() | world.keys() if china.get(k) != world.get(k))

    print()
    for region, items in tables.items():
        print(f"{region:<16} {len(items):>6} items")
    print(f"{'divergent':<16} {len(divergent):>6} items")
    print(f"{'writes':<16} {written:>6} in {elapsed:.1f} s ({written / elapsed:.0f}/s end to end)")
    if divergent:
        print(f"regions differ, e.g. {divergent[:5]}", file=sys.stderr)
        return 1
    print("both regions hold identical items")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
