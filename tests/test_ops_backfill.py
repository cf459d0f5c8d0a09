"""ops.py backfill, against the emulator: existing items copied to the peer's mirror table.

Most tests use a fresh pair of tables the live pipeline doesn't watch (`orders-cn-N` in
cn-north-1 mirrored by `orders-sg-N` in ap-southeast-1), holding data that was there before
replication was switched on. The command-line tests backfill the live default tables while
the deployment's own replication flows.
"""

from __future__ import annotations

import io
import itertools
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from deployment.names import CHINA, GLOBAL
from deployment.tables import scan_all
from emulator import resources
from emulator.local_deployment import LocalDeployment
from replication import versions, wire
from replication.stamping import stamp
from replication.versions import now_ms
from tools import ops
from tools.operations import backfill
from tools.operations.backfill import Backfill, Page
from tools.operations.context import Context
from tools.operations.functions import apply_changes
from tools.operations.sides import OperationError, Side, open_side

ORDER_KEYS = (("PK", "S", "HASH"), ("SK", "N", "RANGE"))
BINARY_RANGE_KEYS = (("PK", "S", "HASH"), ("SK", "B", "RANGE"))
_pair_numbers = itertools.count()


@dataclass
class Pair:
    """A table in cn-north-1 and its mirror in ap-southeast-1, and Sides that know them."""

    source: Side
    target: Side
    table: str
    peer: str

    def source_items(self) -> dict[str, dict[str, Any]]:
        return items_of(self.source, self.table)

    def target_items(self) -> dict[str, dict[str, Any]]:
        return items_of(self.target, self.peer)

    def put(self, side: Side, item: dict[str, Any]) -> None:
        table = self.table if side is self.source else self.peer
        side.client("dynamodb").put_item(TableName=table, Item=item)

    def backfill(self, checkpoint: Path, **options: Any) -> Backfill:
        return Backfill(self.source, self.target, self.table, checkpoint_path=checkpoint, **options)


def create_table(deployment: LocalDeployment, region: str, table: str, key_schema) -> None:
    deployment.regions[region].client("dynamodb").create_table(
        TableName=table,
        KeySchema=[{"AttributeName": n, "KeyType": k} for n, _, k in key_schema],
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": t} for n, t, _ in key_schema],
        BillingMode="PAY_PER_REQUEST",
    )


def make_pair(
    deployment: LocalDeployment, key_schema=ORDER_KEYS, peer_key_schema=None, create=True
) -> Pair:
    number = next(_pair_numbers)
    table, peer = f"orders-cn-{number}", f"orders-sg-{number}"
    if create:
        create_table(deployment, CHINA, table, key_schema)
        create_table(deployment, GLOBAL, peer, peer_key_schema or key_schema)
    # Deployed as tables set in terraform.tfvars are: the replicators' configuration maps
    # them, and the tools find them there.
    resources.map_tables(deployment.regions[CHINA], {peer: table})
    resources.map_tables(deployment.regions[GLOBAL], {table: peer})
    url = deployment.endpoint_url
    return Pair(open_side(CHINA, None, url), open_side(GLOBAL, None, url), table, peer)


def order(i: int, key_type: str = "N") -> dict[str, Any]:
    """An order with every kind of value: binary, exact big numbers, sets, maps and lists."""
    sort_key = {"N": str(i)} if key_type == "N" else {"B": i.to_bytes(4, "big")}
    return {
        "PK": {"S": f"customer-{i % 10}"},
        "SK": sort_key,
        "receipt": {"B": bytes([i % 256, 0, 255, 10])},
        "total": {"N": "12345678901234567890.123456789"},
        "tags": {"SS": ["gift", f"batch-{i}"]},
        "sizes": {"NS": ["1", "2.5", str(i + 10)]},
        "chunks": {"BS": [b"\x00\x01", bytes([1, i % 256, 2])]},
        "lines": {"L": [{"M": {"sku": {"S": f"SKU-{i}"}, "quantity": {"N": "2"}}}]},
        "paid": {"BOOL": i % 2 == 0},
        "coupon": {"NULL": True},
    }


def seed(pair: Pair, count: int, unversioned_every: int = 3, key_type: str = "N") -> None:
    """Items written before replication: every third without a version, the rest stamped by
    either region (as if some had been copied from the peer long ago)."""
    base = now_ms() - 86_400_000
    for i in range(count):
        item = order(i, key_type)
        if not unversioned_every or i % unversioned_every:
            item = stamp(item, GLOBAL if i % 2 else CHINA, now=base + i, typed=True)
        pair.put(pair.source, item)


def items_of(side: Side, table: str) -> dict[str, dict[str, Any]]:
    ddb = side.client("dynamodb")
    keys = side.key_names(table)
    typed = (wire.item_from_client(item) for item in scan_all(ddb, table))
    return {wire.key_id("", {k: item[k] for k in keys}): item for item in typed}


def test_a_full_copy_makes_both_tables_identical(deployment, tmp_path):
    pair = make_pair(deployment)
    seed(pair, 60)
    started = now_ms()
    checkpoint = tmp_path / "orders.json"

    result = pair.backfill(checkpoint, segments=4, page_size=7).run()

    counts = result.counts
    assert (counts.scanned, counts.copied, counts.stamped) == (60, 60, 20)
    assert counts.stale == counts.failed == counts.poison == counts.vanished == 0
    assert result.finished and result.ok and result.segments_done == 4
    source, target = pair.source_items(), pair.target_items()
    assert len(source) == 60
    for key, item in source.items():
        assert target.get(key) == item, key
    stamped = [i for i in source.values() if int(i["SK"]["N"]) % 3 == 0]
    assert len(stamped) == 20
    for item in stamped:
        version = versions.of_image(item)
        assert version is not None and version.region == CHINA and version.timestamp >= started

    saved = json.loads(checkpoint.read_text())
    assert saved["table"] == pair.table and saved["peer_table"] == pair.peer
    assert saved["peer_region"] == GLOBAL and saved["total_segments"] == 4
    assert all(s["done"] and s["last_key"] is None for s in saved["segments"])
    assert sum(s["counts"]["scanned"] for s in saved["segments"]) == 60

    again = pair.backfill(checkpoint)
    assert again.finished and again.segments == 4
    rerun = again.run()
    assert rerun.already_finished and rerun.counts.scanned == 0 and rerun.total.copied == 60


def test_an_item_the_peer_holds_newer_is_left_alone(deployment, tmp_path):
    pair = make_pair(deployment)
    base = now_ms() - 60_000
    for i in range(10):
        pair.put(pair.source, stamp(order(i), CHINA, now=base, typed=True))
    newer = {**stamp(order(0), GLOBAL, now=base + 5_000, typed=True), "note": {"S": "peer's"}}
    older = {**stamp(order(1), GLOBAL, now=base - 5_000, typed=True), "note": {"S": "old"}}
    pair.put(pair.target, newer)
    pair.put(pair.target, older)

    result = pair.backfill(tmp_path / "ck.json", segments=2).run()

    assert (result.counts.copied, result.counts.stale, result.counts.failed) == (9, 1, 0)
    source, target = pair.source_items(), pair.target_items()
    newer_key = wire.key_id("", {"PK": newer["PK"], "SK": newer["SK"]})
    assert target[newer_key] == wire.item_from_client(newer)
    assert source[newer_key] != target[newer_key]  # the source keeps its own, older version
    for key, item in source.items():
        if key != newer_key:
            assert target[key] == item, key


def test_stamping_leaves_alone_an_item_that_changed_since_it_was_read(deployment, tmp_path):
    pair = make_pair(deployment)
    ddb = pair.source.client("dynamodb")
    keys = [{"PK": order(i)["PK"], "SK": order(i)["SK"]} for i in range(3)]
    for i in range(3):
        pair.put(pair.source, order(i))  # no version
    read = [ddb.get_item(TableName=pair.table, Key=key)["Item"] for key in keys]
    ddb.delete_item(TableName=pair.table, Key=keys[0])
    written = stamp(order(1), GLOBAL, now=now_ms() - 1_000, typed=True)
    pair.put(pair.source, written)
    run = pair.backfill(tmp_path / "ck.json")

    assert run.stamp_item(read[0]) == ("vanished", None, "")
    assert "Item" not in ddb.get_item(TableName=pair.table, Key=keys[0])  # not re-created
    outcome, item, _ = run.stamp_item(read[1])
    assert outcome == "versioned" and versions.of_image(item) == versions.of_image(written)
    outcome, item, _ = run.stamp_item(read[2])
    version = versions.of_image(item)
    assert outcome == "stamped" and version is not None and version.region == CHINA
    assert item["receipt"] == read[2]["receipt"]  # the rest of the item untouched
    outcome, again, _ = run.stamp_item(read[2])  # read before it was stamped
    assert outcome == "versioned" and versions.of_image(again) == version


class Interrupted(Exception):
    pass


def test_an_interrupted_backfill_resumes_where_its_segments_stopped(deployment, tmp_path):
    # Binary sort keys: each segment's position is kept as a typed key in the JSON file.
    pair = make_pair(deployment, BINARY_RANGE_KEYS)
    seed(pair, 90, key_type="B")
    checkpoint = tmp_path / "resume.json"

    def interrupt(page: Page) -> None:
        if page.segment_done:
            raise Interrupted  # as if killed right after the first segment finished

    with pytest.raises(Interrupted):
        pair.backfill(checkpoint, segments=3, page_size=4).run(on_page=interrupt)

    saved = json.loads(checkpoint.read_text())
    done_before = {i for i, s in enumerate(saved["segments"]) if s["done"]}
    scanned_before = sum(s["counts"]["scanned"] for s in saved["segments"])
    assert 1 <= len(done_before) < 3
    assert 0 < len(pair.target_items()) < 90
    assert any(s["last_key"] and "B" in s["last_key"]["SK"] for s in saved["segments"])

    pages: list[Page] = []
    result = pair.backfill(checkpoint).run(on_page=pages.append)  # segments: the checkpoint's

    assert result.finished and result.ok and result.resumed_done == len(done_before)
    assert not {page.segment for page in pages} & done_before
    assert result.counts.scanned == 90 - scanned_before  # nothing read twice
    assert result.total.scanned == 90 and result.total.copied == 90
    source, target = pair.source_items(), pair.target_items()
    assert len(source) == 90
    for key, item in source.items():
        assert target.get(key) == item, key


def test_a_checkpoint_of_another_backfill_is_refused_unless_restarted(deployment, tmp_path):
    pair, other = make_pair(deployment), make_pair(deployment)
    seed(pair, 5)
    checkpoint = tmp_path / "ck.json"
    pair.backfill(checkpoint, segments=2).run()

    with pytest.raises(OperationError, match=r"in 2 segments, not .* in 3: pass --restart"):
        pair.backfill(checkpoint, segments=3)
    with pytest.raises(OperationError, match=f"is for {pair.table} .* not {other.table}"):
        other.backfill(checkpoint)
    garbage = tmp_path / "garbage.json"
    garbage.write_text('{"kind": "something else"}')
    with pytest.raises(OperationError, match="unreadable .*not a backfill checkpoint"):
        pair.backfill(garbage)

    unwritable = pair.backfill(tmp_path / "no-such-directory" / "ck.json")
    with pytest.raises(OperationError, match="cannot write checkpoint .*no-such-directory"):
        unwritable.run()

    restarted = pair.backfill(checkpoint, segments=3, restart=True).run()
    assert restarted.finished and restarted.segments == 3
    assert (restarted.counts.scanned, restarted.counts.copied, restarted.counts.stale) == (5, 0, 5)
    assert json.loads(checkpoint.read_text())["total_segments"] == 3


def test_a_dry_run_writes_nothing(deployment, tmp_path):
    pair = make_pair(deployment)
    seed(pair, 12)
    before = pair.source_items()
    checkpoint = tmp_path / "dry.json"

    result = pair.backfill(checkpoint, dry_run=True, page_size=5).run()

    assert (result.counts.scanned, result.counts.copied, result.counts.stamped) == (12, 12, 4)
    assert result.dry_run and result.checkpoint is None
    assert pair.source_items() == before
    assert pair.target_items() == {}
    assert not checkpoint.exists()


def test_the_rate_limits_items_per_second_across_segments(deployment, tmp_path):
    pair = make_pair(deployment)
    seed(pair, 30, unversioned_every=0)
    started = time.monotonic()

    result = pair.backfill(tmp_path / "rate.json", segments=3, rate=20).run()

    elapsed = time.monotonic() - started
    assert result.counts.copied == 30
    # A bucket of 1 at 20 items/s lets 30 items through in no less than 29/20 s.
    assert elapsed >= 1.3, elapsed
    assert result.items_per_second <= 23


def test_a_page_that_keeps_failing_stops_its_segment_until_the_next_run(
    deployment, tmp_path, monkeypatch
):
    pair = make_pair(deployment)
    seed(pair, 20)
    checkpoint = tmp_path / "failing.json"
    attempts = []

    def peer_refuses(replicator, changes):
        attempts.append(len(changes))
        return {"failed": len(changes)}

    def command(ctx: Context) -> int:
        argv = ["backfill", "--region", CHINA, "--table", pair.table, "--segments", "2"]
        args = ops.build_parser().parse_args([*argv, "--checkpoint", str(checkpoint)])
        return backfill.main(args, ctx)

    out = io.StringIO()
    monkeypatch.setattr(backfill, "apply_changes", peer_refuses)
    assert command(Context(pair.source, pair.target, quiet=True, out=out)) == 1
    assert len(attempts) == 2 * backfill.APPLY_ATTEMPTS  # each segment's first page, retried
    text = out.getvalue()
    assert ": unfinished" in text and "segment 0 stopped" in text and "segment 1 stopped" in text
    assert pair.target_items() == {}
    saved = json.loads(checkpoint.read_text())["segments"]
    assert [(s["done"], s["last_key"], s["counts"]["scanned"]) for s in saved] == [
        (False, None, 0),
        (False, None, 0),
    ]

    monkeypatch.setattr(backfill, "apply_changes", apply_changes)
    out = io.StringIO()
    assert command(Context(pair.source, pair.target, quiet=True, out=out)) == 0
    assert ": finished" in out.getvalue()
    assert pair.source_items() == pair.target_items()
    assert len(pair.target_items()) == 20


def test_tables_that_cannot_mirror_each_other_are_refused(deployment, tmp_path):
    mismatched = make_pair(deployment, ORDER_KEYS, peer_key_schema=(("PK", "S", "HASH"),))
    with pytest.raises(OperationError, match=r"keyed by PK \(S, hash\), SK \(N, range\) but"):
        mismatched.backfill(tmp_path / "ck.json")
    missing = make_pair(deployment, create=False)
    with pytest.raises(OperationError, match=f"cn-north-1 has no table {missing.table}"):
        missing.backfill(tmp_path / "ck.json")


def test_the_command_backfills_a_table_set_in_tfvars_not_in_defaults_json(
    deployment, tmp_path, monkeypatch, capsys
):
    # The tables are known only to the deployed replicators' TABLE_MAP, as they are when
    # terraform.tfvars names them: ops.py reads the deployment, not defaults.json.
    monkeypatch.chdir(tmp_path)
    pair = make_pair(deployment)
    for i in range(7):
        pair.put(pair.source, stamp(order(i), CHINA, typed=True))
    url = deployment.endpoint_url
    argv = ["backfill", "--region", CHINA, "--table", pair.table, "--json", "--quiet"]
    assert ops.main([*argv, "--endpoint-url", url, "--peer-endpoint-url", url]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["table"], summary["peer_table"]) == (pair.table, pair.peer)
    assert pair.target_items() == pair.source_items() and len(pair.source_items()) == 7


def test_the_command_backfills_the_live_table_while_replication_flows(
    deployment, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    china = deployment.regions[CHINA]
    table = china.names.tables[0]
    ddb = china.client("dynamodb")
    for i in range(25):
        item = {"PK": {"S": f"backfill-cli-{i}"}, "n": {"N": str(i)}, "raw": {"B": b"\x00\xff"}}
        # Some unstamped: the live sender and the backfill race to stamp them.
        ddb.put_item(TableName=table, Item=item if i % 5 == 0 else stamp(item, CHINA, typed=True))
    url = deployment.endpoint_url
    command = ["backfill", "--region", CHINA, "--endpoint-url", url, "--peer-endpoint-url", url]
    make_pair(deployment)  # another replicated table: with several, the command asks which
    assert ops.main([*command, "--quiet"]) == 1
    assert "choose one with --table" in capsys.readouterr().err
    command += ["--table", table]

    assert ops.main([*command, "--dry-run", "--quiet"]) == 0
    assert "dry run, nothing written" in capsys.readouterr().out
    assert not (tmp_path / f".backfill-{CHINA}-{table}.json").exists()

    code = ops.main([*command, "--segments", "2", "--json", "--quiet"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0, summary
    assert summary["status"] == "finished" and summary["segments_done"] == 2
    assert summary["peer_table"] == deployment.regions[GLOBAL].names.tables[0]
    assert summary["scanned"] >= 25 and summary["failed"] == summary["poison"] == 0
    handled = summary["copied"] + summary["stale"] + summary["vanished"]
    assert handled == summary["scanned"]
    assert (tmp_path / f".backfill-{CHINA}-{table}.json").exists()
    assert deployment.wait_until_converged(60), deployment.divergent_keys()[:5]

    assert ops.main([*command, "--quiet"]) == 0
    assert "already finished" in capsys.readouterr().out

    assert ops.main([*command, "--segments", "3", "--quiet"]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("ops.py: error: checkpoint") and "--restart" in error
    assert "\n" not in error
