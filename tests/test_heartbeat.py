"""Heartbeats, end to end: each region's sender, invoked on a schedule, ships a signed heartbeat
through the link to the peer's replicator, which records it in its stats table; `ops.py status`
reads how old each direction's latest is.

The emulator runs on a faster clock here: 1 s of wall time stands for one minute on AWS. So the
schedule fires every second (AWS: every minute), and status's threshold is 5 s (its default,
300 s, five missed heartbeats). Cutting the link into one region must turn that direction, and
only that one, to NEEDS ATTENTION within a few intervals past the threshold, and restoring it
must bring status back to keeping up.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest

from deployment import names as topology
from deployment.names import CHINA, GLOBAL
from emulator import resources
from emulator.local_deployment import HEARTBEAT_EVENT, HeartbeatSchedule
from tests.helpers import emulator_running
from tools import ops
from tools.operations import status
from tools.operations.sides import open_side

INTERVAL_S = 1.0  # one emulated minute
THRESHOLD_S = 5.0  # 300 s on AWS, on the same scale
# From the cut, the latest heartbeat to arrive was sent at most about an interval (plus the
# replicator's one-second polling) before; it grows past the threshold after that.
DETECT_WITHIN_S = THRESHOLD_S + 4 * INTERVAL_S


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    with emulator_running(
        tmp_path_factory.mktemp("heartbeat"), heartbeat_interval_s=INTERVAL_S
    ) as running:
        yield running


def run_status(deployment, capsys, *extra: str) -> tuple[int, str]:
    url = deployment.endpoint_url
    argv = ["status", "--region", CHINA, "--endpoint-url", url, "--peer-endpoint-url", url]
    code = ops.main([*argv, "--heartbeat-threshold", str(THRESHOLD_S), "--quiet", *extra])
    return code, capsys.readouterr().out


def status_json(deployment, capsys) -> tuple[int, dict]:
    code, out = run_status(deployment, capsys, "--json")
    return code, {r["region"]: r for r in json.loads(out)["regions"]}


def wait_for(deployment, capsys, condition, timeout_s: float) -> tuple[float, int, dict]:
    """Poll status until condition(code, regions); (seconds it took, and the last answer)."""
    started = time.monotonic()
    while True:
        code, regions = status_json(deployment, capsys)
        elapsed = time.monotonic() - started
        if condition(code, regions) or elapsed > timeout_s:
            return elapsed, code, regions
        time.sleep(INTERVAL_S / 4)


def state(regions: dict, receiver: str) -> str:
    return regions[receiver]["heartbeat"]["state"]


def test_a_cut_link_shows_in_status_for_its_direction_and_clears_when_it_returns(
    deployment, capsys
):
    # Both directions heard from: status keeps up.
    took, code, regions = wait_for(
        deployment,
        capsys,
        lambda code, r: code == 0 and state(r, CHINA) == state(r, GLOBAL) == "ok",
        timeout_s=30,
    )
    assert code == 0, regions
    _, text = run_status(deployment, capsys)
    for receiver, origin in ((CHINA, GLOBAL), (GLOBAL, CHINA)):
        beat = regions[receiver]["heartbeat"]
        assert (beat["from"], beat["to"]) == (origin, receiver)
        assert beat["age_s"] <= THRESHOLD_S
        assert beat["received_at"] >= beat["sent_at"]
        assert f"heartbeat {origin} -> {receiver}: sent " in text
    assert deployment.heartbeats.invoked[CHINA] >= 1 and deployment.heartbeats.invoked[GLOBAL] >= 1

    link = deployment.links[GLOBAL]  # carries China's changes, and heartbeats, into Global
    link.set_link(False)
    try:
        code, regions = status_json(deployment, capsys)
        assert state(regions, GLOBAL) == "ok"  # the latest is still recent: no false alarm

        took, code, regions = wait_for(
            deployment,
            capsys,
            lambda code, r: state(r, GLOBAL) == "late",
            timeout_s=DETECT_WITHIN_S + 10,
        )
        assert state(regions, GLOBAL) == "late", regions
        assert took <= DETECT_WITHIN_S, f"took {took:.1f} s to notice"
        assert code == 1
        code, text = run_status(deployment, capsys)  # the link is still down: still late
        assert code == 1 and f"{GLOBAL}: NEEDS ATTENTION" in text
        assert f"{CHINA}: keeping up" in text
        # Only the direction that was cut: China still hears from the Global region.
        assert state(regions, CHINA) == "ok" and regions[CHINA]["keeping_up"]
        (problem,) = regions[GLOBAL]["problems"]
        assert problem.startswith(f"the latest heartbeat from {CHINA} was sent ")
        for hint in (
            f"the link into {GLOBAL}",
            f"`peer_keys.py --region {CHINA} --check`",
            f"`signing_keys.py check --region {GLOBAL}`",
            f"{CHINA}'s sender schedule",
            f"`ops.py redrive --region {CHINA}`",
        ):
            assert hint in problem
        assert deployment.heartbeats.failed[CHINA] + deployment.heartbeats.skipped[CHINA] >= 1
    finally:
        link.set_link(True)

    took, code, regions = wait_for(
        deployment,
        capsys,
        lambda code, r: code == 0 and state(r, GLOBAL) == "ok",
        timeout_s=30,
    )
    assert code == 0 and state(regions, GLOBAL) == "ok", regions
    assert all(r["keeping_up"] for r in regions.values())


# -- status's reading of the heartbeat items, on moto ----------------------------------------


@pytest.fixture
def side(aws):
    """Cn-north-1's stats table, just created, seen as status sees it."""
    names = topology.region_names()
    resources.create_region(names[CHINA])
    return open_side(CHINA)


def put_heartbeat(side, origin: str, sent_at: int, received_at: int) -> None:
    side.client("dynamodb").put_item(
        TableName=side.names.stats_table,
        Item={
            "PK": {"S": f"heartbeat#{origin}"},
            "sent_at": {"N": str(sent_at)},
            "received_at": {"N": str(received_at)},
        },
    )


def now_ms() -> int:
    return int(time.time() * 1000)


def test_a_new_deployment_waits_for_its_first_heartbeat_without_alarm(side):
    result = status.region_status(side, heartbeat_threshold_s=300)
    assert result.heartbeat.state == "awaited" and result.keeping_up
    assert "none yet" in result.heartbeat.line()


def test_no_heartbeat_long_after_the_stats_table_was_made_needs_attention(side):
    created = side.describe_table(side.names.stats_table)["CreationDateTime"]
    later = int((created + timedelta(seconds=301)).timestamp() * 1000)
    result = status.region_status(side, heartbeat_threshold_s=300, now_ms=later)
    assert result.heartbeat.state == "missing" and not result.keeping_up
    (problem,) = result.problems
    assert problem.startswith(f"no heartbeat from {GLOBAL} has arrived")
    assert f"the link into {CHINA}" in problem


def test_the_age_counts_from_when_the_heartbeat_was_sent(side):
    now = now_ms()
    # Sent 400 s ago and only just received (a backlog): late, though it arrived now.
    put_heartbeat(side, GLOBAL, now - 400_000, now - 1_000)
    result = status.region_status(side, heartbeat_threshold_s=300, now_ms=now)
    assert result.heartbeat.state == "late" and result.heartbeat.age_s == 400
    assert result.problems[0].startswith(f"the latest heartbeat from {GLOBAL} was sent 400 s ago")

    put_heartbeat(side, GLOBAL, now - 30_000, now - 29_500)
    result = status.region_status(side, heartbeat_threshold_s=300, now_ms=now)
    assert result.heartbeat.state == "ok" and result.keeping_up
    assert result.heartbeat.line() == (
        f"heartbeat {GLOBAL} -> {CHINA}: sent 30 s ago, arrived after 0.5 s"
    )
    # The heartbeat item is not a replicated table's counters.
    assert list(result.tables) == []


def test_the_heartbeat_threshold_is_an_option_of_status():
    parser = ops.build_parser()
    args = parser.parse_args(["status", "--region", CHINA])
    assert args.heartbeat_threshold == status.DEFAULT_HEARTBEAT_THRESHOLD_S == 300
    args = parser.parse_args(["status", "--region", CHINA, "--heartbeat-threshold", "5"])
    assert args.heartbeat_threshold == 5


def test_the_schedule_invokes_each_sender_with_the_rules_event():
    calls: list[tuple[str, dict]] = []

    class Sender:
        def __init__(self, region: str):
            self.region = region

        def invoke(self, event: dict) -> dict:
            calls.append((self.region, event))
            return {}

    schedule = HeartbeatSchedule({CHINA: Sender(CHINA), GLOBAL: Sender(GLOBAL)}, 0.05).start()
    time.sleep(0.3)
    schedule.stop()
    assert HEARTBEAT_EVENT == {"replication": "heartbeat"}
    assert {region for region, _ in calls} == {CHINA, GLOBAL}
    assert all(event == HEARTBEAT_EVENT for _, event in calls)
    assert 4 <= schedule.invoked[CHINA] <= 8  # at once, then every 50 ms
