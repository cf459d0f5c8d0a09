"""One seeded campaign: both regions writing while the schedule's faults strike, then the faults
stop, the pipeline drains, `ops.py redrive` settles the failure queues, and the checker judges
every key; `ops.py verify` must agree with it.

Everything runs in this process on the stepped emulator and simulated time, so a seed replays
exactly. The mappings keep the module's settings except their retries, cut to a few dozen so
that an outage of seconds exhausts them, as one of hours would on AWS, and redrive has work.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from moto import mock_aws

from chaos import checker
from chaos.injection import Injector
from chaos.schedule import Schedule, draw
from chaos.workload import Workload
from deployment.names import CHINA, GLOBAL
from emulator.capture import DYNAMODB_STREAMS, KINESIS, NO_FAULTS, CaptureFaults
from emulator.esm import REPLICATOR_MAPPING, SENDER_MAPPING
from emulator.resources import drain_queue
from emulator.simulated_time import SimulatedTime, simulated
from emulator.stepped import TwoRegions
from replication.failures import POISON_KIND
from replication.versions import now_ms
from tools import ops

RETRIES = 30


@dataclass
class Result:
    seed: int
    capture: str
    schedule: Schedule
    writes: Counter
    faults: Counter
    verdict: checker.Verdict
    problems: list[str] = field(default_factory=list)  # queues and verify, beside the keys
    redrive: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.verdict.passed and not self.problems

    def summary(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "capture": self.capture,
            "faults_scheduled": len(self.schedule.faults),
            "faults_injected": sum(self.faults.values()),
            "faults": dict(self.faults),
            "writes": sum(n for op, n in self.writes.items() if "not" not in op),
            "keys_judged": self.verdict.keys,
            "windows": dict(self.verdict.windows),
            "violations": len(self.verdict.violations) + len(self.problems),
            "passed": self.passed,
        }


def run(seed: int, steps: int = 800, capture: str | None = None) -> Result:
    """A campaign of `steps` writes and steps; kinesis capture on odd seeds unless told."""
    capture = capture or (KINESIS if seed % 2 else DYNAMODB_STREAMS)
    rng = random.Random(f"chaos-campaign:{seed}")
    # A minute before now: the campaign covers about as much simulated time as it takes, so
    # the operator tools at the end, on the machine's clock, are within the functions' allowed
    # clock skew of the scenario (a version hours ahead would be a clock gone wrong to them).
    time = SimulatedTime((now_ms() - 60_000) // 1000 * 1000)
    started = time()
    with mock_aws(), simulated(time), _quiet():
        batch = rng.choice([5, 20, 100])
        capture_faults = (
            CaptureFaults(duplicate_rate=0.2, reorder_window_ms=150, seed=seed)
            if capture == KINESIS
            else NO_FAULTS
        )
        regions = TwoRegions(
            time_source=time,
            concurrency=1,
            sender_mapping=replace(
                SENDER_MAPPING, batch_size=batch, maximum_retry_attempts=RETRIES
            ),
            replicator_mapping=replace(
                REPLICATOR_MAPPING, batch_size=batch, maximum_retry_attempts=RETRIES
            ),
            capture=capture,
            capture_faults=capture_faults,
        )
        plan = draw(seed, duration_ms=steps * 40)
        injector = Injector(
            regions, plan, lambda: time() - started, seed, on_cold_start=_no_backoff
        )
        injector.install()
        workload = Workload(regions, seed)
        for _ in range(steps):
            time.ms += rng.randrange(5, 76)
            injector.tick()
            if rng.random() < 0.5:
                workload.write()
            else:
                steppers = [s for node in regions.nodes.values() for s in node.steppers()]
                rng.choice(steppers).step()
        # The faults stop; everything drains, and the failure queues are redriven.
        injector.stop()
        time.ms += 1_000
        regions.settle(max_steps=2_000)
        result = Result(seed, capture, plan, workload.counts, injector.counts, checker.Verdict())
        for pump in regions.pumps():
            result.faults["capture records duplicated"] += pump.duplicated
            result.faults["capture records reordered"] += pump.reordered
        for name in regions.nodes:
            _, out = _ops("redrive", "--region", name, "--function", "both", "--json")
            result.redrive[name] = json.loads(out)
        regions.settle(max_steps=2_000)
        result.verdict = checker.judge(regions, workload.log, capture)
        result.problems += _queues(regions, workload)
        result.problems += _verify_agrees(result.verdict)
    return result


def _no_backoff(function: Any) -> None:
    """The engine's backoff between PutRecords attempts sleeps: not in simulated time."""
    if hasattr(function, "pause"):
        function.pause = lambda attempt: None


def _ops(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = ops.main([*argv, "--quiet"])
    return code, out.getvalue()


def _queues(regions: TwoRegions, workload: Workload) -> list[str]:
    """After redrive, the queues hold only the hostile peer's records, each once, as poison."""
    problems = []
    for name, node in regions.nodes.items():
        sqs = node.client("sqs")
        sender = drain_queue(sqs, node.region.sender_queue_url)
        if sender:
            problems.append(f"{name}: {len(sender)} messages left in the sender's failure queue")
        left = drain_queue(sqs, node.region.replicator_queue_url)
        poison = {m.get("record", {}).get("eventID") or json.dumps(m) for m in left if _poison(m)}
        others = [m for m in left if not _poison(m)]
        if others:
            problems.append(f"{name}: {len(others)} batches left in the replicator's queue")
        if len(poison) != workload.poison[name]:
            problems.append(
                f"{name}: {len(poison)} poison records isolated, "
                f"{workload.poison[name]} forged records put on its stream"
            )
    return problems


def _poison(message: dict[str, Any]) -> bool:
    return message.get("kind") == POISON_KIND or "reason" in message


def _verify_agrees(verdict: checker.Verdict) -> list[str]:
    code, out = _ops("verify", "--region", CHINA, "--peer-region", GLOBAL, "--json")
    report = json.loads(out)
    found = report[f"only_in_{CHINA}"] + report[f"only_in_{GLOBAL}"] + report["differing"]
    if found != verdict.divergent:
        return [f"ops.py verify found {found} differences, the checker {verdict.divergent}"]
    return []


# Never closed: a function's logger keeps the stream it was created with.
_DEVNULL = open(os.devnull, "w")  # noqa: SIM115


@contextlib.contextmanager
def _quiet():
    """The functions log to stdout as on Lambda; a campaign keeps its own output clean."""
    with contextlib.redirect_stdout(_DEVNULL):
        yield
