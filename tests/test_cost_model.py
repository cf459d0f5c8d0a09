"""The cost model: its arithmetic on a made-up price table, the shipped price table's
completeness, and the page's table, which must be what the script prints."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("cost_model", ROOT / "benchmarks/cost_model.py")
cost_model = importlib.util.module_from_spec(_spec)
sys.modules["cost_model"] = cost_model  # dataclasses look their module up there
_spec.loader.exec_module(cost_model)


def _entry(price, quantity=1):
    return {
        "unit": "u",
        "quantity": quantity,
        "price": price,
        "currency": "XXX",
        "read_on": "2026-12-01",
        "source": "test",
        "verified": True,
    }


def test_cost_is_usage_over_quantity_times_price():
    meters = {"writes": _entry(2.0, 1_000_000), "hours": _entry(0.5), "free": _entry(0.0)}
    result = cost_model.cost(meters, {"writes": 3.0, "hours": 10, "free": 7}, scale=1_000_000)
    # 3 writes per change x 1M changes = 3M units at 2.0 per 1M; 10 hours x 1M x 0.5.
    assert result["meters"] == {"writes": 6.0, "hours": 5_000_000.0, "free": 0.0}
    assert result["total"] == 5_000_006.0


def test_a_meter_missing_from_the_table_is_named():
    with pytest.raises(cost_model.MissingPrice, match="'kms_request'"):
        cost_model.cost({}, {"kms_request": 1})


def _tiny_prices():
    """Every meter the model uses at 1 per unit, except those set below."""
    meters = {m: _entry(1.0) for m in cost_model.meters_used(cost_model.Assumptions())}
    meters["dynamodb_write_request_unit"] = _entry(10.0, 1_000_000)
    meters["dynamodb_read_request_unit"] = _entry(2.0, 1_000_000)
    meters["kinesis_on_demand_stream_hour"] = _entry(0.1)
    meters["dynamodb_replicated_write_request_unit"] = _entry(4.0, 1_000_000)
    region = {"currency": "XXX", "meters": meters}
    return {"read_on": "2026-12-01", "regions": {r: region for r in cost_model.REGIONS}}


def test_per_million_applied_on_a_tiny_table():
    a = cost_model.Assumptions(item_bytes=1024, batch_size=100, new_item_fraction=1.0)
    r = cost_model.region_costs(_tiny_prices(), "ap-southeast-1", a)
    applied = r["per_million_applied"]["meters"]
    # One conditional put (1 WRU) plus the stats update once per 100: 1.01M WRU at 10 per 1M.
    assert applied["dynamodb_write_request_unit"] == pytest.approx(10.1)
    # One tombstone check per created item: 1M RRU at 2 per 1M.
    assert applied["dynamodb_read_request_unit"] == pytest.approx(2.0)
    # The replicator and the echoing sender, one invocation each per 100 changes, at 1 each.
    assert applied["lambda_request"] == pytest.approx(20_000)
    sent = r["per_million_sent"]["meters"]
    assert sent["dynamodb_read_request_unit"] == pytest.approx(2.0)  # the sender's tombstone read
    assert sent["dynamodb_write_request_unit"] == 0  # stamped writes need no stamping


def test_unstamped_writes_and_deletes_cost_writes_at_the_sender():
    a = cost_model.Assumptions(unstamped_fraction=0.5, delete_fraction=0.25, item_bytes=2048)
    sent = cost_model.usage_sent(a, 1500)
    # Half are stamped (2 WRU each, a 2 KB item); a quarter are deletes (tombstone + delete).
    assert sent["dynamodb_write_request_unit"] == pytest.approx(0.5 * 2 + 0.25 * 2)
    assert sent["dynamodb_read_request_unit"] == pytest.approx(1.5)  # the stamp comes round


def test_idle_on_a_tiny_table():
    r = cost_model.region_costs(_tiny_prices(), "cn-north-1", cost_model.Assumptions())
    idle = r["idle_monthly"]["meters"]
    assert idle["kinesis_on_demand_stream_hour"] == pytest.approx(73.0)  # 730 h at 0.1
    assert idle["cloudwatch_alarm_month"] == 20  # what monitoring.tf creates
    assert idle["dynamodb_write_request_unit"] == pytest.approx(43_800 * 10 / 1_000_000)
    assert idle["kms_key_month"] == 1


def test_provisioned_stream_bills_shards_and_payload_units():
    a = cost_model.Assumptions(stream_mode="provisioned", shards=2, retention_hours=72)
    idle = cost_model.usage_idle(a)
    assert idle["kinesis_shard_hour"] == 2 * 730
    assert idle["kinesis_extended_retention_shard_hour"] == 2 * 730
    assert "kinesis_on_demand_stream_hour" not in idle
    applied = cost_model.usage_applied(a, 30 * 1024)
    assert applied["kinesis_put_payload_unit"] == 2  # 30 KB is two 25 KB units


def test_kinesis_capture_bills_capture_units_and_a_capture_stream():
    a = cost_model.Assumptions(capture="kinesis", item_bytes=2048, capture_retention_hours=168)
    record = cost_model.change_bytes(a.item_bytes)
    sent = cost_model.usage_sent(a, record)
    # One change data capture unit per KB of the item; the capture record holds both images
    # of an update, so it is over twice the item, rounded up to whole KB on-demand.
    assert sent["dynamodb_change_data_capture_unit"] == 2
    captured = cost_model.capture_bytes(a.item_bytes)
    assert 2 * 2048 < captured < 3 * 2048
    assert "dynamodb_streams_read_request_lambda" not in sent  # nothing read from the table
    plain = cost_model.usage_sent(cost_model.Assumptions(item_bytes=2048), record)
    in_gb = sent["kinesis_on_demand_data_in_gb"]
    assert in_gb == pytest.approx(cost_model.kb_rounded(captured) / cost_model.GB)
    assert "kinesis_on_demand_data_in_gb" not in plain
    # Kept 144 hours past the first day: that share of a GB-month.
    assert sent["kinesis_on_demand_extended_retention_gb_month"] == pytest.approx(in_gb * 144 / 730)
    # The applied write comes round through this region's capture stream as an echo.
    applied = cost_model.usage_applied(a, record)
    assert applied["dynamodb_change_data_capture_unit"] == 2
    # Idle, the capture stream's hours beside the replication stream's.
    idle = cost_model.usage_idle(a)
    assert idle["kinesis_on_demand_stream_hour"] == 2 * 730
    provisioned = cost_model.usage_idle(
        cost_model.Assumptions(capture="kinesis", stream_mode="provisioned", shards=1)
    )
    assert provisioned["kinesis_shard_hour"] == 2 * 730


def test_global_tables_reference_on_a_tiny_table():
    a = cost_model.Assumptions(item_bytes=3000)
    ref = cost_model.global_tables_reference(_tiny_prices(), a)
    assert ref["per_million"] == pytest.approx(12.0)  # 3 rWRU per write, 4 per 1M


def test_a_change_record_grows_with_the_item():
    small, large = cost_model.change_bytes(1024), cost_model.change_bytes(4096)
    assert 1024 < small < 2048
    assert large - small == pytest.approx(3072, abs=8)


def test_every_meter_used_is_priced_in_both_regions_with_a_source_and_a_date():
    prices = cost_model.load_prices()
    used = cost_model.meters_used(cost_model.Assumptions())
    used |= cost_model.meters_used(cost_model.Assumptions(stream_mode="provisioned"))
    used |= cost_model.meters_used(cost_model.Assumptions(capture="kinesis"))
    for region in cost_model.REGIONS:
        block = prices["regions"][region]
        for meter in used:
            entry = block["meters"].get(meter)
            assert entry is not None, f"{region} has no price for {meter}"
            assert entry["source"].startswith("https://"), (region, meter)
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", entry["read_on"]), (region, meter)
            assert entry["currency"] == block["currency"], (region, meter)
            assert isinstance(entry["verified"], bool), (region, meter)
            assert entry["quantity"] > 0 and entry["price"] >= 0, (region, meter)
            if not entry["verified"]:
                assert entry.get("note"), f"{region} {meter}: say why it is unverified"
    assert "dynamodb_replicated_write_request_unit" in prices["regions"]["ap-southeast-1"]["meters"]


@pytest.mark.parametrize(
    ("options", "marker"),
    [([], "COST_TABLE"), (["--capture", "kinesis"], "KINESIS_CAPTURE_COST_TABLE")],
)
def test_the_page_shows_what_the_script_prints(tmp_path, capsys, options, marker):
    assert cost_model.main([*options, "--json", str(tmp_path / "cost.json")]) == 0
    printed = capsys.readouterr().out.strip()
    page = (ROOT / "docs/cost.md").read_text()
    block = re.search(rf"<!-- BEGIN_{marker} -->\n(.*?)\n<!-- END_{marker} -->", page, re.S)
    assert block, f"docs/cost.md lost its <!-- BEGIN_{marker} --> markers"
    assert block.group(1).strip() == printed, (
        "docs/cost.md is out of date: paste the output of "
        + " ".join(["python benchmarks/cost_model.py", *options])
    )
    written = json.loads((tmp_path / "cost.json").read_text())
    assert set(written["regions"]) == set(cost_model.REGIONS)
