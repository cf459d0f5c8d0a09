"""The load generator (tools/loader.py) and its CLI (tools/load_items.py), on moto."""

from __future__ import annotations

import json
import threading
import uuid
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from replication.versions import REGION_ATTR, TIMESTAMP_ATTR, now_ms, of_image
from tools import load_items, loader
from tools.loader import LOADER_MARK, ItemFactory, KeyAttribute, LoadError, RateLimiter

CN = "cn-north-1"
STATS_KEY = {"PK": {"S": "loader_stats#user-cn"}}


def create_table(client: Any, name: str, keys: list[tuple[str, str]]) -> None:
    """keys: [(name, "S"|"N"|"B")], hash key first."""
    client.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": n, "KeyType": role}
            for (n, _), role in zip(keys, ("HASH", "RANGE"), strict=False)
        ],
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": t} for n, t in keys],
        BillingMode="PAY_PER_REQUEST",
    )


def scan(client: Any, table: str) -> list[dict[str, Any]]:
    pages = client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
    return [item for page in pages for item in page["Items"]]


def unstamped(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    stripped = [
        {k: v for k, v in i.items() if k not in (TIMESTAMP_ATTR, REGION_ATTR)} for i in items
    ]
    return sorted(stripped, key=lambda item: json.dumps(item, sort_keys=True, default=str))


class FakeTime:
    """A clock that moves only when something sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def dynamodb(aws):
    return boto3.client("dynamodb", region_name=CN)


@pytest.fixture
def cn_tables(dynamodb):
    create_table(dynamodb, "user-cn", [("PK", "S")])
    create_table(dynamodb, "replicator_stats", [("PK", "S")])
    return dynamodb


def user_factory(client: Any, seed: int | None = 1, profile: str = "user") -> ItemFactory:
    return ItemFactory(loader.describe_key_schema(client, "user-cn"), profile, seed)


def flaky(client: Any, respond):
    """Route the client's batch_write_item through respond(call_number, real, kwargs)."""
    real = client.batch_write_item
    calls: list[dict[str, Any]] = []
    lock = threading.Lock()

    def batch_write_item(**kwargs):
        with lock:
            calls.append(kwargs)
            number = len(calls)
        return respond(number, real, kwargs)

    client.batch_write_item = batch_write_item
    return calls


def throttled(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "slow down"}}, "BatchWriteItem")


# -- load: what lands ----------------------------------------------------------------------


def test_items_land_stamped_with_the_region_and_the_write_time(cn_tables):
    advanced: list[int] = []
    before = now_ms()
    result = loader.load(
        cn_tables, "user-cn", CN, 60, 25, 3, None, user_factory(cn_tables), advanced.append
    )
    after = now_ms()

    items = scan(cn_tables, "user-cn")
    assert result.written == 60 and len(items) == 60
    assert len({item["PK"]["S"] for item in items}) == 60
    assert {item[REGION_ATTR]["S"] for item in items} == {CN}
    assert all(before <= int(item[TIMESTAMP_ATTR]["N"]) <= after for item in items)
    assert all("@" in item["email"]["S"] and "M" in item["address"] for item in items)
    assert sum(advanced) == 60  # the progress callback saw every item


@pytest.mark.parametrize(
    "keys",
    [
        [("id", "S")],
        [("id", "N")],
        [("id", "B")],
        [("tenant", "S"), ("seq", "N")],
        [("h", "N"), ("r", "B")],
        [("h", "B"), ("r", "S")],
    ],
    ids=lambda keys: "+".join(f"{n}:{t}" for n, t in keys),
)
def test_any_key_schema_gets_keys_of_its_own_types(dynamodb, keys):
    create_table(dynamodb, "events", keys)
    schema = loader.describe_key_schema(dynamodb, "events")
    assert [(k.name, k.type) for k in schema] == keys

    loader.load(dynamodb, "events", CN, 30, 10, 2, None, ItemFactory(schema, "minimal", 3))

    items = scan(dynamodb, "events")
    assert len(items) == 30
    for name, type_ in keys:
        assert all(list(item[name]) == [type_] for item in items)
    assert len({tuple(json.dumps(i[n], default=str) for n, _ in keys) for i in items}) == 30
    assert not any("PK" in item for item in items)
    if keys[0][1] == "S":
        assert all(uuid.UUID(item[keys[0][0]]["S"]) for item in items)


def test_a_seed_makes_the_items_identical_across_runs(cn_tables):
    keys = loader.describe_key_schema(cn_tables, "user-cn")
    first = ItemFactory(keys, "order", seed=42).items(0, 20)
    assert ItemFactory(keys, "order", seed=42).items(0, 20) == first
    assert ItemFactory(keys, "order", seed=43).items(0, 20) != first
    # Item i does not depend on which items were made before it, or by which thread.
    assert ItemFactory(keys, "order", seed=42).item(7) == first[7]

    loader.load(cn_tables, "user-cn", CN, 40, 25, 4, None, ItemFactory(keys, "user", seed=7))
    once = scan(cn_tables, "user-cn")
    loader.load(cn_tables, "user-cn", CN, 40, 10, 3, None, ItemFactory(keys, "user", seed=7))
    twice = scan(cn_tables, "user-cn")

    assert len(twice) == 40  # the same keys, written again
    assert unstamped(twice) == unstamped(once)


def test_profiles_make_realistic_items(cn_tables):
    keys = loader.describe_key_schema(cn_tables, "user-cn")
    for i, order in enumerate(ItemFactory(keys, "order", seed=5).items(0, 10)):
        lines = order["lines"]["L"]
        line_totals = [Decimal(line["M"]["line_total"]["N"]) for line in lines]
        assert lines, i
        assert sum(line_totals) == Decimal(order["subtotal"]["N"])
        assert Decimal(order["total"]["N"]) == sum(
            Decimal(order[part]["N"]) for part in ("subtotal", "tax", "shipping")
        )
    user = ItemFactory(keys, "user", seed=5, locale="zh_CN").item(0)
    assert {"S", "M", "SS", "N", "BOOL"} <= {next(iter(v)) for v in user.values()}
    assert user["address"]["M"]["country"] == {"S": "CN"}
    assert set(ItemFactory(keys, "minimal", seed=5).item(0)) == {"PK", "note", LOADER_MARK}


# -- load: throttling ----------------------------------------------------------------------


def test_unprocessed_items_are_retried_until_they_land(cn_tables):
    def respond(number, real, kwargs):
        requests = kwargs["RequestItems"]["user-cn"]
        if number == 1:  # DynamoDB took the first 15 and sent 10 back
            real(RequestItems={"user-cn": requests[:15]})
            return {"UnprocessedItems": {"user-cn": requests[15:]}}
        return real(**kwargs)

    calls = flaky(cn_tables, respond)
    clock = FakeTime()
    result = loader.load(
        cn_tables, "user-cn", CN, 75, 25, 2, None, user_factory(cn_tables), sleep=clock.sleep
    )

    assert result.written == 75
    assert len(scan(cn_tables, "user-cn")) == 75
    assert len(calls) == 4  # three batches and one retry of the 10 unprocessed items
    assert sorted(len(c["RequestItems"]["user-cn"]) for c in calls) == [10, 25, 25, 25]
    assert len(clock.sleeps) == 1  # backed off once, before the retry


@pytest.mark.parametrize(
    "code",
    ["ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"],
)
def test_throttling_errors_are_retried(cn_tables, code):
    def respond(number, real, kwargs):
        if number <= 2:
            raise throttled(code)
        return real(**kwargs)

    calls = flaky(cn_tables, respond)
    clock = FakeTime()
    result = loader.load(
        cn_tables, "user-cn", CN, 20, 25, 1, None, user_factory(cn_tables), sleep=clock.sleep
    )

    assert result.written == 20 and len(scan(cn_tables, "user-cn")) == 20
    assert len(calls) == 3 and len(clock.sleeps) == 2
    assert clock.sleeps[1] <= 0.1  # full jitter under base * 2


def test_a_table_that_stays_throttled_fails_with_a_clear_error(cn_tables):
    def respond(number, real, kwargs):
        if number == 1:
            return real(**kwargs)
        return {"UnprocessedItems": kwargs["RequestItems"]}

    calls = flaky(cn_tables, respond)
    with pytest.raises(LoadError, match="25 items still throttled by user-cn after 3 attempts"):
        loader.load(
            cn_tables,
            "user-cn",
            CN,
            50,
            25,
            1,
            None,
            user_factory(cn_tables),
            max_attempts=3,
            sleep=FakeTime().sleep,
        )
    assert len(calls) == 4


def test_the_error_reports_what_was_written_and_other_errors_are_not_retried(cn_tables):
    def respond(number, real, kwargs):
        if number == 1:
            return real(**kwargs)
        raise throttled("ValidationException")

    calls = flaky(cn_tables, respond)
    with pytest.raises(LoadError, match="ValidationException") as failure:
        loader.load(cn_tables, "user-cn", CN, 100, 25, 1, None, user_factory(cn_tables))
    assert failure.value.written == 25
    assert len(calls) == 2


# -- pacing --------------------------------------------------------------------------------


def test_the_rate_limiter_paces_to_its_rate_after_one_burst():
    clock = FakeTime()
    limiter = RateLimiter(100, burst=25, clock=clock, sleep=clock.sleep)

    waits = [limiter.acquire(25) for _ in range(5)]

    assert waits == pytest.approx([0, 0.25, 0.25, 0.25, 0.25])
    assert clock.now == pytest.approx(1.0)  # 125 items = the burst + 100/s for one second
    clock.now += 60  # idle: the bucket refills, but only up to its burst
    assert limiter.acquire(25) == 0
    assert limiter.acquire(25) == pytest.approx(0.25)


def test_threads_share_one_bucket_and_queue_in_turn():
    clock = FakeTime()
    waits: list[float] = []
    lock = threading.Lock()

    def record(seconds: float) -> None:  # the clock stands still: every wait is a reservation
        with lock:
            waits.append(seconds)

    limiter = RateLimiter(50, burst=10, clock=clock, sleep=record)
    threads = [threading.Thread(target=limiter.acquire, args=(10,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(waits) == pytest.approx([0.2 * i for i in range(1, 8)])


def test_load_honours_the_rate(cn_tables):
    clock = FakeTime()
    result = loader.load(
        cn_tables,
        "user-cn",
        CN,
        60,
        10,
        3,
        50.0,
        user_factory(cn_tables),
        clock=clock,
        sleep=clock.sleep,
    )

    assert result.written == 60 and len(scan(cn_tables, "user-cn")) == 60
    # The first batch goes at once; the other 50 items at 50/s.
    assert result.seconds == pytest.approx(1.0)
    assert result.items_per_second == pytest.approx(60.0)


# -- the CLI -------------------------------------------------------------------------------


def test_cli_loads_the_regions_default_table(cn_tables, capsys):
    before = now_ms()
    assert load_items.main(["-n", "30", "-r", "cn", "-b", "7", "--quiet"]) == 0

    items = scan(cn_tables, "user-cn")
    assert len(items) == 30
    assert {item[REGION_ATTR]["S"] for item in items} == {CN}
    assert min(int(item[TIMESTAMP_ATTR]["N"]) for item in items) >= before
    out = capsys.readouterr()
    assert out.out.startswith("wrote 30 items to user-cn in cn-north-1 in ")
    assert out.err == ""  # --quiet


def test_a_table_holding_an_applications_items_is_refused_unless_asked(cn_tables, capsys):
    # A first load goes into a scratch table, not among an application's items.
    cn_tables.put_item(TableName="user-cn", Item={"PK": {"S": "a-real-customer"}})
    assert load_items.main(["-n", "5", "-r", "cn", "--quiet"]) == 1
    error = capsys.readouterr().err.strip()
    assert "user-cn holds items load_items.py did not write" in error
    assert "--into-live-table" in error and "\n" not in error
    assert len(scan(cn_tables, "user-cn")) == 1  # nothing written

    assert load_items.main(["-n", "5", "-r", "cn", "--quiet", "--into-live-table"]) == 0
    assert len(scan(cn_tables, "user-cn")) == 6
    # Its own items don't count as an application's: a second load goes ahead.
    cn_tables.delete_item(TableName="user-cn", Key={"PK": {"S": "a-real-customer"}})
    assert load_items.main(["-n", "5", "-r", "cn", "--quiet"]) == 0


def test_a_seconds_deployment_gets_items_stamped_in_seconds(cn_tables):
    # version_unit = "seconds" (the original sample's convention): a millisecond stamp would
    # read as thousands of years ahead there, and be stamped afresh.
    before = now_ms()
    assert load_items.main(["-n", "5", "-r", "cn", "--quiet", "--version-unit", "seconds"]) == 0
    for loaded in scan(cn_tables, "user-cn"):
        version = of_image(loaded, "seconds")
        assert version is not None and before <= version.timestamp <= now_ms()


def test_loader_stats_accumulate_across_runs(cn_tables):
    before = now_ms()
    assert load_items.main(["-n", "7", "-r", "cn", "--quiet"]) == 0
    assert load_items.main(["-n", "5", "-r", "cn-north-1", "--quiet"]) == 0

    stats = cn_tables.get_item(TableName="replicator_stats", Key=STATS_KEY)["Item"]
    assert stats["loaded"] == {"N": "12"}
    assert before <= int(stats["last_loaded_at"]["N"]) <= now_ms()
    assert len(scan(cn_tables, "user-cn")) == 12


def test_cli_json_summary(cn_tables, capsys):
    assert load_items.main(["-n", "10", "-r", "cn", "--seed", "3", "--json"]) == 0

    summary = json.loads(capsys.readouterr().out)
    assert summary["items_written"] == 10
    assert (summary["region"], summary["table"], summary["seed"]) == (CN, "user-cn", 3)
    assert summary["seconds"] > 0 and summary["items_per_second"] > 0
    assert summary["loaded_total"] == 10


@pytest.mark.parametrize("as_json", [False, True])
def test_dry_run_writes_nothing(cn_tables, capsys, as_json):
    argv = ["-n", "40", "-r", "cn", "--seed", "9", "--dry-run"] + (["--json"] if as_json else [])
    assert load_items.main(argv) == 0

    assert scan(cn_tables, "user-cn") == []
    assert scan(cn_tables, "replicator_stats") == []
    out = capsys.readouterr().out
    if as_json:
        summary = json.loads(out)
        assert (summary["dry_run"], summary["items_to_write"]) == (True, 40)
        sample = summary["sample_item"]
    else:
        first, rest = out.split("\n", 1)
        assert first.startswith("dry run: would write 40 items to user-cn in cn-north-1")
        sample = json.loads(rest)
    expected = ItemFactory([KeyAttribute("PK", "S", "HASH")], "user", 9, "zh_CN").item(0)
    assert sample["PK"] == expected["PK"]
    assert sample[REGION_ATTR] == {"S": CN}


def test_a_full_region_name_with_its_own_table(dynamodb, capsys):
    oregon = boto3.client("dynamodb", region_name="us-west-2")
    create_table(oregon, "orders", [("order_id", "N"), ("line", "B")])
    argv = ["-n", "12", "-r", "us-west-2", "-t", "orders", "--no-stats", "--json"]
    assert load_items.main(argv + ["--faker-profile", "order"]) == 0

    items = scan(oregon, "orders")
    assert len(items) == 12 and {i[REGION_ATTR]["S"] for i in items} == {"us-west-2"}
    assert json.loads(capsys.readouterr().out)["loaded_total"] is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-n", "5", "-r", "xx"], "unknown region 'xx'"),
        (["-n", "5", "-r", "china"], "unknown region 'china'"),
        (["-n", "5", "-r", "eu-west-1"], "defaults.json names no table for eu-west-1"),
        (["-n", "5", "-r", "cn", "-b", "26"], "-b/--batch-size: must be 1..25"),
        (["-n", "5", "-r", "cn", "--rate", "0"], "--rate: must be a positive number"),
        (["-n", "5", "-r", "cn", "--no-stats", "--stats-table", "s"], "not allowed with"),
        (["-r", "cn"], "required: -n/--count"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(cn_tables, capsys, argv, message):
    assert load_items.main(argv) == 2

    out = capsys.readouterr()
    assert out.out == ""
    assert out.err.count("\n") == 1 and message in out.err
    assert out.err.startswith("load_items.py: error: ")
    assert scan(cn_tables, "user-cn") == []


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("user-cn", "table user-cn not found in cn-north-1"),
        ("replicator_stats", "table replicator_stats not found in cn-north-1"),
    ],
)
def test_a_missing_table_fails_before_writing_anything(dynamodb, capsys, missing, message):
    for name in {"user-cn", "replicator_stats"} - {missing}:
        create_table(dynamodb, name, [("PK", "S")])

    assert load_items.main(["-n", "5", "-r", "cn"]) == 1
    err = capsys.readouterr().err
    assert err == f"load_items.py: error: {message}\n"
    if missing == "replicator_stats":
        assert scan(dynamodb, "user-cn") == []


def test_a_failed_load_still_counts_what_it_wrote(cn_tables, capsys, monkeypatch):
    def respond(number, real, kwargs):
        if number == 1:
            return real(**kwargs)
        raise throttled("ValidationException")

    make_client = loader.make_client

    def failing_client(*args, **kwargs):
        client = make_client(*args, **kwargs)
        flaky(client, respond)
        return client

    monkeypatch.setattr(loader, "make_client", failing_client)
    assert load_items.main(["-n", "50", "-r", "cn", "-c", "1"]) == 1

    assert "wrote 25 of 50 items" in capsys.readouterr().err
    stats = cn_tables.get_item(TableName="replicator_stats", Key=STATS_KEY)["Item"]
    assert stats["loaded"] == {"N": "25"}


def test_profile_and_endpoint_reach_boto3(aws, capsys, monkeypatch):
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    assert load_items.main(["-n", "1", "-r", "cn", "--profile", "nobody"]) == 1
    assert capsys.readouterr().err == "load_items.py: error: AWS profile 'nobody' not found\n"

    client = loader.make_client(CN, endpoint_url="http://127.0.0.1:5000", concurrency=16)
    assert client.meta.endpoint_url == "http://127.0.0.1:5000"
    assert client.meta.region_name == CN
    assert client.meta.config.retries["mode"] == "standard"
    assert client.meta.config.max_pool_connections >= 16


@pytest.mark.parametrize(
    ("value", "region"),
    [("cn", CN), ("SG", "ap-southeast-1"), ("cn-northwest-1", "cn-northwest-1")],
)
def test_region_aliases_and_names(value, region):
    assert loader.resolve_region(value) == region
    assert loader.locale_for(region) == ("zh_CN" if region.startswith("cn-") else "en_US")
