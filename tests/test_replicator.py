"""The replicator: newest version wins, deletes stay deleted, bad records are isolated."""

from __future__ import annotations

import base64
import dataclasses
import json

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from botocore.exceptions import ClientError

from emulator.resources import SIGNING_KEYS
from emulator.stepped import TwoRegions
from replication import wire
from replication.versions import Version, now_ms
from tests.helpers import item, kinesis_event, put, queue_messages, stream_records

# An hour ago: a version ahead of the clock, or a change older than the tombstones, is refused.
NOW = (now_ms() // 1000 - 3600) * 1000
SG = "ap-southeast-1"


def change(key="u1", ts=NOW, region=SG, op=wire.PUT, table="user-sg", **attrs):
    keys = {"PK": {"S": key}}
    version = Version(ts, region)
    body = {**keys, **{k: {"S": str(v)} for k, v in attrs.items()}, **version.to_typed()}
    return wire.Change(
        table=table,
        op=op,
        keys=keys,
        version=version,
        origin=region,
        stream_ts_ms=now_ms() - 1_000,
        item=body if op == wire.PUT else None,
    )


def test_a_put_is_applied_with_its_version(regions):
    cn = regions.china
    response = cn.replicator.handle(kinesis_event(cn, [change(name="Li")]))

    assert response == {"batchItemFailures": []}
    assert item(cn, "u1") == {
        "PK": {"S": "u1"},
        "name": {"S": "Li"},
        "last_update_timestamp": {"N": str(NOW)},
        "last_updater_region": {"S": SG},
    }


def test_an_older_change_never_overwrites_a_newer_one(regions):
    cn = regions.china
    cn.replicator.handle(kinesis_event(cn, [change(ts=NOW + 5, name="new")]))
    cn.replicator.handle(kinesis_event(cn, [change(ts=NOW, name="old")]))

    assert item(cn, "u1")["name"] == {"S": "new"}
    assert cn.replicator.last_counts == {"stale": 1}


def test_equal_timestamps_resolve_by_region_the_same_way_everywhere(regions):
    cn = regions.china
    # Same millisecond, two regions: "cn-north-1" > "ap-southeast-1", whichever lands first.
    put(cn, "u1", now=NOW, region="cn-north-1", name="china")
    cn.replicator.handle(kinesis_event(cn, [change(ts=NOW, region=SG, name="global")]))
    assert item(cn, "u1")["name"] == {"S": "china"}

    # And in the other region, where China's change arrives second.
    sg = regions.world
    put(sg, "u2", now=NOW, region=SG, name="global")
    china_change = dataclasses.replace(
        change(key="u2", ts=NOW, region="cn-north-1", name="china"), table="user-cn"
    )
    sg.replicator.handle(kinesis_event(sg, [china_change]))
    assert item(sg, "u2")["name"] == {"S": "china"}


def test_a_replayed_change_is_harmless(regions):
    cn = regions.china
    event = kinesis_event(cn, [change(name="once")])
    cn.replicator.handle(event)
    cn.replicator.handle(event)

    assert item(cn, "u1")["name"] == {"S": "once"}
    assert cn.replicator.last_counts == {"stale": 1}


def test_changes_to_one_item_in_one_batch_apply_in_order(regions):
    cn = regions.china
    changes = [change(ts=NOW + i, n=i) for i in range(5)]
    others = [change(key=f"k{i}", n=i) for i in range(20)]
    cn.replicator.handle(kinesis_event(cn, [*changes[:2], *others, *changes[2:]]))

    assert item(cn, "u1")["n"] == {"S": "4"}
    assert cn.replicator.last_counts == {"replicated": 25}


def test_a_delete_removes_the_item_and_an_older_put_cannot_bring_it_back(regions):
    cn = regions.china
    cn.replicator.handle(kinesis_event(cn, [change(ts=NOW)]))
    cn.replicator.handle(kinesis_event(cn, [change(ts=NOW + 10, op=wire.DELETE)]))
    assert item(cn, "u1") is None

    # A put made before the delete, arriving after it (a retried batch, a slow link).
    cn.replicator.handle(kinesis_event(cn, [change(ts=NOW + 5)]))
    assert item(cn, "u1") is None
    assert cn.replicator.last_counts == {"stale": 1}

    # A put made after the delete wins.
    cn.replicator.handle(kinesis_event(cn, [change(ts=NOW + 20, name="back")]))
    assert item(cn, "u1")["name"] == {"S": "back"}


def test_a_delete_older_than_the_item_is_ignored(regions):
    cn = regions.china
    cn.replicator.handle(kinesis_event(cn, [change(ts=NOW + 10)]))
    cn.replicator.handle(kinesis_event(cn, [change(ts=NOW, op=wire.DELETE)]))
    assert item(cn, "u1") is not None


def test_a_replayed_put_is_checked_against_tombstones_again(regions):
    # First delivery: the put lands, then the batch fails before its tombstone check.
    cn = regions.china
    tombstones = cn.replicator.tombstones
    real = tombstones.versions
    tombstones.versions = lambda keys: (_ for _ in ()).throw(RuntimeError("throttled"))
    event = kinesis_event(cn, [change(ts=NOW)])
    with pytest.raises(BatchProcessingError, match="throttled"):
        cn.replicator.handle(event)  # the whole batch failed: Lambda retries all of it

    # Meanwhile a newer delete is on record; the retry must take the item out.
    tombstones.versions = real
    tombstones.record(wire.key_id("user-cn", {"PK": {"S": "u1"}}), Version(NOW + 1, SG))
    assert cn.replicator.handle(event) == {"batchItemFailures": []}
    assert item(cn, "u1") is None


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff\xfe not json", "not JSON"),
        (b'{"format": "something-else"}', "not a ddb-replication document"),
        (
            json.dumps({**json.loads(wire.encode(change())), "version": None}).encode(),
            "missing or bad version",
        ),
        (wire.seal(wire.encode(change(table="unknown-table")), SIGNING_KEYS), "no local table"),
        (wire.seal(wire.encode(change(region="cn-north-1")), SIGNING_KEYS), "a loop"),
    ],
)
def test_a_malformed_record_is_isolated_and_its_neighbours_applied(regions, payload, reason):
    cn = regions.china
    event = kinesis_event(cn, [change(key="before"), payload, change(key="after")])
    response = cn.replicator.handle(event)

    assert response == {"batchItemFailures": []}
    assert item(cn, "before") is not None and item(cn, "after") is not None
    [report] = queue_messages(cn, cn.region.replicator_queue_url)
    assert report["kind"] == "poison-record" and reason in report["reason"]
    assert report["record"]["kinesis"]["sequenceNumber"] == "1001"
    counts = cn.replicator.last_counts
    assert (counts["replicated"], counts["poison"], counts.get("failed")) == (2, 1, None)
    # The item's keys, where the change could be read at all, as the sender reports them.
    decoded = reason in ("no local table", "a loop")
    assert report["keys"] == ({"PK": {"S": "u1"}} if decoded else None)


def test_data_that_is_not_base64_is_isolated(regions):
    cn = regions.china
    event = kinesis_event(cn, [change(key="a"), change(key="b")])
    event["Records"][0]["kinesis"]["data"] = "%%% not base64 %%%"
    assert cn.replicator.handle(event) == {"batchItemFailures": []}
    assert item(cn, "b") is not None
    assert "undecodable" in queue_messages(cn, cn.region.replicator_queue_url)[0]["reason"]


def test_an_item_too_large_for_the_table_is_isolated(regions):
    cn = regions.china
    huge = change(key="huge", blob="x" * 410_000)
    event = kinesis_event(cn, [huge, change(key="fine")])
    assert cn.replicator.handle(event) == {"batchItemFailures": []}
    assert item(cn, "fine") is not None and item(cn, "huge") is None
    [report] = queue_messages(cn, cn.region.replicator_queue_url)
    assert "rejected" in report["reason"] and "record_truncated" in report


def test_a_transient_error_is_retried_from_that_record(regions):
    cn = regions.china
    ddb = cn.replicator.clients("dynamodb")
    real_put = ddb.put_item

    def throttled_for_b(**kwargs):
        if kwargs["Item"]["PK"]["S"] == "b":
            error = {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": ""}}
            raise ClientError(error, "PutItem")
        return real_put(**kwargs)

    ddb.put_item = throttled_for_b
    response = cn.replicator.handle(kinesis_event(cn, [change(key=k) for k in "abc"]))
    assert response == {"batchItemFailures": [{"itemIdentifier": "1001"}]}
    assert item(cn, "a") is not None and item(cn, "c") is not None
    assert cn.replicator.last_counts == {"replicated": 2, "failed": 1}


def test_any_key_schema_replicates(aws):
    regions = TwoRegions(key_schema=(("tenant", "B", "HASH"), ("seq", "N", "RANGE")))
    cn = regions.china
    keys = {
        "tenant": {"B": base64.b64encode(b"\x00\xffbin").decode()},
        "seq": {"N": "12345678901234567890123456789012345678"},
    }
    version = Version(NOW, SG)
    body = {**keys, "doc": {"M": {"l": {"L": [{"NULL": True}, {"BOOL": False}]}}}}
    put_change = wire.Change(
        "user-sg", wire.PUT, keys, version, SG, NOW, {**body, **version.to_typed()}
    )
    assert cn.replicator.handle(kinesis_event(cn, [put_change])) == {"batchItemFailures": []}
    client_keys = wire.item_to_client(keys)
    stored = cn.client("dynamodb").get_item(TableName="user-cn", Key=client_keys)["Item"]
    assert wire.item_from_client(stored)["doc"] == body["doc"]
    assert stored["seq"] == {"N": "12345678901234567890123456789012345678"}

    delete = wire.Change("user-sg", wire.DELETE, keys, Version(NOW + 1, SG), SG, NOW)
    cn.replicator.handle(kinesis_event(cn, [delete]))
    assert "Item" not in cn.client("dynamodb").get_item(TableName="user-cn", Key=client_keys)


def test_one_pipeline_carries_several_tables(regions):
    cn = regions.china
    ddb = cn.client("dynamodb")
    ddb.create_table(
        TableName="orders-cn",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    settings = cn.replicator.settings
    cn.replicator.settings = settings.__class__(
        **{**settings.__dict__, "table_map": {"user-sg": "user-cn", "orders-sg": "orders-cn"}}
    )
    keys = {"id": {"S": "o1"}}
    order = wire.Change(
        "orders-sg",
        wire.PUT,
        keys,
        Version(NOW, SG),
        SG,
        NOW,
        {**keys, **Version(NOW, SG).to_typed()},
    )
    cn.replicator.handle(kinesis_event(cn, [change(), order]))
    assert item(cn, "u1") is not None
    assert "Item" in ddb.get_item(TableName="orders-cn", Key=keys)


def test_stats_are_counted_per_table_with_one_update_per_batch(regions):
    cn = regions.china
    calls = []
    ddb = cn.replicator.clients("dynamodb")
    ddb.meta.events.register("before-call.dynamodb.UpdateItem", lambda **kw: calls.append(1))
    cn.replicator.handle(kinesis_event(cn, [change(key=k) for k in "abc"]))
    cn.replicator.handle(kinesis_event(cn, [change(key="a"), b"junk"]))
    assert len(calls) == 2

    stats = cn.client("dynamodb").get_item(
        TableName="replicator_stats", Key={"PK": {"S": "user-cn"}}
    )
    counters = {k: v.get("N") for k, v in stats["Item"].items()}
    assert counters["replicated"] == "3"
    assert counters["stale"] == "1"
    assert counters["batches"] == "2"
    assert int(counters["last_lag_ms"]) >= 0


def test_metrics_are_emitted_as_embedded_metric_format(regions, capsys):
    cn = regions.china
    cn.replicator.handle(kinesis_event(cn, [change(key="a"), change(key="a"), b"junk"]))
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    [emf] = lines
    names = {m["Name"] for m in emf["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert {"Replicated", "Stale", "Poison", "ReplicationLag"} <= names
    assert emf["Replicated"] == [1.0] and emf["Stale"] == [1.0] and emf["Poison"] == [1.0]
    assert 1_000 <= emf["ReplicationLag"][0] < 60_000


def test_an_item_created_and_updated_in_one_batch_is_checked_as_the_batch_left_it(regions):
    cn = regions.china
    cn.replicator.tombstones.record(
        wire.key_id("user-cn", {"PK": {"S": "u1"}}), Version(NOW + 10, "cn-north-1")
    )
    # Both puts are older than the delete here; the second one is the item's final state.
    cn.replicator.handle(kinesis_event(cn, [change(ts=NOW), change(ts=NOW + 5, name="later")]))

    assert item(cn, "u1") is None
    assert cn.replicator.last_counts == {"replicated": 1, "stale": 1}


def test_metrics_stay_per_function_and_never_pile_up(regions, capsys, monkeypatch):
    cn = regions.china
    # With publishing off, the sender's counts must be dropped, not kept for a later line.
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    put(cn, "u1", now=NOW)
    cn.sender.handle({"Records": stream_records(cn)})
    cn.replicator.handle(kinesis_event(cn, [change(key="a")]))
    assert cn.sender.metrics.metric_set == {} and cn.replicator.metrics.metric_set == {}
    assert '"_aws"' not in capsys.readouterr().out

    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED")
    put(cn, "u2", now=NOW)
    cn.sender.handle({"Records": stream_records(cn)[-1:]})
    cn.replicator.handle(kinesis_event(cn, [change(key="b")]))
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if '"_aws"' in x]
    names = [{m["Name"] for m in line["_aws"]["CloudWatchMetrics"][0]["Metrics"]} for line in lines]
    # One line per function, each with its own metrics only.
    assert names == [{"Shipped"}, {"Replicated", "ReplicationLag"}]
