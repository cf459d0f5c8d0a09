"""The sender: what it ships, what it drops, what it stamps, how it reports failures."""

from __future__ import annotations

import copy
import os

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from botocore.exceptions import ClientError

from replication import outbound, wire
from replication.versions import Version, now_ms, of_image
from tests.helpers import (
    item,
    kinesis_event,
    mutated,
    put,
    queue_messages,
    shipped_changes,
    stream_records,
)

# An hour ago: a version ahead of the clock, or a change older than the tombstones, is refused.
NOW = (now_ms() // 1000 - 3600) * 1000


def peer_delete(at: int, stream_ts_ms: int | None = None) -> wire.Change:
    """Global's delete of u1, versioned `at`, as its sender ships it."""
    return wire.Change(
        table="user-sg",
        op=wire.DELETE,
        keys={"PK": {"S": "u1"}},
        version=Version(at, "ap-southeast-1"),
        origin="ap-southeast-1",
        stream_ts_ms=at if stream_ts_ms is None else stream_ts_ms,
    )


def test_a_stamped_local_write_is_shipped_to_the_peer_stream(regions):
    cn, sg = regions.china, regions.world
    written = put(cn, "u1", now=NOW, name="Li")
    response = cn.sender.handle({"Records": stream_records(cn)})

    assert response == {"batchItemFailures": []}
    [change] = shipped_changes(sg)
    assert change.op == wire.PUT
    assert change.table == "user-cn"
    assert change.keys == {"PK": {"S": "u1"}}
    assert change.item == written
    assert change.version == Version(NOW, "cn-north-1")
    assert change.origin == "cn-north-1"
    assert change.stream_ts_ms > 0


def test_echoes_of_replicated_changes_are_dropped(regions):
    cn, sg = regions.china, regions.world
    put(cn, "from-peer", now=NOW, region="ap-southeast-1")
    cn.sender.handle({"Records": stream_records(cn)})

    assert shipped_changes(sg) == []
    assert cn.sender.last_counts["echo"] == 1


def test_a_write_that_changes_nothing_is_not_shipped(regions):
    cn, sg = regions.china, regions.world
    put(cn, "u1", now=NOW)
    put(cn, "u1", now=NOW)  # moto emits a MODIFY for this; AWS would not
    cn.sender.handle({"Records": stream_records(cn)})

    assert len(shipped_changes(sg)) == 1
    assert cn.sender.last_counts["unchanged"] == 1


@pytest.mark.parametrize(
    "second_write",
    [
        pytest.param({"now": None, "region": None}, id="no version at all"),
        pytest.param({"now": NOW}, id="the same version again"),
        pytest.param({"now": NOW - 5_000}, id="an older version (clock behind)"),
    ],
)
def test_a_write_without_a_newer_version_is_stamped_and_then_shipped(regions, second_write):
    cn, sg = regions.china, regions.world
    put(cn, "u1", now=NOW, name="first")
    if second_write.get("now") is None and "region" in second_write:
        put(cn, "u1", name="second")  # unstamped
    else:
        put(cn, "u1", name="second", **second_write)
    cn.sender.handle({"Records": stream_records(cn)})
    assert cn.sender.last_counts["restamped"] == 1

    stamped = of_image(item(cn, "u1"))
    assert stamped.region == "cn-north-1" and stamped.timestamp > NOW
    # The stamping write is on the stream; shipping it carries the second write's content.
    cn.sender.handle({"Records": stream_records(cn)[2:]})
    last = shipped_changes(sg)[-1]
    assert last.item["name"] == {"S": "second"}
    assert last.version == stamped


def test_stamping_is_skipped_when_the_item_changed_again_meanwhile(regions):
    cn = regions.china
    put(cn, "u1", name="unstamped")
    records = stream_records(cn)
    # Stamped later, by a clock a little ahead of the sender's: newer than its fresh stamp.
    put(cn, "u1", now=now_ms() + 60_000, name="stamped later")
    cn.sender.handle({"Records": records})

    assert cn.sender.last_counts["superseded"] == 1
    assert item(cn, "u1")["name"] == {"S": "stamped later"}


def test_an_insert_older_than_the_items_tombstone_is_stamped_past_it(regions):
    cn = regions.china
    cn.sender.tombstones.record(wire.key_id("user-cn", {"PK": {"S": "u1"}}), Version(NOW, "x"))
    put(cn, "u1", now=NOW - 1_000)  # re-created after a delete, by a clock that lags
    cn.sender.handle({"Records": stream_records(cn)})

    assert cn.sender.last_counts["restamped"] == 1
    assert of_image(item(cn, "u1")) > Version(NOW, "x")


def test_a_local_delete_leaves_a_tombstone_and_ships_a_versioned_delete(regions):
    cn, sg = regions.china, regions.world
    put(cn, "u1", now=NOW)
    cn.client("dynamodb").delete_item(TableName="user-cn", Key={"PK": {"S": "u1"}})
    records = stream_records(cn)
    cn.sender.handle({"Records": records})

    [_, delete] = shipped_changes(sg)
    assert delete.op == wire.DELETE and delete.item is None
    created = records[1]["dynamodb"]["ApproximateCreationDateTime"] * 1000
    assert delete.version == Version(max(created, NOW + 1), "cn-north-1")
    kid = wire.key_id("user-cn", {"PK": {"S": "u1"}})
    assert cn.sender.tombstones.versions([kid]) == {kid: delete.version}

    # Redelivered (a retry after a later failure): the same delete, the same version.
    cn.sender.handle({"Records": records[1:]})
    assert shipped_changes(sg)[-1].version == delete.version


def test_a_delete_of_a_peer_written_item_is_shipped_too(regions):
    cn, sg = regions.china, regions.world
    put(cn, "u1", now=NOW, region="ap-southeast-1")  # replicated here earlier
    cn.client("dynamodb").delete_item(TableName="user-cn", Key={"PK": {"S": "u1"}})
    cn.sender.handle({"Records": stream_records(cn)})

    [delete] = shipped_changes(sg)
    assert delete.op == wire.DELETE and delete.version.region == "cn-north-1"


def test_the_replicators_delete_is_not_sent_back(regions):
    cn, sg = regions.china, regions.world
    put(cn, "u1", now=NOW, region="ap-southeast-1")
    remote_delete = peer_delete(NOW + 10, stream_ts_ms=NOW)
    cn.replicator.handle(kinesis_event(cn, [remote_delete]))
    assert item(cn, "u1") is None
    cn.sender.handle({"Records": stream_records(cn)})
    assert shipped_changes(sg) == []


def test_a_peer_delete_applied_after_a_write_not_yet_stamped_stands(regions):
    """The write's record comes first, but the delete came after it. The replicator stamped the
    item with the delete's version before deleting it, so both records it left are echoes."""
    cn, sg = regions.china, regions.world
    put(cn, "u1", now=NOW - 1_000, name="behind")  # stamped below the delete now arriving
    remote_delete = peer_delete(NOW)
    cn.replicator.handle(kinesis_event(cn, [remote_delete]))
    cn.sender.handle({"Records": stream_records(cn)})

    records = stream_records(cn)
    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY", "REMOVE"]
    assert of_image(records[2]["dynamodb"]["OldImage"]) == remote_delete.version
    assert cn.sender.last_counts["superseded"] == 1 and cn.sender.last_counts["echo"] == 2
    assert shipped_changes(sg) == []
    kid = wire.key_id("user-cn", {"PK": {"S": "u1"}})
    assert cn.sender.tombstones.read([kid]) == ({kid: remote_delete.version}, set())


def test_a_write_made_while_the_replicator_applies_a_delete_ships_no_delete(regions):
    """Found by `make chaos SEED=95 STEPS=200`, against a first fix for seed 3 that told the
    two deletes apart by when the tombstone was recorded: the replicator records it before it
    deletes, so a write can fall between, and its delete was shipped as this region's."""
    cn, sg = regions.china, regions.world
    put(cn, "u1", now=NOW - 10)
    record = cn.replicator.tombstones.record

    def record_then_write(*args, **kwargs):
        stored = record(*args, **kwargs)
        put(cn, "u1", name="unstamped, between")  # an application write, just then
        return stored

    cn.replicator.tombstones.record = record_then_write
    remote_delete = peer_delete(NOW)
    cn.replicator.handle(kinesis_event(cn, [remote_delete]))
    assert item(cn, "u1") is None
    cn.sender.handle({"Records": stream_records(cn)})

    assert shipped_changes(sg) == []  # its write lost to the delete; nothing to ship


def test_a_write_an_older_peer_delete_removed_under_a_newer_tombstone_is_put_back(regions):
    """Found by `make chaos SEED=95 STEPS=200`: the item was deleted here, re-created ahead of
    that delete, then overwritten unstamped; the replicator applied an older delete of the
    peer's, which an unstamped item loses to. The sender found the item gone under this
    region's newer tombstone and awaited a delete from here that never came, so the write was
    lost here and kept in the peer. Its delete record, stamped by the replicator, says whose it
    was: the write goes back, above what it saw."""
    cn, sg = regions.china, regions.world
    kid = wire.key_id("user-cn", {"PK": {"S": "u1"}})
    cn.sender.tombstones.record(kid, Version(NOW, "cn-north-1"))  # deleted here earlier
    put(cn, "u1", now=NOW + 5_000, name="ahead")
    put(cn, "u1", name="unstamped")
    older_delete = peer_delete(NOW - 1_000)
    cn.replicator.handle(kinesis_event(cn, [older_delete]))
    assert item(cn, "u1") is None
    cn.sender.handle({"Records": stream_records(cn)})

    assert cn.sender.last_counts["reinstated"] == 1
    held = item(cn, "u1")
    assert held["name"] == {"S": "unstamped"}
    assert of_image(held) > Version(NOW + 5_000, "cn-north-1")
    cn.sender.handle({"Records": stream_records(cn)[-1:]})
    last = shipped_changes(sg)[-1]
    assert last.item["name"] == {"S": "unstamped"} and last.version == of_image(held)


def test_a_delete_of_a_write_below_a_peer_tombstone_is_shipped_above_it(regions):
    """The item was re-created over the peer's delete by a clock behind it, and deleted before
    the sender stamped it: the application's delete, not an echo of the peer's."""
    cn, sg = regions.china, regions.world
    kid = wire.key_id("user-cn", {"PK": {"S": "u1"}})
    cn.sender.tombstones.record(kid, Version(NOW, "ap-southeast-1"))
    put(cn, "u1", now=NOW - 8_000, name="behind")
    cn.client("dynamodb").delete_item(TableName="user-cn", Key={"PK": {"S": "u1"}})
    cn.sender.handle({"Records": stream_records(cn)})

    [delete] = shipped_changes(sg)
    assert delete.op == wire.DELETE and delete.version > Version(NOW, "ap-southeast-1")
    assert delete.version.region == "cn-north-1"


@pytest.mark.parametrize(("policy", "shipped"), [("replicate", 1), ("skip", 0)])
def test_ttl_deletes_follow_the_configured_policy(regions, policy, shipped):
    cn, sg = regions.china, regions.world
    cn.sender.settings = cn.sender.settings.__class__(
        **{**cn.sender.settings.__dict__, "ttl_deletes": policy}
    )
    put(cn, "u1", now=NOW)
    cn.client("dynamodb").delete_item(TableName="user-cn", Key={"PK": {"S": "u1"}})
    insert, remove = stream_records(cn)
    ttl_remove = mutated(
        remove, userIdentity={"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    )
    cn.sender.handle({"Records": [ttl_remove]})

    assert len(shipped_changes(sg)) == shipped


def test_a_malformed_record_is_isolated_and_the_rest_of_the_batch_ships(regions):
    cn, sg = regions.china, regions.world
    for key in ("a", "b", "c"):
        put(cn, key, now=NOW)
    a, b, c = stream_records(cn)
    broken = copy.deepcopy(b)
    del broken["dynamodb"]["NewImage"]  # e.g. a KEYS_ONLY stream
    response = cn.sender.handle({"Records": [a, broken, c]})

    assert response == {"batchItemFailures": []}
    assert [ch.keys["PK"]["S"] for ch in shipped_changes(sg)] == ["a", "c"]
    [report] = queue_messages(cn, cn.region.sender_queue_url)
    assert report["kind"] == "poison-record"
    assert "NEW_AND_OLD_IMAGES" in report["reason"]
    assert report["record"]["dynamodb"]["SequenceNumber"] == b["dynamodb"]["SequenceNumber"]


def test_a_change_too_large_for_kinesis_even_compressed_is_isolated(regions, monkeypatch):
    cn, sg = regions.china, regions.world
    put(cn, "small", now=NOW)
    put(cn, "large", now=NOW, blob=os.urandom(1500).hex())  # incompressible past 900 bytes
    monkeypatch.setattr(wire, "MAX_RECORD_BYTES", 900)
    cn.sender.handle({"Records": stream_records(cn)})

    assert [ch.keys["PK"]["S"] for ch in shipped_changes(sg)] == ["small"]
    [report] = queue_messages(cn, cn.region.sender_queue_url)
    assert "900-byte record limit" in report["reason"] and "compressed" in report["reason"]
    assert report["keys"] == {"PK": {"S": "large"}}


class FlakyPutRecords:
    """Wraps PutRecords: on the listed attempts, the records of the listed keys fail."""

    def __init__(self, real, failing_keys, failing_attempts):
        self.real, self.failing_keys, self.failing_attempts = real, failing_keys, failing_attempts
        self.calls: list[list[str]] = []

    def __call__(self, records):
        keys = [wire.decode(r["Data"]).keys["PK"]["S"] for r in records]
        attempt = len(self.calls)
        self.calls.append(keys)
        if attempt not in self.failing_attempts:
            return self.real(records)
        passing = [r for r, k in zip(records, keys, strict=True) if k not in self.failing_keys]
        if passing:
            self.real(passing)
        throttled = {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "slow"}
        accepted = {"SequenceNumber": "1", "ShardId": "shardId-000000000000"}
        return {"Records": [throttled if k in self.failing_keys else accepted for k in keys]}


def test_throttled_records_alone_are_retried(regions, monkeypatch):
    cn, sg = regions.china, regions.world
    cn.sender.pause = lambda attempt: None
    for key in "abcd":
        put(cn, key, now=NOW)
    flaky = FlakyPutRecords(cn.sender.peer.put_records, {"b", "d"}, failing_attempts={0})
    cn.sender.peer.put_records = flaky
    response = cn.sender.handle({"Records": stream_records(cn)})

    assert response == {"batchItemFailures": []}
    assert flaky.calls == [["a", "b", "c", "d"], ["b", "d"]]
    assert sorted(ch.keys["PK"]["S"] for ch in shipped_changes(sg)) == ["a", "b", "c", "d"]


def test_records_the_peer_keeps_refusing_are_reported_from_the_first_failure(regions, monkeypatch):
    cn = regions.china
    cn.sender.pause = lambda attempt: None
    for key in "abcd":
        put(cn, key, now=NOW)
    records = stream_records(cn)
    cn.sender.peer.put_records = FlakyPutRecords(
        cn.sender.peer.put_records, {"c"}, failing_attempts=set(range(99))
    )
    response = cn.sender.handle({"Records": records})

    # The mapping restarts at "c": "a" and "b" are not sent again.
    assert response == {
        "batchItemFailures": [{"itemIdentifier": records[2]["dynamodb"]["SequenceNumber"]}]
    }
    assert cn.sender.last_counts["failed"] == 1


def test_large_batches_are_split_to_kinesis_request_limits(regions, monkeypatch):
    cn = regions.china
    monkeypatch.setattr(outbound, "MAX_RECORDS_PER_REQUEST", 3)
    for key in "abcdefg":
        put(cn, key, now=NOW)
    calls = []
    real = cn.sender.peer.put_records
    cn.sender.peer.put_records = lambda records: calls.append(len(records)) or real(records)
    cn.sender.handle({"Records": stream_records(cn)})
    assert calls == [3, 3, 1]

    chunks = list(outbound._chunks([outbound._Outgoing(i, {}, b"x" * 100, "k") for i in range(5)]))
    monkeypatch.setattr(outbound, "MAX_BYTES_PER_REQUEST", 250)
    chunks = list(outbound._chunks([outbound._Outgoing(i, {}, b"x" * 100, "k") for i in range(5)]))
    assert [len(c) for c in chunks] == [2, 2, 1]


def test_peer_keys_are_read_lazily_and_cached_across_invocations(regions):
    cn = regions.china
    credentials = cn.sender.peer.credentials
    assert credentials.reads == 0  # building the function touched nothing
    for key in "ab":
        put(cn, key, now=NOW)
        cn.sender.handle({"Records": stream_records(cn)[-1:]})
    assert credentials.reads == 1


def test_peer_keys_are_read_again_when_their_time_to_live_ends(regions):
    cn = regions.china
    credentials = cn.sender.peer.credentials
    now = [0.0]
    credentials._clock = lambda: now[0]
    credentials.get()
    now[0] = cn.sender.settings.credentials_ttl_seconds + 1
    credentials.get()
    assert credentials.reads == 2


def test_rotated_peer_keys_are_picked_up_when_the_peer_rejects_the_old_ones(regions):
    cn, sg = regions.china, regions.world
    prefix = cn.region.names.peer_credentials_prefix
    built_with = []
    real_build = cn.sender.peer._build_client

    def build(keys):
        built_with.append(keys)
        client = real_build(keys)
        if keys[0] != "AKIAROTATED":
            error = {"Error": {"Code": "UnrecognizedClientException", "Message": "bad key"}}

            def reject(**_):
                raise ClientError(error, "PutRecords")

            client.put_records = reject
        return client

    cn.sender.peer._build_client = build
    put(cn, "u1", now=NOW)
    cn.sender.peer.credentials.get()  # cached before the rotation
    ssm = cn.client("ssm")
    ssm.put_parameter(Name=f"{prefix}AccessKey", Value="AKIAROTATED", Type="String", Overwrite=True)
    response = cn.sender.handle({"Records": stream_records(cn)})

    assert response == {"batchItemFailures": []}
    assert [k[0] for k in built_with] == ["AKIAPEERDUMMYKEY0000", "AKIAROTATED"]
    assert len(shipped_changes(sg)) == 1
    assert cn.sender.last_counts["peer_credential_refreshes"] == 1


def test_missing_peer_keys_fail_the_batch_with_a_clear_error(regions):
    cn = regions.china
    cn.client("ssm").delete_parameter(Name=f"{cn.region.names.peer_credentials_prefix}SecretKey")
    put(cn, "u1", now=NOW)
    with pytest.raises(Exception, match="SecretKey"):
        cn.sender.handle({"Records": stream_records(cn)})


def test_the_peer_client_goes_through_the_configured_proxy(regions):
    cn = regions.china
    settings = cn.sender.settings
    cn.sender.peer.settings = settings.__class__(
        **{**settings.__dict__, "peer_proxy_url": "http://10.1.2.3:3128"}
    )
    client = cn.sender.peer._build_client(("AK", "SK"))
    assert client._client_config.proxies == {
        "https": "http://10.1.2.3:3128",
        "http": "http://10.1.2.3:3128",
    }
    assert client.meta.region_name == "ap-southeast-1"
    assert client._client_config.connect_timeout == settings.connect_timeout_seconds


class FakeContext:
    def __init__(self, remaining_ms):
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self):
        return self.remaining_ms


@pytest.mark.parametrize(("remaining_ms", "attempts"), [(120_000, 6), (60_000, 4), (16_000, 1)])
def test_no_attempt_starts_that_could_outlast_the_function(regions, remaining_ms, attempts):
    cn = regions.china
    cn.sender.pause = lambda attempt: None
    put(cn, "ok", now=NOW)
    put(cn, "refused", now=NOW)
    records = stream_records(cn)
    flaky = FlakyPutRecords(cn.sender.peer.put_records, {"refused"}, set(range(99)))
    context = FakeContext(remaining_ms)

    def slow(records):  # every attempt takes as long as its timeouts allow
        context.remaining_ms -= 13_000
        return flaky(records)

    cn.sender.peer.put_records = slow
    response = cn.sender.handle({"Records": records}, context)

    # Each attempt may take connect + read timeouts (13 s by default) plus 2 s to report.
    assert len(flaky.calls) == attempts
    assert response["batchItemFailures"] == [
        {"itemIdentifier": records[1]["dynamodb"]["SequenceNumber"]}
    ]


def test_with_too_little_time_left_nothing_is_attempted_and_the_batch_is_retried(regions):
    cn = regions.china
    put(cn, "u1", now=NOW)
    calls = []
    cn.sender.peer.put_records = lambda records: calls.append(records)
    with pytest.raises(BatchProcessingError):
        cn.sender.handle({"Records": stream_records(cn)}, FakeContext(14_000))
    assert calls == []


def test_the_peer_client_makes_one_attempt_per_call(regions):
    client = regions.china.sender.peer._build_client(("AK", "SK"))
    assert client._client_config.retries["total_max_attempts"] == 1
    assert client._client_config.read_timeout == regions.china.sender.settings.read_timeout_seconds


def test_an_unstamped_update_to_a_peer_written_item_is_stamped_not_dropped(regions):
    cn, sg = regions.china, regions.world
    put(cn, "u1", now=NOW, region="ap-southeast-1")  # replicated here earlier
    cn.client("dynamodb").update_item(
        TableName="user-cn",
        Key={"PK": {"S": "u1"}},
        UpdateExpression="SET #n = :n",
        ExpressionAttributeNames={"#n": "name"},
        ExpressionAttributeValues={":n": {"S": "changed here"}},
    )
    cn.sender.handle({"Records": stream_records(cn)})
    assert cn.sender.last_counts["restamped"] == 1

    cn.sender.handle({"Records": stream_records(cn)[-1:]})
    [change] = shipped_changes(sg)
    assert change.item["name"] == {"S": "changed here"}
    assert change.version.region == "cn-north-1" and change.version.timestamp > NOW


def test_a_local_update_older_than_the_items_tombstone_is_stamped_past_it(regions):
    cn = regions.china
    put(cn, "u1", now=NOW - 10)
    records = stream_records(cn)
    cn.sender.tombstones.record(wire.key_id("user-cn", {"PK": {"S": "u1"}}), Version(NOW, "x"))
    put(cn, "u1", now=NOW - 5, name="after the delete")  # a MODIFY, older than the tombstone
    cn.sender.handle(
        {"Records": stream_records(cn, after=records[-1]["dynamodb"]["SequenceNumber"])}
    )

    assert cn.sender.last_counts["restamped"] == 1
    assert of_image(item(cn, "u1")) > Version(NOW, "x")


def rolled_back(cn):
    """An item at version NOW, then a local write stamped 5 s older (a lagging clock)."""
    put(cn, "u1", now=NOW, name="newest")
    put(cn, "u1", now=NOW - 5_000, name="rolled back")
    return stream_records(cn)[1:]


def test_a_rolled_back_write_overwritten_by_an_older_replica_is_put_back(regions):
    cn, sg = regions.china, regions.world
    records = rolled_back(cn)
    put(cn, "u1", now=NOW - 1_000, region="ap-southeast-1", name="replica")  # beats the rollback
    cn.sender.handle({"Records": records})

    assert cn.sender.last_counts["reinstated"] == 1
    stored = item(cn, "u1")
    assert stored["name"] == {"S": "rolled back"} and of_image(stored) > Version(NOW, "cn-north-1")
    # The put-back write is on the stream next, and is what the peer gets.
    cn.sender.handle({"Records": stream_records(cn)[-1:]})
    last = shipped_changes(sg)[-1]
    assert last.item["name"] == {"S": "rolled back"} and last.version == of_image(stored)


def test_a_later_local_write_is_lifted_above_what_the_rolled_back_write_saw(regions):
    cn = regions.china
    records = rolled_back(cn)
    put(cn, "u1", now=NOW - 4_000, name="later, still behind")
    cn.sender.handle({"Records": records})

    stored = item(cn, "u1")
    assert stored["name"] == {"S": "later, still behind"}
    assert of_image(stored) > Version(NOW, "cn-north-1")


def test_a_later_local_delete_is_shipped_above_what_the_rolled_back_write_saw(regions):
    cn, sg = regions.china, regions.world
    records = rolled_back(cn)
    cn.client("dynamodb").delete_item(TableName="user-cn", Key={"PK": {"S": "u1"}})
    shipped = len(shipped_changes(sg))
    cn.sender.handle({"Records": records})
    # Nothing shipped at this clock, which may run long after the delete: a version from now
    # would beat the peer's writes made since.
    assert cn.sender.last_counts["superseded"] == 1
    assert len(shipped_changes(sg)) == shipped

    # The delete's own record ships it, above what the rolled-back write saw.
    cn.sender.handle({"Records": stream_records(cn)[-1:]})
    delete = shipped_changes(sg)[-1]
    assert delete.op == wire.DELETE and delete.version > Version(NOW, "cn-north-1")
    # Delivered again, it is an echo of itself: the tombstone no longer awaits it.
    kid = wire.key_id("user-cn", {"PK": {"S": "u1"}})
    assert kid not in cn.sender.tombstones.read([kid])[1]
    cn.sender.handle({"Records": stream_records(cn)[-1:]})
    assert shipped_changes(sg)[-1].version == delete.version


def test_keys_still_unset_since_terraform_fail_the_batch_naming_the_tool(regions):
    cn = regions.china
    prefix = cn.region.names.peer_credentials_prefix
    for part in ("AccessKey", "SecretKey"):
        cn.client("ssm").put_parameter(
            Name=f"{prefix}{part}",
            Value="unset: run tools/peer_keys.py",
            Type="SecureString",
            Overwrite=True,
        )
    put(cn, "u1", now=NOW)
    with pytest.raises(Exception, match="placeholder Terraform created.*tools/peer_keys.py"):
        cn.sender.handle({"Records": stream_records(cn)})
