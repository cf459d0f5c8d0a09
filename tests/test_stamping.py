"""The application-writer helpers: every write they build carries a version."""

from __future__ import annotations

import copy

import boto3
import pytest

from replication.stamping import stamp, stamped_update
from replication.versions import Version, now_ms, of_image

NOW = 1_800_000_000_000
CN = "cn-north-1"
STAMP_CLAUSE = "#_repl_ts = :_repl_ts, #_repl_region = :_repl_region"
STAMP_NAMES = {"#_repl_ts": "last_update_timestamp", "#_repl_region": "last_updater_region"}


# -- stamp -------------------------------------------------------------------------------


def test_stamp_adds_python_values_for_the_resource_api():
    item = {"PK": "u1", "name": "Li"}
    assert stamp(item, CN, now=NOW) == {
        "PK": "u1",
        "name": "Li",
        "last_update_timestamp": NOW,
        "last_updater_region": CN,
    }


def test_stamp_adds_typed_values_for_the_client_api():
    item = {"PK": {"S": "u1"}}
    assert stamp(item, CN, now=NOW, typed=True) == {
        "PK": {"S": "u1"},
        "last_update_timestamp": {"N": str(NOW)},
        "last_updater_region": {"S": CN},
    }


def test_stamp_does_not_mutate_its_input():
    # Callers may reuse the dict (e.g. for a retry): it must stay as they built it.
    item = {"PK": {"S": "u1"}, "last_update_timestamp": {"N": "1"}}
    before = copy.deepcopy(item)
    stamped = stamp(item, CN, now=NOW, typed=True)

    assert item == before
    assert stamped is not item
    assert stamped["last_update_timestamp"] == {"N": str(NOW)}  # an old stamp is replaced


def test_stamp_without_now_uses_the_clock_in_epoch_milliseconds():
    before = now_ms()
    stamped = stamp({"PK": "u1"}, CN)
    assert before <= stamped["last_update_timestamp"] <= now_ms()


def test_of_image_reads_back_the_typed_stamp():
    assert of_image(stamp({"PK": {"S": "u1"}}, CN, now=NOW, typed=True)) == Version(NOW, CN)


# -- stamped_update: the expression ------------------------------------------------------


@pytest.mark.parametrize("keyword", ["SET", "set", "Set"])
def test_stamped_update_merges_into_an_existing_set_clause(keyword):
    params = stamped_update(CN, f"{keyword} #n = :n", {"#n": "name"}, {":n": {"S": "Li"}}, NOW)
    # One SET clause only: DynamoDB rejects an expression with two.
    assert params["UpdateExpression"] == f"SET {STAMP_CLAUSE}, #n = :n"


def test_stamped_update_merges_into_a_set_clause_after_remove():
    params = stamped_update(CN, "REMOVE #old SET #n = :n", {"#n": "name", "#old": "old"}, now=NOW)
    assert params["UpdateExpression"] == f"REMOVE #old SET {STAMP_CLAUSE}, #n = :n"


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("REMOVE #old", f"SET {STAMP_CLAUSE} REMOVE #old"),
        ("ADD #c :one", f"SET {STAMP_CLAUSE} ADD #c :one"),
        ("", f"SET {STAMP_CLAUSE}"),
        # "set" inside a placeholder is not the SET keyword.
        ("REMOVE #set", f"SET {STAMP_CLAUSE} REMOVE #set"),
        ("ADD #tags :set", f"SET {STAMP_CLAUSE} ADD #tags :set"),
    ],
)
def test_stamped_update_adds_a_set_clause_when_there_is_none(expression, expected):
    assert stamped_update(CN, expression, now=NOW)["UpdateExpression"] == expected


def test_stamped_update_keeps_the_callers_names_and_values():
    params = stamped_update(CN, "SET #n = :n", {"#n": "name"}, {":n": {"S": "Li"}}, now=NOW)
    assert params["ExpressionAttributeNames"] == {"#n": "name", **STAMP_NAMES}
    assert params["ExpressionAttributeValues"] == {
        ":n": {"S": "Li"},
        ":_repl_ts": {"N": str(NOW)},
        ":_repl_region": {"S": CN},
    }


def test_stamped_update_python_values_for_the_resource_api():
    values = stamped_update(CN, now=NOW, typed=False)["ExpressionAttributeValues"]
    assert values == {":_repl_ts": NOW, ":_repl_region": CN}


# -- against DynamoDB (moto) -------------------------------------------------------------


@pytest.fixture
def table(aws):
    client = boto3.client("dynamodb", region_name="ap-southeast-1")
    client.create_table(
        TableName="stamped",
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return client


def stored(client, key: str) -> dict:
    return client.get_item(TableName="stamped", Key={"PK": {"S": key}}, ConsistentRead=True)["Item"]


def test_a_stamped_update_item_stores_the_version_and_the_callers_attribute(table):
    table.update_item(
        TableName="stamped",
        Key={"PK": {"S": "u1"}},
        **stamped_update(CN, "SET #n = :n", {"#n": "name"}, {":n": {"S": "Li"}}, now=NOW),
    )
    item = stored(table, "u1")

    assert item["name"] == {"S": "Li"}
    assert item["last_update_timestamp"] == {"N": str(NOW)}
    assert item["last_updater_region"] == {"S": CN}
    assert of_image(item) == Version(NOW, CN)


def test_a_stamped_update_with_only_remove_is_accepted(table):
    table.put_item(TableName="stamped", Item={"PK": {"S": "u1"}, "old": {"S": "x"}})
    table.update_item(
        TableName="stamped",
        Key={"PK": {"S": "u1"}},
        **stamped_update(CN, "REMOVE #old", {"#old": "old"}, now=NOW),
    )
    item = stored(table, "u1")

    assert "old" not in item
    assert of_image(item) == Version(NOW, CN)


def test_a_resource_put_item_with_a_python_stamp_is_read_back_as_a_version(table):
    # The resource API serialises the Python form; the typed item carries the same version.
    resource_table = boto3.resource("dynamodb", region_name="ap-southeast-1").Table("stamped")
    resource_table.put_item(Item=stamp({"PK": "u2", "name": "Wang"}, CN, now=NOW))
    item = stored(table, "u2")

    assert item["name"] == {"S": "Wang"}
    assert of_image(item) == Version(NOW, CN)
