"""Kinesis Data Streams for DynamoDB in the emulator (emulator/capture.py), and what it is for:
a delete made after an update in the other region wins, where DynamoDB Streams' whole-second
creation times let the update win instead.
"""

from __future__ import annotations

import base64
import json
import random

import pytest
from moto import mock_aws

from deployment import events
from deployment.names import CHINA, GLOBAL
from deployment.tables import scan_all
from emulator.capture import (
    DYNAMODB_STREAMS,
    KINESIS,
    CaptureFaults,
    partition_key,
)
from emulator.esm import SENDER_MAPPING
from emulator.simulated_time import SimulatedTime, simulated
from emulator.stepped import TwoRegions
from emulator.stream_sources import KinesisSource
from replication.stamping import stamp, stamped_update
from tests.helpers import emulator_running, queue_messages
from tests.test_convergence import canonical

KEYS = [f"item-{i}" for i in range(6)]


def capture_records(node) -> list[dict]:
    """The region's capture stream, in delivery order: (partition key, payload) pairs."""
    source = node.sender_mappings[0].source
    assert isinstance(source, KinesisSource)
    return [
        (r["kinesis"]["partitionKey"], json.loads(base64.b64decode(r["kinesis"]["data"])))
        for shard in source.shards()
        for r in source.read(shard, None, 10_000)
    ]


def table_stream(node) -> list[dict]:
    """The region's table stream as boto3 reads it, in the table's order."""
    streams = node.client("dynamodbstreams")
    arn = node.region.stream_arns[node.table]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(
        StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    return streams.get_records(ShardIterator=iterator)["Records"]


def write_load(node, time: SimulatedTime, rng: random.Random, writes: int = 60) -> None:
    """Puts, updates and deletes of a few items, several in the same millisecond."""
    ddb = node.client("dynamodb")
    for i in range(writes):
        time.ms += rng.choice([0, 0, 1, 3, 20])
        key = {"PK": {"S": rng.choice(KEYS)}}
        if rng.random() < 0.15:
            ddb.delete_item(TableName=node.table, Key=key)
        else:
            item = stamp({**key, "n": {"N": str(i)}}, node.name, node.clock(), typed=True)
            ddb.put_item(TableName=node.table, Item=item)


def pumped(faults: CaptureFaults, seed: int = 5):
    """A region's writes, pumped at random moments into its capture stream with `faults`; the
    capture records in delivery order and the table stream."""
    time = SimulatedTime()
    with mock_aws(), simulated(time):
        regions = TwoRegions(time_source=time, capture=KINESIS, capture_faults=faults)
        node, rng = regions.china, random.Random(seed)
        for _ in range(4):
            write_load(node, time, rng, 15)
            node.capture.step()
        time.ms += 10_000
        node.capture.step()
        assert node.capture.idle()
        return capture_records(node), table_stream(node), node.capture


def test_a_region_with_kinesis_capture_has_its_capture_stream(aws):
    regions = TwoRegions(capture=KINESIS)
    for node in regions.nodes.values():
        name = node.region.names.capture_stream
        assert name == node.region.capture_stream == f"ddb_capture_stream_{node.table[-2:]}"
        summary = node.client("kinesis").describe_stream_summary(StreamName=name)
        assert summary["StreamDescriptionSummary"]["StreamARN"] == node.region.capture_stream_arn
        # The sender reads the capture stream, with no record-age limit (AWS: -1).
        (mapping,) = node.sender_mappings
        assert mapping.source.arn == node.region.capture_stream_arn
        assert mapping.config.maximum_record_age_s == -1
        assert mapping.config.maximum_retry_attempts == -1
        assert mapping.config.batch_size == SENDER_MAPPING.batch_size


def test_the_default_capture_is_the_tables_streams_with_no_capture_stream(aws):
    regions = TwoRegions()
    for node in regions.nodes.values():
        assert node.capture is None and node.region.capture == DYNAMODB_STREAMS
        assert [m.source.arn for m in node.sender_mappings] == [node.region.stream_arns[node.table]]
        names = node.client("kinesis").list_streams()["StreamNames"]
        assert node.region.names.capture_stream not in names


def test_an_unknown_capture_kind_is_refused_in_one_line(aws):
    with pytest.raises(ValueError, match="capture must be one of dynamodb_streams, kinesis"):
        TwoRegions(capture="kinesis_firehose")
    with pytest.raises(ValueError, match="duplicate_rate must be between 0 and 1"):
        CaptureFaults(duplicate_rate=2)


def test_capture_records_carry_each_change_in_the_tables_order_with_microseconds():
    delivered, table, pump = pumped(CaptureFaults())
    assert pump.duplicated == pump.reordered == 0
    # One record per change, in the table's order, each the payload the destination writes.
    assert [p["eventID"] for _, p in delivered] == [r["eventID"] for r in table]
    for (key, payload), raw in zip(delivered, table, strict=True):
        created_us = payload["dynamodb"]["ApproximateCreationDateTime"]
        assert payload == events.capture_payload(raw, "user-cn", CHINA, created_us)
        assert payload["eventSource"] == "aws:dynamodb" and payload["tableName"] == "user-cn"
        # Microseconds, in the millisecond the table gave the change.
        created_ms = int(raw["dynamodb"]["ApproximateCreationDateTime"].timestamp() * 1000 + 0.5)
        assert created_us // 1000 == created_ms
        # The partition key is the item's key's, whatever the change.
        assert key == partition_key(payload["dynamodb"]["Keys"])
    times = [p["dynamodb"]["ApproximateCreationDateTime"] for _, p in delivered]
    assert times == sorted(times) and len(set(times)) == len(times), "not increasing"
    # Several changes shared a millisecond: the part below it tells them apart.
    assert len({t // 1000 for t in times}) < len(times)


def test_the_destination_duplicates_and_reorders_as_configured_and_replays_by_seed():
    faults = CaptureFaults(duplicate_rate=0.25, reorder_window_ms=30, seed=3)
    delivered, table, pump = pumped(faults)
    ids = [p["eventID"] for _, p in delivered]
    assert sorted(set(ids)) == sorted(r["eventID"] for r in table), "a change went missing"
    assert len(ids) - len(set(ids)) == pump.duplicated > 0
    assert pump.reordered > 0
    # Some item's records came out of the order the table made them in.
    latest: dict[str, int] = {}
    out_of_order = 0
    for key, payload in delivered:
        created = payload["dynamodb"]["ApproximateCreationDateTime"]
        out_of_order += created < latest.get(key, 0)
        latest[key] = max(created, latest.get(key, 0))
    assert out_of_order == pump.reordered
    # The same seed delivers the same records in the same order (moto's eventIDs are random).
    again, _, _ = pumped(faults)
    assert [(k, p["dynamodb"]) for k, p in again] == [(k, p["dynamodb"]) for k, p in delivered]


# ------------------------------------------------------------------------- deletes win when later

PAIRS = 100


def update_then_delete(
    capture: str, updating: str, behind_ms: int, seed: int, created_by_deleter: bool = False
):
    """PAIRS items held by both regions; each updated in `updating`, then deleted 2 ms later
    in the other region, with `updating`'s clock `behind_ms` behind. The items are written
    10 s before by the updating region; or (`created_by_deleter`) half a second before by
    the deleting one, so an update stamped by a clock behind is older than the item and the
    sender stamps it afresh. Returns the regions, and per pair the true times of the update
    and the delete."""
    time = SimulatedTime()
    rng = random.Random(seed)
    with simulated(time):
        regions = TwoRegions(
            clock_offsets_ms={updating: -behind_ms}, time_source=time, capture=capture
        )
        updater = regions.nodes[updating]
        deleter = regions.nodes[GLOBAL if updating == CHINA else CHINA]
        keys = [f"pair-{i}" for i in range(PAIRS)]
        creator = deleter if created_by_deleter else updater
        for key in keys:
            time.ms += 3
            item = stamp(
                {"PK": {"S": key}, "n": {"N": "0"}}, creator.name, creator.clock(), typed=True
            )
            creator.client("dynamodb").put_item(TableName=creator.table, Item=item)
        time.ms += 500
        regions.settle()
        time.ms += 0 if created_by_deleter else 10_000
        pairs = []
        for key in keys:
            time.ms += rng.randrange(5, 50)
            update = stamped_update(
                updater.name, "SET #n = :n", {"#n": "n"}, {":n": {"N": "1"}}, updater.clock()
            )
            updater.client("dynamodb").update_item(
                TableName=updater.table, Key={"PK": {"S": key}}, **update
            )
            updated_at = time.ms
            time.ms += 2
            deleter.client("dynamodb").delete_item(TableName=deleter.table, Key={"PK": {"S": key}})
            pairs.append((key, updated_at, time.ms))
        time.ms += 1_000
        regions.settle()
    return regions, pairs


def outcome(regions: TwoRegions) -> tuple[int, bool]:
    """How many pairs' items exist after settling (resurrected), and whether both regions
    hold the same items."""
    china = scan_all(regions.china.client("dynamodb"), "user-cn")
    world = scan_all(regions.world.client("dynamodb"), "user-sg")
    for node in regions.nodes.values():
        assert queue_messages(node, node.region.sender_queue_url) == []
        assert queue_messages(node, node.region.replicator_queue_url) == []
    return len(china) + len(world), canonical(china) == canonical(world)


CASES = [
    pytest.param(updating, behind, id=f"update-in-{updating}-{label}")
    for updating in (CHINA, GLOBAL)
    for behind, label in ((0, "synced"), (5_000, "updater-5s-behind"))
]


# The case that found a sender fault: a lagging update, stamped afresh by its sender, lifted
# again above the other region's later delete once that delete was applied (Sender's
# _settle_above reinstated it over a tombstone newer than anything the update saw).
RESTAMPED = [
    pytest.param(updating, behind, True, id=f"update-in-{updating}-{label}-restamped")
    for updating in (CHINA, GLOBAL)
    for behind, label in ((0, "synced"), (5_000, "updater-5s-behind"))
]


@pytest.mark.parametrize(
    ("updating", "behind_ms", "created_by_deleter"),
    [pytest.param(*case.values, False, id=case.id) for case in CASES] + RESTAMPED,
)
def test_with_kinesis_capture_a_later_delete_wins(aws, updating, behind_ms, created_by_deleter):
    seed = len(updating) + behind_ms
    regions, pairs = update_then_delete(KINESIS, updating, behind_ms, seed, created_by_deleter)
    resurrected, equal = outcome(regions)
    assert (resurrected, equal) == (0, True), f"{resurrected} of {len(pairs)} came back"


@pytest.mark.parametrize(("updating", "behind_ms"), CASES)
def test_with_dynamodb_streams_a_delete_loses_to_an_update_made_within_its_second(
    aws, updating, behind_ms
):
    """DynamoDB Streams' records carry whole seconds, so a delete's version is the start of
    its second: an update made earlier in that second, and stamped with a clock not behind,
    outranks it and comes back. A delete made in the next second than the update (2 ms can
    cross one) wins; so does one after an update stamped 5 s behind."""
    regions, pairs = update_then_delete(
        DYNAMODB_STREAMS, updating, behind_ms, seed=len(updating) + behind_ms
    )
    resurrected, equal = outcome(regions)
    expected = sum(
        1
        for _, updated_at, deleted_at in pairs
        if updated_at - behind_ms >= deleted_at // 1000 * 1000  # the update's stamp, its second
    )
    # Each resurrected item is held by both regions.
    assert (resurrected, equal) == (2 * expected, True)
    if behind_ms:
        assert expected == 0
    else:
        assert expected > 0.9 * PAIRS


# ------------------------------------------------------------------------- the live emulator


def test_the_live_emulator_replicates_through_its_capture_streams(tmp_path):
    faults = CaptureFaults(duplicate_rate=0.2, reorder_window_ms=50, seed=2)
    with emulator_running(
        tmp_path, capture=KINESIS, capture_faults=faults, heartbeat_interval_s=None
    ) as deployment:
        for region in (CHINA, GLOBAL):
            r = deployment.regions[region]
            ddb = r.client("dynamodb")
            for i in range(30):
                item = stamp({"PK": {"S": f"k{i % 7}"}, "by": {"S": region}}, region, typed=True)
                ddb.put_item(TableName=r.names.tables[0], Item=item)
            ddb.delete_item(TableName=r.names.tables[0], Key={"PK": {"S": "k3"}})
        assert deployment.wait_until_converged(60), deployment.divergent_keys()
        for region, pump in deployment.pumps.items():
            assert pump.duplicated and pump.idle(), region
            assert deployment.failure_messages(region, "sender") == []
            assert deployment.failure_messages(region, "replicator") == []


# ------------------------------------------------- a delete of a write not yet stamped


@pytest.mark.parametrize("capture", [DYNAMODB_STREAMS, KINESIS])
def test_a_peer_write_made_after_a_delete_of_an_unstamped_write_survives(aws, capture):
    """Found investigating `make chaos SEED=5`: China's sender reached an unstamped write after
    the application had deleted the item, and shipped the delete at its own clock, two seconds
    on; Global's write made 50 ms after the delete lost to it in both regions. The delete now
    ships at its own version, lifted only above what the write saw."""
    time = SimulatedTime()
    with simulated(time):
        regions = TwoRegions(time_source=time, capture=capture)
        cn, sg = regions.china, regions.world
        key = {"PK": {"S": "x"}}
        item = stamp({**key, "v": {"S": "first"}}, cn.name, cn.clock(), typed=True)
        cn.client("dynamodb").put_item(TableName=cn.table, Item=item)
        time.ms += 500
        regions.settle()
        time.ms += 1_000
        cn.client("dynamodb").update_item(
            TableName=cn.table,
            Key=key,
            UpdateExpression="SET v = :v",
            ExpressionAttributeValues={":v": {"S": "unstamped"}},
        )
        time.ms += 10
        cn.client("dynamodb").delete_item(TableName=cn.table, Key=key)
        time.ms += 50
        later = stamped_update(sg.name, "SET v = :v", None, {":v": {"S": "later"}}, sg.clock())
        sg.client("dynamodb").update_item(TableName=sg.table, Key=key, **later)
        time.ms += 2_000  # the senders run now
        regions.settle()
    for node in (cn, sg):
        (held,) = scan_all(node.client("dynamodb"), node.table)
        assert held["v"] == {"S": "later"}, node.name


@pytest.mark.parametrize("capture", [DYNAMODB_STREAMS, KINESIS])
def test_a_delete_of_a_write_made_over_a_peer_delete_reaches_the_peer(aws, capture):
    """Found by `make chaos SEED=3 STEPS=200`: China's delete reached Global; an application
    there, its clock 8.8 s behind, re-created the item below that delete's tombstone and deleted
    it before Global's sender could stamp the write. The sender took the application's delete
    for the echo of China's, so China's write made between the two deletes came back in both
    regions. The functions now delete only items the peer stamped (the replicator stamps one
    written here with the delete first), so a delete of this region's write is an
    application's."""
    time = SimulatedTime()
    with simulated(time):
        regions = TwoRegions(time_source=time, capture=capture)
        cn, sg = regions.china, regions.world
        key = {"PK": {"S": "x"}}

        def put(node, value, clock):
            item = stamp({**key, "v": {"S": value}}, node.name, clock, typed=True)
            node.client("dynamodb").put_item(TableName=node.table, Item=item)

        put(cn, "first", cn.clock())
        time.ms += 500
        regions.settle()
        time.ms += 1_000
        cn.client("dynamodb").delete_item(TableName=cn.table, Key=key)
        time.ms += 500
        regions.settle()  # the delete's tombstone in Global
        time.ms += 1_100 - time.ms % 1_000  # a later second: whole seconds tell them apart
        put(sg, "behind", sg.clock() - 8_800)
        time.ms += 100
        put(cn, "between", cn.clock())
        time.ms += 1_200
        sg.client("dynamodb").delete_item(TableName=sg.table, Key=key)
        time.ms += 2_000  # the senders run now
        regions.settle()
    for node in (cn, sg):
        assert scan_all(node.client("dynamodb"), node.table) == [], node.name
