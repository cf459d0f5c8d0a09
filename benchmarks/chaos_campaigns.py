"""The long fault campaign: 20 seeded campaigns against the emulator (`make bench-chaos`).

Prints a line per campaign (faults injected, writes, keys judged, outcomes in documented
windows, violations) and the totals, and writes benchmarks/results/chaos.json. A violation
prints the campaign's schedule and the command that replays it. docs/developing.md carries the
figures of the last run.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "lambda"), str(ROOT)]

from chaos.__main__ import main  # noqa: E402

if __name__ == "__main__":
    argv = sys.argv[1:] or ["--seeds", "1-20"]
    sys.exit(main([*argv, "--json", str(ROOT / "benchmarks/results/chaos.json")]))
