"""Trust at the edges: a change must be signed by the shared key ring, come from the peer, carry
its item's own version and a believable time; a clock gone wrong can't freeze an item."""

from __future__ import annotations

import base64
import dataclasses
import json

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from emulator.resources import SIGNING_KEYS
from replication import outbound, wire
from replication.signing import UNKNOWN_KEY_REREAD_SECONDS, SigningKeys
from replication.versions import Version, now_ms, of_image
from tests.helpers import item, kinesis_event, put, queue_messages, shipped_changes, stream_records

CN, SG = "cn-north-1", "ap-southeast-1"
PAST = 1_780_000_000_000
YEAR_MS = 365 * 86400 * 1000


def change(key="u1", ts=None, region=SG, origin=None, **attrs) -> wire.Change:
    keys = {"PK": {"S": key}}
    version = Version(ts if ts is not None else now_ms() - 1_000, region)
    body = {**keys, **{k: {"S": str(v)} for k, v in attrs.items()}, **version.to_typed()}
    return wire.Change(
        table="user-sg",
        op=wire.PUT,
        keys=keys,
        version=version,
        origin=origin or region,
        stream_ts_ms=now_ms() - 1_000,
        item=body,
    )


def forged_records(cn, payloads: list[bytes]) -> dict:
    """A good change before and after each forged payload, as one batch."""
    return kinesis_event(cn, [change(key="before"), *payloads, change(key="after")])


def other_ring() -> SigningKeys:
    return SigningKeys.generate("attacker")


# -- forgeries: each is isolated, reported with its reason, counted; its neighbours apply ----

FORGERIES = {
    "unsigned": (lambda: wire.encode(change(name="forged")), "not signed"),
    "signature": (
        lambda: wire.seal(wire.encode(change(name="forged")), other_ring()),
        "which the ring lacks",
    ),
    "tampered": (
        # Signed, then the item's content changed: the MAC no longer matches.
        lambda: wire.seal(wire.encode(change(name="signed")), SIGNING_KEYS).replace(
            b'"name":{"S":"signed"}', b'"name":{"S":"forged"}'
        ),
        "does not match",
    ),
    "mangled": (
        lambda: wire.seal(wire.encode(change(name="x")), SIGNING_KEYS).replace(
            b',"sig":', b', "sig": '
        ),
        "last member",
    ),
    "origin": (
        lambda: wire.seal(wire.encode(change(origin="us-east-1")), SIGNING_KEYS),
        "only ap-southeast-1 sends here",
    ),
    "loop": (
        lambda: wire.seal(wire.encode(change(region=CN)), SIGNING_KEYS),
        "a loop",
    ),
    "version": (
        # The item says one version, the change another (newer): the change's would win.
        lambda: wire.seal(
            wire.encode(dataclasses.replace(change(), version=Version(now_ms(), SG))),
            SIGNING_KEYS,
        ),
        "disagrees with the item's own version",
    ),
    "future": (
        lambda: wire.seal(wire.encode(change(ts=now_ms() + 10 * YEAR_MS)), SIGNING_KEYS),
        "ahead of this clock",
    ),
}
METRIC = {
    "unsigned": "unsigned",
    "signature": "signature",
    "tampered": "signature",
    "mangled": "signature",
    "origin": "origin",
    "loop": "origin",
    "version": "version",
    "future": "future",
}


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_a_forged_change_is_isolated_with_its_reason_and_counted(regions, forgery):
    cn = regions.china
    payload, reason = FORGERIES[forgery]
    response = cn.replicator.handle(forged_records(cn, [payload()]))

    assert response == {"batchItemFailures": []}
    assert item(cn, "before") is not None and item(cn, "after") is not None
    assert item(cn, "u1") is None
    [report] = queue_messages(cn, cn.region.replicator_queue_url)
    assert report["kind"] == "poison-record" and reason in report["reason"], report["reason"]
    counts = cn.replicator.last_counts
    assert counts["replicated"] == 2 and counts["poison"] == 1
    assert counts[METRIC[forgery]] == 1


def test_a_writer_key_alone_cannot_freeze_an_item(regions):
    """The attack the writer key allowed: a far-future change put straight into the stream.
    It is refused, and the peer's later, real write still applies."""
    cn = regions.china
    attack = wire.encode(change(ts=now_ms() + 10 * YEAR_MS, name="attacker"))
    cn.replicator.handle(kinesis_event(cn, [attack]))
    assert item(cn, "u1") is None
    cn.replicator.handle(kinesis_event(cn, [change(name="real")]))
    assert item(cn, "u1")["name"] == {"S": "real"}


def test_a_change_within_the_allowed_skew_applies(regions):
    cn = regions.china
    cn.replicator.handle(kinesis_event(cn, [change(ts=now_ms() + 240_000, name="ahead")]))
    assert item(cn, "u1")["name"] == {"S": "ahead"}


def test_unsigned_changes_are_let_in_only_while_upgrading(regions, monkeypatch):
    cn = regions.china
    settings = cn.replicator.settings
    upgrading = dataclasses.replace(settings, accept_unsigned_changes=True)
    monkeypatch.setattr(cn.replicator, "settings", upgrading)
    cn.replicator.handle(kinesis_event(cn, [change(name="old sender")], signed=False))
    assert item(cn, "u1")["name"] == {"S": "old sender"}
    assert cn.replicator.last_counts["unsigned_accepted"] == 1
    # A wrong signature is still refused: only its absence is tolerated.
    cn.replicator.handle(forged_records(cn, [FORGERIES["signature"][0]()]))
    assert queue_messages(cn, cn.region.replicator_queue_url)[0]["reason"].startswith(
        "rejected (signature)"
    )


def test_a_forged_heartbeat_is_refused(regions):
    cn = regions.china
    forged = wire.encode(wire.heartbeat(SG, now_ms()))
    cn.replicator.handle(kinesis_event(cn, [forged]))
    assert cn.replicator.last_counts["unsigned"] == 1
    stats = cn.client("dynamodb").get_item(
        TableName="replicator_stats", Key={"PK": {"S": f"heartbeat#{SG}"}}
    )
    assert "Item" not in stats


# -- rotating the signing keys loses no change ----------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def store_ring(node, ring: SigningKeys) -> None:
    node.client("ssm").put_parameter(
        Name=node.region.names.signing_keys_parameter,
        Value=ring.to_json(),
        Type="SecureString",
        Overwrite=True,
    )


def test_rotation_in_the_tools_order_loses_no_change(regions):
    """tools/signing_keys.py rotate: add the new key in both regions, wait out the functions'
    cache, make it current in both. Changes signed before, during and after all apply."""
    cn, sg = regions.china, regions.world
    clock = Clock()
    for node in (cn, sg):
        node.sender.signing._clock = node.replicator.signing._clock = clock
    ttl = cn.replicator.signing._ttl

    def ship_and_apply(key: str) -> str:
        """Write in ap-southeast-1, ship, apply in cn-north-1; the signing key's ID."""
        put(sg, key, now=now_ms(), name=key)
        sg.sender.handle({"Records": stream_records(sg)[-1:]})
        [record] = _kinesis(cn)[-1:]
        cn.replicator.handle({"Records": [record]})
        assert item(cn, key) is not None, f"{key} was not applied"
        return wire.unpack(base64.b64decode(record["kinesis"]["data"])).signature.key_id

    assert ship_and_apply("before") == "emulator"
    new = SigningKeys.generate("k-new")
    step1 = SIGNING_KEYS.with_next("k-new", new.keys["k-new"])
    for node in (cn, sg):
        store_ring(node, step1)
    clock.now += 10
    assert ship_and_apply("after-step-1") == "emulator"  # still signs with the old key
    clock.now += ttl + 30  # the tool waits out the cache
    step2 = step1.promoted("k-new")
    store_ring(sg, step2)  # one region first: its sender signs with the new key at once
    # Read again only once its cache expires: until then it signs with the old key, which
    # both rings still hold.
    clock.now += ttl
    assert ship_and_apply("promoted-in-one-region") == "k-new"
    store_ring(cn, step2)
    assert ship_and_apply("promoted-in-both") == "k-new"
    assert queue_messages(cn, cn.region.replicator_queue_url) == []


def _kinesis(node):
    from tests.helpers import kinesis_records

    return kinesis_records(node)


def test_a_key_the_replicator_has_not_seen_yet_is_read_again_early(regions):
    cn = regions.china
    clock = Clock()
    cn.replicator.signing._clock = clock
    cn.replicator.handle(kinesis_event(cn, [change(key="warm")]))  # caches the ring
    new = SIGNING_KEYS.with_next("k-new", b"n" * 32).promoted("k-new")
    store_ring(cn, new)
    clock.now += UNKNOWN_KEY_REREAD_SECONDS
    signed_new = wire.seal(wire.encode(change(key="new")), new)
    cn.replicator.handle(kinesis_event(cn, [signed_new]))
    assert item(cn, "new") is not None


def test_unknown_keys_do_not_hammer_parameter_store(regions):
    cn = regions.china
    clock = Clock()
    cn.replicator.signing._clock = clock
    cn.replicator.handle(kinesis_event(cn, [change(key="warm")]))
    reads = cn.replicator.signing.reads
    forged = [wire.seal(wire.encode(change(key=f"f{i}")), other_ring()) for i in range(20)]
    cn.replicator.handle(kinesis_event(cn, forged))
    assert cn.replicator.signing.reads == reads  # within 30 s of the last read: none
    assert cn.replicator.last_counts["signature"] == 20


def test_a_missing_key_ring_fails_the_batch_naming_the_tool(regions):
    sg = regions.world
    sg.client("ssm").delete_parameter(Name=sg.region.names.signing_keys_parameter)
    put(sg, "u1", now=now_ms())
    with pytest.raises(BatchProcessingError):  # retried, not poison: our setup is at fault
        sg.sender.handle({"Records": stream_records(sg)})
    assert queue_messages(sg, sg.region.sender_queue_url) == []
    assert sg.sender.last_counts["failed"] == 1 and "shipped" not in sg.sender.last_counts
    with pytest.raises(Exception, match="tools/signing_keys.py init"):
        sg.sender.signing.get()


# -- an application clock far ahead ---------------------------------------------------------


def test_a_write_stamped_years_ahead_is_stamped_afresh_and_converges(regions):
    cn, sg = regions.china, regions.world
    put(cn, "u1", now=now_ms() + 10 * YEAR_MS, name="fast clock")
    cn.sender.handle({"Records": stream_records(cn)})
    assert cn.sender.last_counts["future_clamped"] == 1
    assert shipped_changes(sg) == []  # the stamping write is what ships
    stamped = of_image(item(cn, "u1"))
    assert stamped.region == CN and abs(stamped.timestamp - now_ms()) < 60_000

    cn.sender.handle({"Records": stream_records(cn)[1:]})
    sg.replicator.handle({"Records": _kinesis(sg)})
    assert item(sg, "u1") == item(cn, "u1")
    # The peer's next write wins, as it should: nothing is frozen.
    put(sg, "u1", now=now_ms() + 1, name="later")
    sg.sender.handle({"Records": stream_records(sg)[-1:]})
    cn.replicator.handle({"Records": _kinesis(cn)})
    assert item(cn, "u1")["name"] == {"S": "later"}


def test_an_item_frozen_before_this_release_thaws_on_its_next_change(regions):
    """An item that already holds a far-future version (written before versions were checked)
    is overwritten by the next real change from the peer, and its deletes are believable."""
    cn = regions.china
    put(cn, "u1", now=now_ms() + 10 * YEAR_MS, region=SG, name="frozen")
    cn.replicator.handle(kinesis_event(cn, [change(name="thawed")]))
    assert item(cn, "u1")["name"] == {"S": "thawed"}


def test_a_delete_of_a_frozen_item_gets_a_believable_version(regions):
    cn, sg = regions.china, regions.world
    put(cn, "u1", now=now_ms() + 10 * YEAR_MS, region=SG, name="frozen")
    cn.client("dynamodb").delete_item(TableName="user-cn", Key={"PK": {"S": "u1"}})
    cn.sender.handle({"Records": stream_records(cn)})
    [delete] = [c for c in shipped_changes(sg) if c.op == wire.DELETE]
    assert delete.version.timestamp < now_ms() + 60_000
    sg.replicator.handle({"Records": _kinesis(sg)})
    assert sg.replicator.last_counts.get("poison", 0) == 0


def test_a_version_at_ten_to_the_38_is_clamped_not_bumped_past_38_digits(regions):
    """moto stores any number; DynamoDB refuses more than 38 significant digits, imitated
    here. 10**38 + 1 would be refused; the clamp never asks for it."""
    from tests.aws_limits import imitate_limits

    cn = regions.china
    imitate_limits(cn.sender)
    cn.client("dynamodb").put_item(
        TableName="user-cn",
        Item={
            "PK": {"S": "u1"},
            "last_update_timestamp": {"N": str(10**38)},
            "last_updater_region": {"S": CN},
        },
    )
    response = cn.sender.handle({"Records": stream_records(cn)})
    assert response == {"batchItemFailures": []}
    assert cn.sender.last_counts["future_clamped"] == 1
    assert of_image(item(cn, "u1")).timestamp < now_ms() + 60_000


def test_records_keep_their_signature_through_the_real_path(regions):
    cn, sg = regions.china, regions.world
    put(cn, "u1", now=now_ms(), name="Li")
    cn.sender.handle({"Records": stream_records(cn)})
    [record] = _kinesis(sg)
    received = wire.unpack(base64.b64decode(record["kinesis"]["data"]))
    assert received.signature is not None and received.signature.key_id == "emulator"
    assert json.loads(received.payload)["op"] == "PUT"


def test_the_key_ring_never_shows_its_secrets():
    assert SIGNING_KEYS.keys["emulator"].hex() not in repr(SIGNING_KEYS)
    assert base64.b64encode(SIGNING_KEYS.keys["emulator"]).decode() not in repr(SIGNING_KEYS)


# -- heartbeats -----------------------------------------------------------------------------


def heartbeat_row(node, origin: str) -> dict | None:
    return (
        node.client("dynamodb")
        .get_item(TableName="replicator_stats", Key={"PK": {"S": f"heartbeat#{origin}"}})
        .get("Item")
    )


def test_a_heartbeat_crosses_the_border_and_is_recorded(regions, capsys):
    cn, sg = regions.china, regions.world
    answer = cn.sender.handle(outbound.HEARTBEAT_EVENT)
    assert cn.sender.last_counts["heartbeat_sent"] == 1
    sent_at = answer["heartbeat"]["timestamp"]

    [record] = _kinesis(sg)
    sg.replicator.handle({"Records": [record]})
    assert sg.replicator.last_counts["heartbeat"] == 1
    row = heartbeat_row(sg, CN)
    assert int(row["sent_at"]["N"]) == sent_at
    assert int(row["received_at"]["N"]) >= sent_at
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert any("HeartbeatAge" in line for line in emf)
    # A redelivered (older) heartbeat doesn't move the record back.
    cn.sender.handle(outbound.HEARTBEAT_EVENT)
    newer = _kinesis(sg)[-1]
    sg.replicator.handle({"Records": [newer]})
    sg.replicator.handle({"Records": [record]})
    assert int(heartbeat_row(sg, CN)["sent_at"]["N"]) > sent_at


def test_a_heartbeat_that_cannot_cross_fails_the_invocation(regions, monkeypatch):
    cn = regions.china
    monkeypatch.setattr(cn.sender, "pause", lambda attempt: None)

    def refused(records):
        return {"FailedRecordCount": 1, "Records": [{"ErrorCode": "InternalFailure"}]}

    monkeypatch.setattr(cn.sender.peer, "put_records", refused)
    with pytest.raises(outbound.ShipError):
        cn.sender.handle(outbound.HEARTBEAT_EVENT)
    assert "heartbeat_sent" not in cn.sender.last_counts


# -- found by attacking the change (a red-team review) --------------------------------------


def test_a_write_stamped_with_a_third_region_is_shipped_not_taken_for_an_echo(regions):
    """Only the peer's replicator writes here under another region's name; a write stamped
    `us-east-1` (or a typo) is an application's, and was silently dropped as an echo."""
    cn, sg = regions.china, regions.world
    put(cn, "u1", now=now_ms(), region="us-east-1", name="app write")
    cn.sender.handle({"Records": stream_records(cn)})
    assert cn.sender.last_counts.get("echo", 0) == 0
    assert cn.sender.last_counts["restamped"] == 1
    cn.sender.handle({"Records": stream_records(cn)[1:]})
    sg.replicator.handle({"Records": _kinesis(sg)})
    assert item(sg, "u1")["name"] == {"S": "app write"}
    assert of_image(item(sg, "u1")).region == CN


@pytest.mark.parametrize("stamped_by", ["zzz-top-1", CN])
def test_a_version_its_origin_did_not_stamp_is_refused(regions, stamped_by):
    """A sender ships only versions it stamped; a signed change claiming another region's
    stamp would win every same-millisecond tie, or echo back as this region's own write."""
    cn = regions.china
    forged = dataclasses.replace(change(region=stamped_by, name="x"), origin=SG)
    cn.replicator.handle(forged_records(cn, [wire.seal(wire.encode(forged), SIGNING_KEYS)]))
    assert item(cn, "u1") is None
    [report] = queue_messages(cn, cn.region.replicator_queue_url)
    assert "was not stamped by its origin" in report["reason"]


def test_a_replayed_change_older_than_the_tombstones_is_refused(regions):
    """A captured signed record replayed once its item's tombstone has expired would bring the
    deleted item back; nothing that old is applied (verify --repair settles such an item)."""
    cn = regions.china
    month_ms = 30 * 86400 * 1000
    old = dataclasses.replace(
        change(key="gone", ts=now_ms() - month_ms, name="deleted a month ago"),
        stream_ts_ms=now_ms() - month_ms,
    )
    cn.replicator.handle(kinesis_event(cn, [old]))
    assert item(cn, "gone") is None
    [report] = queue_messages(cn, cn.region.replicator_queue_url)
    assert "older than the tombstones kept (14 days)" in report["reason"]
    assert cn.replicator.last_counts["version"] == 1
