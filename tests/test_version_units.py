"""VERSION_UNIT=seconds: a deployment whose applications stamp versions as the original sample's
do (`last_update_timestamp = Decimal(time.time())`, fractional epoch seconds). Their writes are
versions as they are: shipped without a restamp, applied by the peer with the exact stored
number, and compared with everything else in seconds. (The conversion rules themselves are
property-tested in test_properties.py; seeded scenarios in test_convergence.py.)"""

from __future__ import annotations

import dataclasses
import io
import json
from decimal import Decimal

import pytest

from deployment.names import CHINA, GLOBAL
from emulator.stepped import TwoRegions
from replication import wire
from replication.versions import MILLISECONDS, SECONDS, Version, now_ms, of_image
from tests.helpers import (
    item,
    kinesis_event,
    kinesis_records,
    queue_messages,
    shipped_changes,
    stream_records,
)
from tools.operations import verify
from tools.operations.sides import open_side

NOW = (now_ms() // 1000 - 3600) * 1000  # an hour ago: well inside the allowed skew


def sample_put(node, key: str, seconds: Decimal, region: str | None = None, **attrs) -> None:
    node.client("dynamodb").put_item(
        TableName=node.table,
        Item={
            "PK": {"S": key},
            **{name: {"S": value} for name, value in attrs.items()},
            "last_update_timestamp": {"N": str(seconds)},
            "last_updater_region": {"S": region or node.name},
        },
    )


# NOW plus 0.123456789 s, as a float holds it: what Decimal(time.time()) stores.
STAMP = Decimal(NOW / 1000 + 0.123456789)


@pytest.fixture
def seconds(aws):
    return TwoRegions(version_unit=SECONDS)


def test_a_sample_stamped_write_ships_as_it_is(seconds):
    cn, sg = seconds.china, seconds.world
    sample_put(cn, "u1", STAMP, name="Li")
    cn.sender.handle({"Records": stream_records(cn)})

    assert cn.sender.last_counts.get("restamped", 0) == 0
    [change] = shipped_changes(sg)
    assert change.version == of_image(change.item, SECONDS)
    assert change.version.timestamp == NOW + 123 and change.version.fraction > 0
    assert change.item["last_update_timestamp"] == {"N": str(STAMP)}


def test_in_milliseconds_the_same_write_is_stamped_afresh(aws):
    regions = TwoRegions(version_unit=MILLISECONDS)
    cn = regions.china
    sample_put(cn, "u1", STAMP)
    cn.sender.handle({"Records": stream_records(cn)})
    assert cn.sender.last_counts["restamped"] == 1


def test_the_peer_applies_it_with_the_exact_stored_number(seconds):
    cn, sg = seconds.china, seconds.world
    sample_put(cn, "u1", STAMP - 1, name="first")
    cn.sender.handle({"Records": stream_records(cn)})
    sg.replicator.handle({"Records": kinesis_records(sg)})
    assert item(sg, "u1")["last_update_timestamp"] == {"N": str(STAMP - 1)}

    # Concurrent writes a fifth of a millisecond apart, both newer than the first: the later
    # one wins in both regions, as the stored numbers compare, whatever the whole milliseconds.
    later, earlier = STAMP + Decimal("0.0001"), STAMP - Decimal("0.0001")
    sample_put(sg, "u1", later, name="later")
    sample_put(cn, "u1", earlier, name="earlier")
    sg.sender.handle({"Records": stream_records(sg)[1:]})  # after the replicated put
    cn.sender.handle({"Records": stream_records(cn)[1:]})
    assert (
        cn.sender.last_counts.get("restamped", 0) == sg.sender.last_counts.get("restamped", 0) == 0
    )
    cn.replicator.handle({"Records": kinesis_records(cn)})
    sg.replicator.handle({"Records": kinesis_records(sg)[1:]})
    for node in (cn, sg):
        assert item(node, "u1")["name"] == {"S": "later"}, node.name
        assert Decimal(item(node, "u1")["last_update_timestamp"]["N"]) == later


def test_a_restamp_and_a_delete_are_written_in_seconds(seconds):
    cn, sg = seconds.china, seconds.world
    sample_put(cn, "u1", STAMP)
    sample_put(cn, "u1", STAMP - 1)  # older than what it overwrote: stamped afresh
    cn.sender.handle({"Records": stream_records(cn)})
    assert cn.sender.last_counts["restamped"] == 1
    restamped = item(cn, "u1")["last_update_timestamp"]["N"]
    assert Decimal(restamped) < Decimal(10**10)  # seconds, not milliseconds
    assert of_image(item(cn, "u1"), SECONDS).fraction == 0

    cn.client("dynamodb").delete_item(TableName=cn.table, Key={"PK": {"S": "u1"}})
    cn.sender.handle({"Records": stream_records(cn)[2:]})
    deletes = [c for c in shipped_changes(sg) if c.op == wire.DELETE]
    # The delete outranks the restamped write it removed, and is written in seconds too.
    restamped_version = of_image(
        {"last_update_timestamp": {"N": restamped}, "last_updater_region": {"S": cn.name}}, SECONDS
    )
    assert deletes and all(c.version > restamped_version for c in deletes)
    assert all(c.version.fraction == 0 for c in deletes)


def test_a_delete_with_a_fraction_is_refused_as_forged(seconds):
    # The sender makes every delete's version in whole milliseconds; a delete carrying a
    # fraction did not come from it, and would hide its tombstone.
    cn, sg = seconds.china, seconds.world
    sample_put(cn, "u1", STAMP)
    cn.client("dynamodb").delete_item(TableName=cn.table, Key={"PK": {"S": "u1"}})
    cn.sender.handle({"Records": stream_records(cn)})
    [delete] = [c for c in shipped_changes(sg) if c.op == wire.DELETE]
    forged = Version(delete.version.timestamp, delete.version.region, Decimal("0.5"))
    sg.replicator.handle(kinesis_event(sg, [wire_replace(delete, forged)]))
    [report] = queue_messages(sg, sg.region.replicator_queue_url)
    assert report["kind"] == "poison-record"
    assert "of a DELETE is not whole milliseconds" in report["reason"], report["reason"]


def wire_replace(change: wire.Change, version: Version) -> wire.Change:
    return dataclasses.replace(change, version=version)


def test_verify_repairs_a_sub_millisecond_difference_by_the_rule(seconds):
    # The operator tools read the unit from the deployed functions, and compare as the
    # functions do: a tenth of a millisecond decides.
    cn, sg = seconds.china, seconds.world
    sample_put(cn, "u1", STAMP + Decimal("0.0001"), name="later")
    sample_put(sg, "u1", STAMP - Decimal("0.0001"), name="earlier")
    here = verify.TableSide("here", open_side(CHINA), "user-cn")
    peer = verify.TableSide("peer", open_side(GLOBAL), "user-sg")
    assert here.side.version_unit == SECONDS

    report = io.StringIO()
    result = verify.verify(here, peer, segments=1, repair=True, report=report)
    assert result.differences["differs"] == 1 and result.repairs["repaired"] == 1
    [entry] = [json.loads(line) for line in report.getvalue().splitlines()]
    assert entry["cn-north-1"]["fraction"] and entry["ap-southeast-1"]["fraction"]
    for node in (cn, sg):
        assert item(node, "u1")["name"] == {"S": "later"}, node.name
