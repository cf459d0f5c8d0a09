"""`make demo`: watch both regions replicate, on this machine.

Starts the emulator (one moto server holding cn-north-1 and ap-southeast-1, the real
sender and replicator functions in their own processes, mappings at AWS's polling
rates, an 80 ms cross-border link), loads both regions at once with tools/load_items.py,
shows progress live, then compares the regions item by item. Exits 1 if they differ.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.table import Table

from deployment.names import CHINA, GLOBAL
from emulator.capture import DYNAMODB_STREAMS, KINESIS
from emulator.environment import LOCAL_AWS, use_local_aws
from emulator.local_deployment import LocalDeployment, percentile

ROOT = Path(__file__).resolve().parent.parent  # the checkout
ALIASES = {CHINA: "cn", GLOBAL: "sg"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--items", type=int, default=1500, help="items loaded per region")
    parser.add_argument(
        "--rate",
        type=float,
        default=25.0,
        help="items/s per region (longer runs: lower it or raise -n)",
    )
    parser.add_argument("--latency-ms", type=float, default=80.0, help="cross-border latency")
    parser.add_argument(
        "--outage",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="cut the link into ap-southeast-1 for this long, mid-run",
    )
    parser.add_argument(
        "--throttle",
        type=float,
        default=0.0,
        metavar="RATE",
        help="fraction of PutRecords records the peer refuses",
    )
    parser.add_argument(
        "--capture",
        choices=(DYNAMODB_STREAMS, KINESIS),
        default=DYNAMODB_STREAMS,
        help="where the senders read the tables' changes: their DynamoDB streams (the default),"
        " or Kinesis Data Streams for DynamoDB into a capture stream",
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    use_local_aws()
    console = Console(stderr=True)
    workdir = Path(tempfile.mkdtemp(prefix="replication-demo-"))

    console.print(f"starting both regions on this machine, {args.capture} capture", end=" ")
    console.print(f"(logs in {workdir}) ...")
    started = time.time()
    with LocalDeployment(
        workdir,
        latency_ms=args.latency_ms,
        throttle_rate=args.throttle,
        seed=args.seed,
        capture=args.capture,
    ) as deployment:
        console.print(f"up in {time.time() - started:.1f} s; loading {args.items} items", end=" ")
        console.print(f"into each region at {args.rate:g}/s")
        loaders = {region: start_loader(deployment, region, args) for region in (CHINA, GLOBAL)}
        load_started = time.time()
        if args.outage:
            threading.Timer(
                (args.items / args.rate) / 3, deployment.links[GLOBAL].outage, args=(args.outage,)
            ).start()
        with Live(
            progress_table(deployment, loaders, load_started), console=console, refresh_per_second=2
        ) as live:
            while any(p.poll() is None for p in loaders.values()):
                live.update(progress_table(deployment, loaders, load_started))
                time.sleep(0.5)
            load_seconds = time.time() - load_started
            failed = [r for r, p in loaders.items() if p.returncode != 0]
            converged = deployment.wait_until_converged(timeout_s=120 + args.outage)
            live.update(progress_table(deployment, loaders, load_started))
        if failed:
            for region in failed:
                console.print(
                    f"[red]load_items failed in {region}:[/red] {loaders[region].stderr.read()}"
                )
            return 2
        return summary(deployment, args, load_seconds, converged)


def start_loader(deployment: LocalDeployment, region: str, args) -> subprocess.Popen:
    seed = args.seed * 2 + (region == GLOBAL)  # a seed per region: each loads its own items
    command = [sys.executable, str(ROOT / "tools" / "load_items.py"), "-n", str(args.items)]
    command += ["-r", ALIASES[region], "--rate", str(args.rate), "--seed", str(seed)]
    command += ["--endpoint-url", deployment.endpoint_url, "--quiet", "--json"]
    env = {**os.environ, **LOCAL_AWS}
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def progress_table(deployment: LocalDeployment, loaders, load_started: float) -> Table:
    table = Table(
        title=f"replication, {time.time() - load_started:.0f} s",
        caption="written: local writes on the region's stream; sent: records shipped to the"
        " peer (a heartbeat a minute included); applied: the peer's changes applied here",
    )
    for column in ("region", "loader", "written", "sent", "applied", "lag p50", "lag p95"):
        table.add_column(column, justify="right")
    for region in (CHINA, GLOBAL):
        lags = deployment.lag.samples.get(region, [])
        table.add_row(
            region,
            "running" if loaders[region].poll() is None else f"done ({loaders[region].returncode})",
            str(deployment.local_writes.get(region, 0)),
            str(deployment.links[deployment.names[region].peer_region].stats["forwarded_records"]),
            str(deployment.lag.count(region)),
            ms(percentile(lags, 0.50)),
            ms(percentile(lags, 0.95)),
        )
    return table


def ms(value: int | None) -> str:
    return "-" if value is None else f"{value} ms"


def summary(deployment: LocalDeployment, args, load_seconds: float, converged: bool) -> int:
    items = {region: len(deployment.items(region)) for region in (CHINA, GLOBAL)}
    divergent = deployment.divergent_keys()
    lags = deployment.lag.all()
    written = 2 * args.items
    p50, p95, p99 = (percentile(lags, q) for q in (0.50, 0.95, 0.99))
    lines = [
        *(f"{region:<16} {count:>7} items" for region, count in items.items()),
        f"{'divergent':<16} {len(divergent):>7} items",
        f"{'lag p50/p95/p99':<16} {ms(p50)} / {ms(p95)} / {ms(p99)}",
        f"{'throughput':<16} {written / load_seconds:>7.1f} writes/s"
        f" ({written} in {load_seconds:.0f} s)",
    ]
    print("\n".join(lines))
    print(
        json.dumps(
            {
                "items": items,
                "divergent": len(divergent),
                "lag_ms": {
                    "p50": percentile(lags, 0.5),
                    "p95": percentile(lags, 0.95),
                    "p99": percentile(lags, 0.99),
                },
            }
        )
    )
    if divergent or not converged:
        print(f"regions differ, e.g. {divergent[:5]}", file=sys.stderr)
        return 1
    print("both regions hold identical items")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
