"""`make chaos`: seeded fault campaigns against the emulator, every key judged.

    python -m chaos                    the default seeds
    python -m chaos --seed 7           one seed (make chaos SEED=7), replayed exactly
    python -m chaos --seeds 1-20 --json benchmarks/results/chaos.json

A failing campaign prints its seed, its schedule and each violation, and exits 1.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from chaos import campaign
from emulator.environment import use_local_aws

DEFAULT_SEEDS = (1, 2)


def seeds(text: str) -> list[int]:
    """`7`, `1,4,9` or `1-20`."""
    chosen: list[int] = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        chosen += range(int(first), int(last or first) + 1)
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", "--seeds", dest="seeds", type=seeds, default=list(DEFAULT_SEEDS))
    parser.add_argument("--steps", type=int, default=800, help="writes and steps per campaign")
    parser.add_argument("--capture", choices=("dynamodb_streams", "kinesis"))
    parser.add_argument("--json", type=Path, help="write every campaign's figures here")
    args = parser.parse_args(argv)
    use_local_aws()
    results, failed = [], []
    for seed in args.seeds:
        began = time.monotonic()
        result = campaign.run(seed, args.steps, args.capture)
        summary = {**result.summary(), "seconds": round(time.monotonic() - began, 1)}
        results.append(summary)
        print(_line(summary), flush=True)
        if not result.passed:
            failed.append(seed)
            print(result.schedule.describe())
            for violation in [*result.verdict.violations, *result.problems]:
                print(f"  VIOLATION {violation}")
            print(
                f"  replay: make chaos SEED={seed}"
                + (f" STEPS={args.steps}" if args.steps != 800 else "")
            )
    print(_totals(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"campaigns": results}, indent=2))
    return 1 if failed else 0


def _line(s: dict) -> str:
    windows = sum(s["windows"].values())
    return (
        f"seed {s['seed']:>3} {s['capture']:<16} faults {s['faults_injected']:>5} "
        f"({s['faults_scheduled']} scheduled)  writes {s['writes']:>4}  keys {s['keys_judged']:>3}"
        f"  in documented windows {windows:>2}  violations {s['violations']}"
        f"  {'ok' if s['passed'] else 'FAILED'}  {s['seconds']} s"
    )


def _totals(results: list[dict]) -> str:
    total = {
        k: sum(r[k] for r in results)
        for k in ("faults_injected", "writes", "keys_judged", "violations")
    }
    return (
        f"{len(results)} campaigns: {total['faults_injected']} faults injected, "
        f"{total['writes']} writes, {total['keys_judged']} keys judged, "
        f"{total['violations']} violations"
    )


if __name__ == "__main__":
    sys.exit(main())
