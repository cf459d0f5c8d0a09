"""End-to-end replication lag in the emulator, next to the floor that polling imposes.

Writes stamped items into both regions at a steady rate, through the whole emulated
system (functions in their own processes, mappings polling at AWS's rates: DynamoDB
Streams 4/s, Kinesis 1/s per shard; an 80 ms link), and measures each put's lag from
its write to the replicator's batch completing. The floor is what polling alone costs:
a wait uniform in [0, 250) ms, plus one uniform in [0, 1000) ms, plus the link latency.
Then steps the write rate up to find where lag stops being bounded.

Prints tables and writes JSON (default benchmarks/results/end_to_end_lag.json).
Run with `make bench-lag` (or .venv/bin/python once `make` has installed the project).
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import threading
import time
from pathlib import Path

from deployment.names import CHINA, GLOBAL
from emulator.environment import use_local_aws
from emulator.local_deployment import LocalDeployment, percentile
from replication.stamping import stamp

ROOT = Path(__file__).resolve().parent.parent


def polling_floor(latency_ms: float, samples: int = 200_000) -> dict[str, float]:
    rng = random.Random(0)
    waits = sorted(rng.uniform(0, 250) + rng.uniform(0, 1000) + latency_ms for _ in range(samples))
    return {"p50": waits[samples // 2], "p95": waits[int(samples * 0.95)]}


def write_steadily(deployment, region: str, rate: float, seconds: float, prefix: str) -> int:
    r = deployment.regions[region]
    ddb, table = r.client("dynamodb"), r.names.tables[0]
    start, written = time.time(), 0
    while time.time() - start < seconds:
        key = {"PK": {"S": f"{prefix}-{region}-{written}"}}
        ddb.put_item(
            TableName=table, Item=stamp({**key, "n": {"N": str(written)}}, region, typed=True)
        )
        written += 1
        time.sleep(max(0.0, start + written / rate - time.time()))
    return written


def run_phase(deployment, rate: float, seconds: float, prefix: str) -> dict:
    """Write at `rate` per region for `seconds`; lag of what that phase wrote."""
    before = len(deployment.lag.all())
    threads = [
        threading.Thread(target=write_steadily, args=(deployment, region, rate, seconds, prefix))
        for region in (CHINA, GLOBAL)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    deployment.wait_until_converged(timeout_s=120, quiet_s=2.5)
    lags = deployment.lag.all()[before:]
    third = max(1, len(lags) // 3)
    return {
        "rate_per_region": rate,
        "seconds": seconds,
        "samples": len(lags),
        "p50_ms": percentile(lags, 0.50),
        "p95_ms": percentile(lags, 0.95),
        "p99_ms": percentile(lags, 0.99),
        # Bounded lag: the last third of the phase is no slower than the first.
        "p95_first_third_ms": percentile(lags[:third], 0.95),
        "p95_last_third_ms": percentile(lags[-third:], 0.95),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=80.0)
    parser.add_argument(
        "--rate", type=float, default=5.0, help="writes/s per region for the lag run"
    )
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument(
        "--steps", default="10,25,50,100", help="writes/s per region to step through"
    )
    parser.add_argument("--step-seconds", type=float, default=15.0)
    parser.add_argument(
        "--json", type=Path, default=ROOT / "benchmarks/results/end_to_end_lag.json"
    )
    args = parser.parse_args()
    use_local_aws()

    floor = polling_floor(args.latency_ms)
    with LocalDeployment(
        Path(tempfile.mkdtemp(prefix="lag-")), latency_ms=args.latency_ms
    ) as deployment:
        run_phase(deployment, 2, 5, "warm")  # cold starts are not lag
        lag = run_phase(deployment, args.rate, args.seconds, "lag")
        steps = [
            run_phase(deployment, float(rate), args.step_seconds, f"step{rate}")
            for rate in args.steps.split(",")
        ]

    ratio = lag["p50_ms"] / floor["p50"]
    print(f"End-to-end lag at {args.rate:g} writes/s per region, {args.latency_ms:g} ms link")
    print(f"{'':<22} {'p50':>8} {'p95':>8}")
    print(f"{'measured':<22} {lag['p50_ms']:>6} ms {lag['p95_ms']:>6} ms   ({lag['samples']} puts)")
    print(f"{'polling floor':<22} {floor['p50']:>6.0f} ms {floor['p95']:>6.0f} ms")
    print(f"p50 / floor: {ratio:.2f}x (target <= 1.3x)")
    print()
    print("Sustained rate (writes/s per region, both regions at once)")
    print(f"{'rate':>6} {'p50':>8} {'p95':>8} {'p95 first third':>16} {'p95 last third':>15}")
    for step in steps:
        print(
            f"{step['rate_per_region']:>6g} {step['p50_ms']:>6} ms {step['p95_ms']:>6} ms"
            f" {step['p95_first_third_ms']:>13} ms {step['p95_last_third_ms']:>12} ms"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {"floor_ms": floor, "lag": lag, "p50_over_floor": round(ratio, 3), "steps": steps},
            indent=2,
        )
    )
    print(f"wrote {args.json.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
