"""A rolling upgrade from release 0.1.0, one region at a time (docs/upgrading.md): what each
side's replicator makes of the other side's sender, with 0.1.0's own reader and writer
(tests/compat/release_0_1_0), not a description of them."""

from __future__ import annotations

import dataclasses

from emulator.resources import SIGNING_KEYS
from replication import wire
from replication.clients import Clients
from replication.inbound import Replicator
from replication.versions import Version, now_ms
from tests.compat.release_0_1_0 import versions as old_versions
from tests.compat.release_0_1_0 import wire as old_wire
from tests.helpers import item, kinesis_event, queue_messages

NOW = (now_ms() // 1000 - 3600) * 1000  # an hour ago: inside every age and skew limit


def a_change(key: str = "u1", **attrs: str) -> wire.Change:
    version = Version(NOW, "cn-north-1")
    typed = {
        "PK": {"S": key},
        **{name: {"S": value} for name, value in attrs.items()},
        **version.to_typed(),
    }
    return wire.Change(
        table="user-cn",
        op=wire.PUT,
        keys={"PK": {"S": key}},
        version=version,
        origin="cn-north-1",
        stream_ts_ms=NOW,
        item=typed,
        event_id="e1",
    )


def test_a_signed_change_of_this_release_reads_the_same_in_the_previous_one():
    # Upgraded sender, old replicator: the signature is a member 0.1.0 doesn't know, and
    # ignores; it applies the change as before (without checking it).
    change = a_change(name="Li")
    old = old_wire.decode(wire.pack(change, SIGNING_KEYS))
    assert (old.table, old.op, old.keys, old.item, old.origin, old.stream_ts_ms) == (
        change.table,
        change.op,
        change.keys,
        change.item,
        change.origin,
        change.stream_ts_ms,
    )
    assert old.version == old_versions.Version(NOW, "cn-north-1")


def test_what_the_previous_release_cannot_read_is_refused_there_not_lost():
    # A heartbeat, and a change compressed to fit a record, are new: 0.1.0 reports them as
    # poison (redrive them with --retry-poison once it is upgraded), and reads the rest.
    for data in (
        wire.pack(wire.heartbeat("cn-north-1", NOW), SIGNING_KEYS),
        b"\x1f\x8b" + wire.pack(a_change(), SIGNING_KEYS)[2:],
    ):
        try:
            old_wire.decode(data)
        except old_wire.MalformedChange:
            continue
        raise AssertionError(f"0.1.0 read {data[:40]!r}")


def test_a_change_from_the_previous_release_waits_for_accept_unsigned_changes(regions):
    # Old sender, upgraded replicator: 0.1.0 signs nothing. Refused (poison, with the reason,
    # redrivable) unless the upgraded side accepts unsigned changes for the upgrade's length.
    world = regions.world
    unsigned = old_wire.encode(_as_old(a_change(name="from 0.1.0")))
    world.replicator.handle(kinesis_event(world, [unsigned], signed=False))
    [report] = queue_messages(world, world.region.replicator_queue_url)
    assert "unsigned" in report["reason"] and item(world, "u1") is None

    settings = dataclasses.replace(world.replicator.settings, accept_unsigned_changes=True)
    upgrading = Replicator(settings, clients=Clients(world.name))
    upgrading.handle(kinesis_event(world, [unsigned], signed=False))
    assert upgrading.last_counts["unsigned_accepted"] == 1
    assert item(world, "u1")["name"] == {"S": "from 0.1.0"}


def _as_old(change: wire.Change) -> old_wire.Change:
    version = old_versions.Version(change.version.timestamp, change.version.region)
    fields = {f.name: getattr(change, f.name) for f in dataclasses.fields(old_wire.Change)}
    return old_wire.Change(**{**fields, "version": version})
