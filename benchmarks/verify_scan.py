"""How fast `ops.py verify` compares two emulated tables, and how much memory it needs.

Starts one moto server per region, each in its own process (so its memory isn't counted, and
the regions are separate endpoints as they are in AWS), creates each region's resources,
loads the same N items into user-cn and user-sg (with a few hundred differences planted), then
runs verify and reports items/s and the peak of verify's Python allocations (tracemalloc) and
of the process (max RSS). Run at two sizes, it shows memory staying flat as the tables grow:
the comparison lives in an on-disk index, not in memory. It also times plain paginated scans of
both tables at once: moto's own scan speed, the ceiling for verify here.

    make bench-verify          # 100,000 items per table, and 20,000 for comparison
    .venv/bin/python benchmarks/verify_scan.py --items 100000 --segments 4

Prints a table and writes JSON (default benchmarks/results/verify_scan.json).
"""

from __future__ import annotations

import argparse
import json
import resource
import socket
import subprocess
import sys
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3

from deployment import names as topology
from emulator import resources
from emulator.environment import use_local_aws
from emulator.local_deployment import free_port
from replication.versions import Version
from tools.operations import verify
from tools.operations.sides import open_side

ROOT = Path(__file__).resolve().parent.parent
PLANTED = 300  # differences planted: a third missing in each region, a third differing


def start_moto() -> tuple[subprocess.Popen, str]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return server, url
        except OSError:
            time.sleep(0.1)
    stop(server)
    raise RuntimeError("moto server did not start")


def stop(server: subprocess.Popen) -> None:
    """moto's server can take a while to notice SIGTERM with requests in flight."""
    server.terminate()
    try:
        server.wait(10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(10)


def item(i: int, region: str, note: str = "") -> dict:
    version = Version(1_700_000_000_000 + i, region)
    return {
        "PK": {"S": f"user-{i:08d}"},
        "name": {"S": f"name {i}{note}"},
        "tags": {"SS": ["a", "b", str(i % 7)]},
        "score": {"N": str(i * 3)},
        **version.to_typed(),
    }


def load(url: str, table: str, region: str, items: int, skip: set[int], change: set[int]) -> None:
    ddb = boto3.client("dynamodb", region_name=region, endpoint_url=url)

    def write(start: int) -> None:
        requests = [
            {"PutRequest": {"Item": item(i, topology.CHINA, " changed" if i in change else "")}}
            for i in range(start, min(start + 25, items))
            if i not in skip
        ]
        while requests:
            left = ddb.batch_write_item(RequestItems={table: requests}).get("UnprocessedItems", {})
            requests = left.get(table, [])

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, range(0, items, 25)))


def plain_scans(urls: dict[str, str], tables: dict[str, str]) -> float:
    """Items/s of one paginated scan per table, both at once: what moto serves, at most."""

    def scan(region: str) -> int:
        ddb = boto3.client("dynamodb", region_name=region, endpoint_url=urls[region])
        count, start = 0, {}
        while True:
            page = ddb.scan(TableName=tables[region], Limit=1000, **start)
            count += len(page["Items"])
            if "LastEvaluatedKey" not in page:
                return count
            start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}

    started = time.monotonic()
    with ThreadPoolExecutor(2) as pool:
        total = sum(pool.map(scan, tables))
    return total / (time.monotonic() - started)


def run(items: int, segments: int) -> dict:
    servers = {region: start_moto() for region in (topology.CHINA, topology.GLOBAL)}
    urls = {region: url for region, (_, url) in servers.items()}
    tables = {topology.CHINA: "user-cn", topology.GLOBAL: "user-sg"}
    try:
        admin = boto3.Session(aws_access_key_id="admin", aws_secret_access_key="admin")
        names = topology.region_names()
        for region, url in urls.items():
            resources.create_region(names[region], admin, endpoint_url=url)
        third = PLANTED // 3
        plans = {
            topology.CHINA: (set(range(third)), set()),
            topology.GLOBAL: (set(range(third, 2 * third)), set(range(2 * third, PLANTED))),
        }
        started = time.monotonic()
        with ThreadPoolExecutor(2) as pool:
            list(
                pool.map(
                    lambda region: load(
                        urls[region], tables[region], region, items, *plans[region]
                    ),
                    urls,
                )
            )
        load_s = time.monotonic() - started
        ceiling = plain_scans(urls, tables)

        here = verify.TableSide(
            "here", open_side(topology.CHINA, endpoint_url=urls[topology.CHINA]), "user-cn"
        )
        peer = verify.TableSide(
            "peer", open_side(topology.GLOBAL, endpoint_url=urls[topology.GLOBAL]), "user-sg"
        )
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        tracemalloc.start()
        result = verify.verify(here, peer, segments=segments)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    finally:
        for server, _ in servers.values():
            stop(server)
    scanned = sum(result.scanned.values())
    found = sum(result.differences.values())
    if found != PLANTED:
        raise SystemExit(f"verify found {found} differences, {PLANTED} were planted")
    return {
        "items_per_table": items,
        "segments": segments,
        "items_scanned": scanned,
        "differences_found": found,
        "seconds": round(result.seconds, 2),
        "items_per_second": round(scanned / result.seconds),
        "plain_scan_items_per_second": round(ceiling),
        "python_peak_mib": round(peak / 2**20, 1),
        "max_rss_mib_before": round(rss_before / 1024, 1),
        "max_rss_mib_after": round(rss_after / 1024, 1),
        "load_seconds": round(load_s, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000, help="items per table")
    parser.add_argument("--compare-items", type=int, default=20_000, help="a smaller run (0: none)")
    parser.add_argument("--segments", type=int, default=4)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "verify_scan.json"
    )
    args = parser.parse_args(argv)
    use_local_aws()
    sizes = [n for n in (args.compare_items, args.items) if n]
    rows = [run(n, args.segments) for n in sizes]
    print(
        f"{'items/table':>12} {'scanned':>9} {'found':>6} {'seconds':>8} {'items/s':>8} "
        f"{'plain scan/s':>13} {'py peak MiB':>12} {'max RSS MiB':>12}"
    )
    for r in rows:
        print(
            f"{r['items_per_table']:>12} {r['items_scanned']:>9} {r['differences_found']:>6} "
            f"{r['seconds']:>8} {r['items_per_second']:>8} {r['plain_scan_items_per_second']:>13} "
            f"{r['python_peak_mib']:>12} {r['max_rss_mib_after']:>12}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
