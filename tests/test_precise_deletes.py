"""A delete against an update made just before it in the other region, with the tables captured
through DynamoDB Streams, whose records carry whole seconds: a plain delete's version is that
second (or its item's old version plus a millisecond), so an update stamped later within the
second outlives it; a stamped delete (stamping.stamped_delete) carries its own precise version
and wins. (With kinesis capture, the record's microseconds make a plain delete precise: see
tests/test_capture_emulator.py.)"""

from __future__ import annotations

import pytest

from emulator.stepped import TwoRegions
from replication.stamping import stamp, stamped_delete
from replication.versions import now_ms
from tests.helpers import item, kinesis_records, stream_records

KEY = {"PK": {"S": "u1"}}


def replicate(regions: TwoRegions, done: dict[str, int]) -> None:
    """Every change of both regions shipped and applied, the senders' own writes included;
    `done` counts, per stream, the records already handed on."""
    nodes = list(regions.nodes.values())
    paths = [(f"{n.name} table", n, stream_records, n.sender) for n in nodes] + [
        (f"{n.name} replication", n, kinesis_records, n.replicator) for n in nodes
    ]
    for _ in range(4):
        for stream, node, read, function in paths:
            records = read(node)
            if records[done.get(stream, 0) :]:
                function.handle({"Records": records[done.get(stream, 0) :]})
            done[stream] = len(records)


@pytest.mark.parametrize("stamped", [False, True], ids=["plain delete", "stamped delete"])
def test_a_delete_two_milliseconds_after_an_update_in_the_other_region(aws, stamped):
    regions = TwoRegions()
    cn, sg = regions.china, regions.world
    done: dict[str, int] = {}
    cn.client("dynamodb").put_item(
        TableName=cn.table,
        Item=stamp({**KEY, "n": {"S": "first"}}, cn.name, now_ms() - 5_000, True),
    )
    replicate(regions, done)
    # The update is stamped half a second ahead, so the delete's stream record (whole seconds,
    # taken now) is older than it; the delete comes 2 ms after the update.
    update_at = now_ms() + 500
    sg.client("dynamodb").put_item(
        TableName=sg.table, Item=stamp({**KEY, "n": {"S": "updated"}}, sg.name, update_at, True)
    )
    ddb = cn.client("dynamodb")
    if stamped:
        stamp_it, delete_it = stamped_delete(cn.name, "PK", now=update_at + 2)
        ddb.update_item(TableName=cn.table, Key=KEY, **stamp_it)
        ddb.delete_item(TableName=cn.table, Key=KEY, **delete_it)
    else:
        ddb.delete_item(TableName=cn.table, Key=KEY)
    replicate(regions, done)

    found = {node.name: item(node, "u1") for node in (cn, sg)}
    if stamped:
        assert found == {cn.name: None, sg.name: None}
    else:
        # The update wins in both regions: the delete is undone (the resurrection).
        assert found[cn.name] is not None and found[cn.name] == found[sg.name]
        assert found[cn.name]["n"] == {"S": "updated"}


def test_a_stamped_delete_of_an_item_written_meanwhile_is_refused(aws):
    regions = TwoRegions()
    cn = regions.china
    ddb = cn.client("dynamodb")
    ddb.put_item(TableName=cn.table, Item=stamp({**KEY, "n": {"S": "a"}}, cn.name, now_ms(), True))
    stamp_it, delete_it = stamped_delete(cn.name, "PK")
    ddb.update_item(TableName=cn.table, Key=KEY, **stamp_it)
    ddb.put_item(
        TableName=cn.table, Item=stamp({**KEY, "n": {"S": "b"}}, cn.name, now_ms() + 9, True)
    )
    with pytest.raises(ddb.exceptions.ConditionalCheckFailedException):
        ddb.delete_item(TableName=cn.table, Key=KEY, **delete_it)
    # And a stamp never creates an item that isn't there.
    ddb.delete_item(TableName=cn.table, Key=KEY)
    with pytest.raises(ddb.exceptions.ConditionalCheckFailedException):
        ddb.update_item(TableName=cn.table, Key=KEY, **stamp_it)
