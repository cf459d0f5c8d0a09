"""`ops.py verify` (and --repair) and `ops.py status` against the emulator, with live
replication running: the commands the README's runbook gives.

Lasting differences are made the way real ones arise: writes that carry the peer's region in
their version look like echoes to the sender, so they stay in the region they were made in,
as a change lost on the way would.
"""

from __future__ import annotations

import json
import time

import pytest

from deployment.names import CHINA, GLOBAL
from replication import wire
from replication.tombstones import Tombstones
from replication.versions import Version, now_ms
from tools import ops
from tools.operations import item_index, verify
from tools.operations.sides import open_side

CONVERGE_S = 90
REGION_TABLES = ((CHINA, "user-cn"), (GLOBAL, "user-sg"))


def run(deployment, capsys, *args: str) -> tuple[int, str, str]:
    url = deployment.endpoint_url
    code = ops.main([*args, "--endpoint-url", url, "--peer-endpoint-url", url, "--quiet"])
    out, err = capsys.readouterr()
    return code, out, err


def put(deployment, region: str, key: str, version: Version, **attrs) -> None:
    r = deployment.regions[region]
    item = {"PK": {"S": key}, **{k: {"S": str(v)} for k, v in attrs.items()}}
    r.client("dynamodb").put_item(TableName=r.names.tables[0], Item={**item, **version.to_typed()})


def item_key(key: str) -> str:
    """How LocalDeployment.items() names an item of the PK-keyed tables."""
    return json.dumps([{"S": key}])


def settle(deployment, quiet_s: float = 3.0, timeout_s: float = 30.0) -> None:
    """Until the mappings have delivered nothing new for quiet_s."""
    deadline, last, since = time.time() + timeout_s, -1, time.time()
    while time.time() < deadline:
        total = sum(m.stats.delivered for m in deployment.mappings.values())
        if total != last:
            last, since = total, time.time()
        elif time.time() - since >= quiet_s:
            return
        time.sleep(0.25)


@pytest.fixture(scope="module")
def replicated(deployment):
    """Items written on both sides and replicated, before any test breaks anything."""
    for i in range(40):
        put(deployment, CHINA, f"base-cn-{i}", Version(now_ms(), CHINA), n=i)
        put(deployment, GLOBAL, f"base-sg-{i}", Version(now_ms(), GLOBAL), n=i)
    assert deployment.wait_until_converged(CONVERGE_S), deployment.divergent_keys()[:5]
    return deployment


def test_tables_in_step_verify_clean_and_status_keeps_up(replicated, capsys, tmp_path):
    report = tmp_path / "report.jsonl"
    code, out, _ = run(replicated, capsys, "verify", "--region", CHINA, "--report", str(report))
    assert code == 0, out
    assert "both regions hold the same items" in out
    assert report.read_text() == ""

    # A batch's counters are written just after its items: allow the last one a moment.
    deadline = time.time() + 10
    while True:
        code, out, _ = run(replicated, capsys, "status", "--region", CHINA, "--json")
        regions = {r["region"]: r for r in json.loads(out)["regions"]}
        applied = [regions[r]["tables"][t]["replicated"] for r, t in REGION_TABLES]
        if min(applied) >= 40 or time.time() > deadline:
            break
        time.sleep(0.5)
    assert code == 0, out
    assert regions[CHINA]["keeping_up"] and regions[GLOBAL]["keeping_up"]
    assert min(applied) >= 40
    assert regions[CHINA]["failure_queues"] == {"ddbstreamcn": 0, "ddbreplicatorcn": 0}


def test_verify_finds_each_kind_of_difference_and_repair_settles_them(replicated, capsys, tmp_path):
    d = replicated
    t = now_ms()
    # Only in China: a put that never crossed.
    put(d, CHINA, "lost-put", Version(t, GLOBAL), n=1)
    # Newer in the Global region: an update that never crossed.
    put(d, GLOBAL, "base-cn-1", Version(t, CHINA), n="newer")
    # Only in the Global region, but China deleted it later: a delete that never crossed.
    put(d, GLOBAL, "lost-delete", Version(t - 5000, CHINA), n=2)
    china = d.regions[CHINA]
    tombstones = Tombstones(china.client("dynamodb"), china.names.tombstone_table, 3600)
    tombstones.record(wire.key_id("user-cn", {"PK": {"S": "lost-delete"}}), Version(t, CHINA))
    # The same version on both sides with different content: the merge rule can't choose.
    put(d, CHINA, "same-version", Version(t, GLOBAL), n="china")
    put(d, GLOBAL, "same-version", Version(t, GLOBAL), n="global")
    settle(d)

    report = tmp_path / "report.jsonl"
    code, out, _ = run(d, capsys, "verify", "--region", CHINA, "--report", str(report), "--json")
    assert code == 1, out
    summary = json.loads(out)
    assert (summary[f"only_in_{CHINA}"], summary[f"only_in_{GLOBAL}"]) == (1, 1)
    assert summary["differing"] == 2
    lines = {json.loads(line)["key"]["PK"]["S"]: json.loads(line) for line in report.open()}
    assert lines["lost-put"]["kind"] == "only_here"
    assert lines["lost-delete"]["kind"] == "only_peer"
    assert lines["base-cn-1"][GLOBAL] == {"timestamp": t, "region": CHINA}

    # A dry run says how each would be settled, and changes nothing.
    code, out, _ = run(d, capsys, "verify", "--region", CHINA, "--repair", "--dry-run", "--json")
    assert code == 1
    assert json.loads(out)["repairs"] == {"would-repair": 3, "unresolved": 1}
    assert item_key("lost-put") not in d.items(GLOBAL)

    code, out, _ = run(d, capsys, "verify", "--region", CHINA, "--repair", "--report", str(report))
    assert code == 1  # the same-version item is left for a person
    assert "repaired 3" in out and "unresolved 1" in out
    outcomes = {json.loads(line)["key"]["PK"]["S"]: json.loads(line) for line in report.open()}
    assert outcomes["lost-delete"]["detail"].startswith("delete in ap-southeast-1")
    assert outcomes["same-version"]["detail"].startswith("same version")

    china_items, world_items = d.items(CHINA), d.items(GLOBAL)
    for key in ("lost-put", "base-cn-1"):
        assert china_items[item_key(key)] == world_items[item_key(key)]
    assert world_items[item_key("base-cn-1")]["n"] == {"S": "newer"}
    assert item_key("lost-delete") not in world_items | china_items

    # Rewriting the item settles the last one the usual way; then verify is clean.
    put(d, CHINA, "same-version", Version(now_ms(), CHINA), n="rewritten")
    assert d.wait_until_converged(CONVERGE_S)
    code, out, _ = run(d, capsys, "verify", "--region", GLOBAL)
    assert code == 0, out


def test_a_read_capacity_budget_slows_the_scan(replicated):
    here = verify.TableSide(
        "here", open_side(CHINA, endpoint_url=replicated.endpoint_url), "user-cn"
    )
    peer = verify.TableSide(
        "peer", open_side(GLOBAL, endpoint_url=replicated.endpoint_url), "user-sg"
    )
    started = time.monotonic()
    result = verify.verify(here, peer, segments=1, page_size=10, max_rcu=0.5)
    # 80+ items in pages of 10, each at least half a unit: at 0.5 units/s that is seconds.
    assert time.monotonic() - started >= 4
    assert result.scanned["here"] >= 80


def test_status_points_at_redrive_when_a_failure_queue_holds_messages(replicated, capsys):
    world = replicated.regions[GLOBAL]
    world.client("sqs").send_message(QueueUrl=world.replicator_queue_url, MessageBody="{}")
    try:
        code, out, _ = run(replicated, capsys, "status", "--region", CHINA)
        assert code == 1
        assert "ap-southeast-1: NEEDS ATTENTION" in out
        assert "ops.py redrive --region ap-southeast-1" in out
    finally:
        replicated.failure_messages(GLOBAL, "replicator")


def test_mismatched_tables_and_undeployed_regions_are_one_line_errors(replicated, capsys):
    code, _, err = run(replicated, capsys, "verify", "--region", CHINA, "--table", "nope")
    assert code == 1
    assert err.strip() == (
        "ops.py: error: no table in ap-southeast-1 replicates into nope in cn-north-1 "
        "(table_map: {'user-sg': 'user-cn'})"
    )
    code, _, err = run(replicated, capsys, "status", "--region", "eu-west-1")
    assert code == 1
    assert err.strip() == (
        "ops.py: error: eu-west-1 has no function ddb_send_to_kinesis: deploy the region, or "
        "pass --sender-function with the name Terraform's function_names output gives"
    )
    code, _, err = run(
        replicated, capsys, "status", "--region", CHINA, "--replicator-function", "renamed"
    )
    assert code == 1 and "cn-north-1 has no function renamed" in err


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ({"s": {"SS": ["x", "y"]}}, {"s": {"SS": ["y", "x"]}}),
        (
            {"m": {"M": {"a": {"N": "1"}, "b": {"BS": [b"2", b"1"]}}}},
            {"m": {"M": {"b": {"BS": [b"1", b"2"]}, "a": {"N": "1"}}}},
        ),
    ],
)
def test_set_order_and_attribute_order_do_not_make_a_difference(a, b):
    assert item_index.item_text(a) == item_index.item_text(b)
