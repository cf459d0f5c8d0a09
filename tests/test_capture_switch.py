"""Switching a live region between capture modes (docs/deploying.md, "Switching a table between
capture modes"), in the emulator: through `both`, waiting for the sender to catch up before the
second apply, nothing is lost, and what `both` reads twice the merge rule absorbs. Straight from
one mode to the other, what the old path had not read yet is lost, as the docs warn.
"""

from __future__ import annotations

import random

import pytest

from deployment.names import CHINA, GLOBAL
from deployment.tables import scan_all
from emulator.capture import BOTH, DYNAMODB_STREAMS, KINESIS, CaptureFaults
from emulator.simulated_time import SimulatedTime, simulated
from emulator.stepped import TwoRegions
from emulator.stream_sources import KinesisSource
from replication.stamping import stamp
from tests.helpers import queue_messages
from tests.test_convergence import application_write, canonical


def run(regions: TwoRegions, time: SimulatedTime, rng: random.Random, steps: int) -> None:
    """Both regions writing a few hot keys (puts, tied puts, stamped and unstamped updates,
    deletes) while the pumps and mappings move at random moments."""
    tied = time() + 500  # the same instant in both regions: only the tie-break decides
    for _ in range(steps):
        time.ms += rng.randrange(1, 30)
        if rng.random() < 0.5:
            application_write(rng, rng.choice(list(regions.nodes.values())), tied)
        else:
            rng.choice([s for node in regions.nodes.values() for s in node.steppers()]).step()


def capture_mapping(node):
    return next(m for m in node.sender_mappings if isinstance(m.source, KinesisSource))


def table_mapping(node):
    return next(m for m in node.sender_mappings if not isinstance(m.source, KinesisSource))


def settled(regions: TwoRegions) -> None:
    """Equal everywhere, with nothing given up on."""
    china = canonical(scan_all(regions.china.client("dynamodb"), regions.china.table))
    world = canonical(scan_all(regions.world.client("dynamodb"), regions.world.table))
    assert china == world
    for node in regions.nodes.values():
        assert queue_messages(node, node.region.sender_queue_url) == []
        assert queue_messages(node, node.region.replicator_queue_url) == []


@pytest.mark.parametrize("seed", [31, 32])
def test_switching_through_both_loses_nothing_either_way(aws, seed):
    rng = random.Random(seed)
    time = SimulatedTime()
    faults = CaptureFaults(duplicate_rate=0.2, reorder_window_ms=60, seed=seed)
    with simulated(time):
        regions = TwoRegions(time_source=time, capture_faults=faults)
        china, world = regions.china, regions.world
        for node in regions.nodes.values():
            node.sender.pause = lambda attempt: None
        run(regions, time, rng, 150)

        # dynamodb_streams -> both -> kinesis, in China and then in Global, while both write.
        regions.apply_capture(CHINA, BOTH)
        assert len(china.sender_mappings) == 2 and china.capture is not None
        run(regions, time, rng, 150)
        regions.apply_capture(GLOBAL, BOTH)
        run(regions, time, rng, 150)
        # Both paths delivered China's changes since the first apply: each read twice.
        assert capture_mapping(china).stats.delivered and table_mapping(china).stats.delivered
        regions.settle()  # step 2: the sender has caught up
        regions.apply_capture(CHINA, KINESIS)
        assert [type(m.source) for m in china.sender_mappings] == [KinesisSource]
        run(regions, time, rng, 150)
        regions.settle()
        regions.apply_capture(GLOBAL, KINESIS)
        run(regions, time, rng, 150)
        regions.settle()
        settled(regions)

        # And back, China only: kinesis -> both -> dynamodb_streams. The table mapping starts
        # at TRIM_HORIZON and reads again what the capture stream already delivered.
        regions.apply_capture(CHINA, BOTH)
        run(regions, time, rng, 200)
        regions.settle()
        regions.apply_capture(CHINA, DYNAMODB_STREAMS)
        assert china.capture is None and china.region.capture_stream is None
        assert [type(m.source) for m in china.sender_mappings] != [KinesisSource]
        run(regions, time, rng, 150)
        regions.settle()
        settled(regions)
        assert world.region.capture == KINESIS and china.region.capture == DYNAMODB_STREAMS
        # The capture streams really did duplicate and reorder while they ran.
        assert world.capture.duplicated and world.capture.reordered


def test_switching_straight_across_loses_what_the_old_path_had_not_read(aws):
    time = SimulatedTime()
    with simulated(time):
        regions = TwoRegions(time_source=time)
        china = regions.china
        for i in range(5):
            time.ms += 10
            write_stamped(china, f"unread-{i}")
        # One apply: the table's stream mapping goes before it read them, and the destination
        # captures only what is written from now on.
        regions.apply_capture(CHINA, KINESIS)
        time.ms += 10
        write_stamped(china, "after")
        time.ms += 1_000
        regions.settle()
        world_keys = {i["PK"]["S"] for i in scan_all(regions.world.client("dynamodb"), "user-sg")}
        assert world_keys == {"after"}


def write_stamped(node, key: str) -> None:
    item = stamp({"PK": {"S": key}}, node.name, node.clock(), typed=True)
    node.client("dynamodb").put_item(TableName=node.table, Item=item)
