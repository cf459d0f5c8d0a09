"""The fault campaign (chaos/): seeded schedules, faults injected where the functions meet
them, and a checker that judges every key; CI runs two short seeds, `make chaos` more."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chaos import campaign, checker
from chaos.__main__ import seeds
from chaos.schedule import KINDS, draw
from chaos.workload import Write
from deployment.names import CHINA, GLOBAL
from emulator.simulated_time import SimulatedTime, simulated
from emulator.stepped import TwoRegions
from replication.stamping import stamp

STEPS = 500


@pytest.mark.parametrize("seed", [1, 2])  # kinesis capture, then DynamoDB Streams
def test_a_short_campaign_breaks_nothing(seed):
    result = campaign.run(seed, STEPS)
    summary = result.summary()
    assert result.passed, (
        result.schedule.describe() + "\n" + "\n".join(result.verdict.violations + result.problems)
    )
    assert summary["keys_judged"] >= 8 and summary["writes"] > 100
    # Faults really struck, of many kinds.
    assert summary["faults_injected"] > 50 and len(result.faults) >= 5, result.faults
    # Redrive settled every batch the mappings gave up on; only poison can be left.
    assert set(result.redrive) == {CHINA, GLOBAL}
    for report in result.redrive.values():
        for counts in report["functions"].values():
            assert counts["unrecoverable"] == counts["failed"] == counts["unrecognised"] == 0


def test_a_seed_replays_exactly():
    first, again = campaign.run(3, 150), campaign.run(3, 150)
    assert first.schedule == again.schedule
    assert first.summary() == again.summary()


def test_every_kind_of_fault_is_scheduled_and_the_schedule_prints():
    plan = draw(11, 20_000)
    assert {f.kind for f in plan.faults} == set(KINDS)
    assert plan == draw(11, 20_000) and plan != draw(12, 20_000)
    text = plan.describe()
    assert text.startswith("seed 11:") and all(kind in text for kind in KINDS)


def test_seeds_read_singly_as_lists_and_as_ranges():
    assert seeds("7") == [7] and seeds("1,4") == [1, 4] and seeds("2-5") == [2, 3, 4, 5]


def test_the_checker_names_regions_that_differ_and_a_winner_lost(aws):
    time = SimulatedTime()
    with simulated(time):
        regions = TwoRegions(time_source=time)
        china, world = regions.china, regions.world
        log = []
        for key, n in (("a", 1), ("b", 2)):
            time.ms += 10
            item = stamp(
                {"PK": {"S": key}, "v": {"S": f"cn-{n}"}}, CHINA, china.clock(), typed=True
            )
            china.client("dynamodb").put_item(TableName=china.table, Item=item)
            content = {"PK": {"S": key}, "v": {"S": f"cn-{n}"}}
            log.append(Write(CHINA, key, "put", china.clock(), content, None))
        time.ms += 1_000
        regions.settle()
        assert checker.judge(regions, log, "dynamodb_streams").passed
        # Behind the pipeline's back: one region loses an item, the other holds an old one.
        world.client("dynamodb").delete_item(TableName=world.table, Key={"PK": {"S": "a"}})
        stale = stamp({"PK": {"S": "b"}, "v": {"S": "cn-0"}}, CHINA, 1, typed=True)
        for node in (china, world):
            node.client("dynamodb").put_item(TableName=node.table, Item=stale)
        verdict = checker.judge(regions, log, "dynamodb_streams")
    assert not verdict.passed and verdict.divergent == 1
    assert any(v.startswith("a: the regions differ") for v in verdict.violations)
    assert any(v.startswith("b: holds") and "not the winner" in v for v in verdict.violations)


def test_a_record_time_reads_as_epoch_milliseconds():
    # What boto3 gives for a stream record's ApproximateCreationDateTime: an aware datetime.
    moment = datetime(2027, 1, 15, 8, 0, 0, 123_000, tzinfo=UTC)
    assert checker._epoch_ms(moment) == 1_800_000_000_123
