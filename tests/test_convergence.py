"""Both regions end up identical, whatever the interleaving, delivery order and failures.

Each scenario is seeded: a failure prints the seed, and the same seed replays the same run.
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
from collections import Counter
from dataclasses import replace
from decimal import Decimal

import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from deployment.tables import scan_all
from emulator.capture import DYNAMODB_STREAMS, KINESIS, NO_FAULTS, CaptureFaults
from emulator.esm import REPLICATOR_MAPPING, SENDER_MAPPING
from emulator.simulated_time import SimulatedTime, simulated
from emulator.stepped import Node, TwoRegions
from replication import wire
from replication.stamping import stamp, stamped_update
from replication.versions import MILLISECONDS, SECONDS, of_image
from tests.helpers import queue_messages

KEYS = [f"k{i}" for i in range(10)]  # few keys, so the regions fight over them


class Chaos:
    """Delivery faults a real deployment sees: redelivery, reordering across items,
    throttled PutRecords, throttled writes."""

    def __init__(self, seed: int, rate: float):
        self.seed, self.rate = seed, rate
        self.rng = random.Random(f"{seed}:delivery")
        self.faults: Counter = Counter()

    def deliver(self, handler, key_of):
        def perturbed(event):
            records = self._reorder_across_keys(event["Records"], key_of)
            if self.rng.random() < self.rate:
                self.faults["redelivered"] += 1
                with contextlib.suppress(Exception):  # an earlier attempt that failed outright
                    handler({"Records": list(records)})
            return handler({"Records": records})

        return perturbed

    def _reorder_across_keys(self, records, key_of):
        """Shuffle the batch, keeping each item's records in their order."""
        queues: dict[str, list] = {}
        for record in records:
            queues.setdefault(key_of(record), []).append(record)
        order = [key for key, queue in queues.items() for _ in queue]
        self.rng.shuffle(order)
        return [queues[key].pop(0) for key in order]

    def throttle(self, put_records):
        def throttled(records):
            passing = [r for r in records if self.rng.random() >= self.rate]
            accepted = {id(r) for r in passing}
            if passing:
                put_records(passing)
            self.faults["throttled"] += len(records) - len(passing)
            return {
                "Records": [
                    {"SequenceNumber": "0", "ShardId": "s"}
                    if id(r) in accepted
                    else {"ErrorCode": "ProvisionedThroughputExceededException"}
                    for r in records
                ]
            }

        return throttled

    def flaky(self, call):
        """Runs on worker threads, so each decision comes from the call itself (item and
        how many times it was tried), not from the order threads happen to run in."""
        tries: Counter = Counter()
        lock = threading.Lock()

        def maybe_failing(**kwargs):
            identity = json.dumps(kwargs["Item"], sort_keys=True, default=str)
            with lock:
                tries[identity] += 1
                attempt = tries[identity]
            if random.Random(f"{self.seed}:{identity}:{attempt}").random() < self.rate / 2:
                self.faults["write_errors"] += 1
                error = {"Error": {"Code": "ThrottlingException", "Message": "slow down"}}
                raise ClientError(error, "PutItem")
            return call(**kwargs)

        return maybe_failing


def wire_chaos(regions: TwoRegions, chaos: Chaos) -> None:
    for mapping in regions.mappings():
        mapping.invoke = chaos.deliver(mapping.invoke, mapping.source.key_of)
    for node in regions.nodes.values():
        node.sender.peer.put_records = chaos.throttle(node.sender.peer.put_records)
        ddb = node.replicator.clients("dynamodb")
        ddb.put_item = chaos.flaky(ddb.put_item)
        # Fast retries: the test is about outcomes, not backoff timing.
        node.sender.pause = lambda attempt: None


YEAR_MS = 365 * 86400 * 1000


def sample_stamp(item: dict, region: str, now_ms: int, rng: random.Random | None) -> dict:
    """Stamped as the original sample's applications do: Decimal(time.time()), the exact value
    of a float of epoch seconds, finer than a millisecond (with `rng`, a random part of one)."""
    seconds = now_ms / 1000 + (rng.random() / 1000 if rng else 0.0)
    return {
        **item,
        "last_update_timestamp": {"N": str(Decimal(seconds))},
        "last_updater_region": {"S": region},
    }


def application_write(
    rng: random.Random,
    node: Node,
    tied_timestamp: int,
    fast_clock: bool = False,
    seconds: bool = False,
) -> str:
    ddb = node.client("dynamodb")
    key = {"PK": {"S": rng.choice(KEYS)}}
    value = {"S": f"{node.name}-{rng.randrange(10**6)}"}
    roll = rng.random()
    if roll < 0.45:
        item = {**key, "v": value}
        if seconds:
            item = sample_stamp(item, node.name, node.clock(), rng)
        else:
            item = stamp(item, node.name, node.clock(), typed=True)
        ddb.put_item(TableName=node.table, Item=item)
        return "put"
    if roll < 0.55:
        # The same instant in both regions: only the region tie-break can decide.
        item = {**key, "v": value}
        if seconds:
            item = sample_stamp(item, node.name, tied_timestamp, None)
        else:
            item = stamp(item, node.name, tied_timestamp, typed=True)
        ddb.put_item(TableName=node.table, Item=item)
        return "tied put"
    if roll < 0.65:
        unit = SECONDS if seconds else MILLISECONDS
        update = stamped_update(
            node.name, "SET #w = :w", {"#w": "w"}, {":w": value}, node.clock(), unit=unit
        )
        ddb.update_item(TableName=node.table, Key=key, **update)
        return "stamped update"
    if roll < 0.7 and fast_clock:
        # An application whose clock runs years ahead: the sender stamps it afresh.
        ddb.put_item(
            TableName=node.table,
            Item=stamp({**key, "v": value}, node.name, node.clock() + 10 * YEAR_MS, typed=True),
        )
        return "fast-clock put"
    if roll < 0.75:
        # An application that ignores the contract: no version attributes at all.
        ddb.update_item(
            TableName=node.table,
            Key=key,
            UpdateExpression="SET #u = :u",
            ExpressionAttributeNames={"#u": "u"},
            ExpressionAttributeValues={":u": value},
        )
        return "unstamped update"
    ddb.delete_item(TableName=node.table, Key=key)
    return "delete"


def run_scenario(
    seed: int,
    clock_offsets_ms: dict[str, int],
    fault_rate: float,
    steps: int,
    concurrency: int = 1,
    fast_clock_regions: frozenset[str] = frozenset(),
    version_unit: str = MILLISECONDS,
    capture: str = DYNAMODB_STREAMS,
    capture_faults: CaptureFaults = NO_FAULTS,
):
    rng = random.Random(seed)
    time = SimulatedTime()
    with simulated(time):
        batch_size = rng.choice([3, 7, 50])
        regions = TwoRegions(
            clock_offsets_ms=clock_offsets_ms,
            concurrency=concurrency,
            sender_mapping=replace(SENDER_MAPPING, batch_size=batch_size),
            replicator_mapping=replace(REPLICATOR_MAPPING, batch_size=batch_size),
            time_source=time,
            version_unit=version_unit,
            capture=capture,
            capture_faults=capture_faults,
        )
        chaos = Chaos(seed, fault_rate)
        wire_chaos(regions, chaos)
        nodes = list(regions.nodes.values())
        # With kinesis capture, the pumps into the capture streams move at random steps too.
        mappings = [*regions.mappings(), *regions.pumps()]
        tied_timestamp = time() + 1_000
        writes: Counter = Counter()
        for _ in range(steps):
            time.ms += rng.randrange(1, 30)
            if rng.random() < 0.6:
                node = rng.choice(nodes)
                fast = node.name in fast_clock_regions
                seconds = version_unit == SECONDS
                writes[application_write(rng, node, tied_timestamp, fast, seconds)] += 1
            else:
                rng.choice(mappings).step()
        time.ms += 1_000
        regions.settle()
    return regions, writes, chaos


def canonical(items):
    return sorted(json.dumps(wire.item_from_client(i), sort_keys=True) for i in items)


SCENARIOS = [
    pytest.param(seed, offsets, rate, workers, id=f"seed{seed}-{label}")
    for seed, offsets, rate, workers, label in [
        (1, {}, 0.0, 1, "clean"),
        (2, {}, 0.15, 1, "faults"),
        (3, {"ap-southeast-1": 3_000}, 0.15, 1, "global-clock-ahead"),
        (4, {"cn-north-1": 4_000}, 0.1, 1, "china-clock-ahead"),
        (5, {"cn-north-1": -2_500}, 0.2, 1, "china-clock-behind"),
        (6, {}, 0.3, 1, "heavy-faults"),
        (101, {"cn-north-1": -4_000}, 0.2, 1, "china-clock-far-behind"),
        # Worker threads make the interleaving vary from run to run; the outcome must not.
        (7, {"ap-southeast-1": 1_500}, 0.15, 8, "threads"),
        # Some of China's application writes stamped ten years ahead: stamped afresh.
        (9, {}, 0.15, 1, "fast-app-clock"),
        # The original sample's applications: fractional epoch seconds (VERSION_UNIT=seconds).
        (12, {}, 0.15, 1, "sample-seconds"),
        (13, {"ap-southeast-1": 1_500}, 0.25, 8, "sample-seconds-threads"),
        # Kinesis capture: the capture streams duplicate records and reorder an item's records.
        (21, {}, 0.15, 1, "kinesis-capture-faults"),
        (22, {"cn-north-1": -2_500}, 0.15, 8, "kinesis-capture-threads"),
    ]
]
FAST_APP_CLOCK = {9: frozenset({"cn-north-1"})}
SECONDS_UNIT = {12, 13}
KINESIS_CAPTURE = {
    21: CaptureFaults(duplicate_rate=0.2, reorder_window_ms=80, seed=21),
    22: CaptureFaults(duplicate_rate=0.3, reorder_window_ms=150, seed=22),
}


@pytest.mark.parametrize(("seed", "offsets", "fault_rate", "workers"), SCENARIOS)
def test_both_regions_converge(aws, seed, offsets, fault_rate, workers):
    fast = FAST_APP_CLOCK.get(seed, frozenset())
    unit = SECONDS if seed in SECONDS_UNIT else MILLISECONDS
    capture = KINESIS if seed in KINESIS_CAPTURE else DYNAMODB_STREAMS
    faults = KINESIS_CAPTURE.get(seed, NO_FAULTS)
    regions, writes, chaos = run_scenario(
        seed, offsets, fault_rate, 300, workers, fast, unit, capture, faults
    )
    china = canonical(scan_all(regions.china.client("dynamodb"), "user-cn"))
    world = canonical(scan_all(regions.world.client("dynamodb"), "user-sg"))

    assert writes["delete"] and writes["tied put"] and writes["unstamped update"], writes
    assert china == world, f"seed {seed} diverged after {dict(writes)}, faults {dict(chaos.faults)}"
    for node in regions.nodes.values():
        # Nothing was given up on: no poison, no batch that exhausted its retries.
        assert queue_messages(node, node.region.sender_queue_url) == []
        assert queue_messages(node, node.region.replicator_queue_url) == []
    if fault_rate:
        assert chaos.faults["redelivered"] and chaos.faults["throttled"]
    if capture == KINESIS:
        # The capture streams did duplicate and reorder records, and delivered every one.
        assert all(pump.duplicated and pump.idle() for pump in regions.pumps())
        assert sum(pump.reordered for pump in regions.pumps()), "nothing was reordered"
    if fast:
        assert writes["fast-clock put"]
        horizon = regions.china.clock() + 300_000
        for node in regions.nodes.values():
            for stored in scan_all(node.client("dynamodb"), node.table):
                assert int(stored["last_update_timestamp"]["N"]) <= horizon, "frozen"
    if unit == SECONDS:
        for node in regions.nodes.values():
            finer = 0
            for stored in scan_all(node.client("dynamodb"), node.table):
                # Every stored time reads in seconds: a restamp writes seconds too.
                version = of_image(stored, SECONDS)
                assert version is not None, stored
                finer += bool(version.fraction)
            # Applications' own stamps, finer than the whole milliseconds a restamp writes,
            # were replicated as they are.
            assert finer, f"seed {seed}: every item was restamped"


def test_a_seed_replays_exactly():
    runs = []
    for _ in range(2):
        with mock_aws():
            regions, writes, chaos = run_scenario(11, {"cn-north-1": 700}, 0.2, 150)
            runs.append(
                (
                    canonical(scan_all(regions.china.client("dynamodb"), "user-cn")),
                    writes,
                    chaos.faults,
                )
            )
    assert runs[0] == runs[1]


def test_every_item_carries_a_version_after_settling(aws):
    regions, _, _ = run_scenario(8, {}, 0.1, 200)
    for node in regions.nodes.values():
        for stored in scan_all(node.client("dynamodb"), node.table):
            assert "last_update_timestamp" in stored and "last_updater_region" in stored
