"""A campaign's fault schedule, drawn from its seed: which faults, where, and when.

Each fault is a window of simulated time in one region (a rate while it lasts, for the faults
that strike calls or invocations at random), or an instant (a mapping restart). Windows overlap
freely. The same seed always draws the same schedule, and `describe()` prints it so a failing
campaign can be read and replayed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from deployment.names import CHINA, GLOBAL

REGIONS = (CHINA, GLOBAL)

# Windows.
LINK_CUT = "link-cut"  # the link from `region` to its peer: every PutRecords fails to connect
PUT_THROTTLE = "put-throttle"  # the peer's stream refuses `rate` of the records `region` puts
KILL = "kill"  # a function's process dies mid-invocation, `rate` of the invocations
TIMEOUT = "timeout"  # invocations run out of time, `rate` of them
WRITE_THROTTLE = "write-throttle"  # the replicator's conditional writes throttled at `rate`
TOMBSTONE_THROTTLE = "tombstone-throttle"  # the sender's tombstone reads throttled at `rate`
SSM_DOWN = "ssm-down"  # Parameter Store unreachable for both functions of `region`
KEY_ROTATION = "key-rotation"  # the peer's keys for `region`'s sender replaced at start, the
# old key retired (refused by the peer) at end
# Instants.
ESM_RESTART = "esm-restart"  # every mapping of `region` restarts from its checkpoints

WINDOWS = (
    LINK_CUT,
    PUT_THROTTLE,
    KILL,
    TIMEOUT,
    WRITE_THROTTLE,
    TOMBSTONE_THROTTLE,
    SSM_DOWN,
    KEY_ROTATION,
)
KINDS = (*WINDOWS, ESM_RESTART)
FUNCTIONS = ("sender", "replicator")


@dataclass(frozen=True)
class Fault:
    kind: str
    region: str
    start_ms: int  # from the campaign's start
    end_ms: int
    rate: float = 1.0
    function: str = ""  # kill and timeout only

    def active(self, at_ms: int) -> bool:
        return self.start_ms <= at_ms < self.end_ms

    def describe(self) -> str:
        where = self.region + (f" {self.function}" if self.function else "")
        if self.kind == LINK_CUT:
            peer = GLOBAL if self.region == CHINA else CHINA
            where = f"{self.region} -> {peer}"
        when = (
            f"at {self.start_ms / 1000:7.2f} s          "
            if self.start_ms == self.end_ms
            else f"{self.start_ms / 1000:7.2f} .. {self.end_ms / 1000:7.2f} s"
        )
        rate = f" rate {self.rate:.2f}" if self.rate != 1.0 else ""
        return f"{when}  {self.kind:<18} {where}{rate}"


@dataclass(frozen=True)
class Schedule:
    seed: int
    duration_ms: int
    faults: tuple[Fault, ...]

    def describe(self) -> str:
        lines = [f"seed {self.seed}: {len(self.faults)} faults over {self.duration_ms / 1000} s"]
        lines += ["  " + f.describe() for f in sorted(self.faults, key=lambda f: f.start_ms)]
        return "\n".join(lines)

    def active(self, kind: str, region: str, at_ms: int, function: str = "") -> list[Fault]:
        return [
            f
            for f in self.faults
            if f.kind == kind
            and f.region == region
            and (not function or f.function == function)
            and f.active(at_ms)
        ]


def draw(seed: int, duration_ms: int, extra: int = 6) -> Schedule:
    """Every kind of fault at least once, in a region drawn at random, and `extra` more of any
    kind; windows start in the first four fifths of the campaign and last a twentieth to two
    fifths of it."""
    rng = random.Random(f"chaos-schedule:{seed}")
    kinds = [*KINDS, *(rng.choice(KINDS) for _ in range(extra))]
    faults = []
    for kind in kinds:
        region = rng.choice(REGIONS)
        start = rng.randrange(0, duration_ms * 4 // 5)
        if kind == ESM_RESTART:
            faults.append(Fault(kind, region, start, start))
            continue
        end = min(duration_ms, start + rng.randrange(duration_ms // 20, duration_ms * 2 // 5))
        rate = 1.0
        if kind in (PUT_THROTTLE, KILL, TIMEOUT, WRITE_THROTTLE, TOMBSTONE_THROTTLE):
            rate = round(rng.uniform(0.1, 0.6), 2)
        function = rng.choice(FUNCTIONS) if kind in (KILL, TIMEOUT) else ""
        faults.append(Fault(kind, region, start, end, rate, function))
    return Schedule(seed, duration_ms, tuple(faults))
