"""Property-based tests for the two rules every replicated write relies on.

1. Last-writer-wins: a change wins iff its Version (timestamp, then region) is greater. The
   merge must be commutative, associative and idempotent so both regions converge whatever
   order changes arrive in, and the DynamoDB condition expressions must implement exactly it.
2. The wire format carries every DynamoDB type unchanged, and rejects anything it cannot
   apply with MalformedChange (not some other exception a caller would retry forever).
"""

from __future__ import annotations

import base64
import dataclasses
import itertools
import json
from decimal import Decimal, localcontext
from functools import reduce
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from replication import wire
from replication.signing import BadSignature, SigningKeys
from replication.versions import (
    MILLISECONDS,
    REGION_ATTR,
    SECONDS,
    TIMESTAMP_ATTR,
    VERSION_UNITS,
    Version,
    from_wire,
    of_image,
    older_than_condition,
    replica_older_than_condition,
    trusted,
    unchanged_condition,
)
from tests.aws_limits import significant_digits

REGIONS = ["cn-north-1", "ap-southeast-1"]
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "ap-southeast-1",
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
}
TABLE = "properties"

# Every example against moto is a real (in-memory) API call: keep the count modest and
# don't let a slow call count as a failure. Function-scoped fixtures (e.g. an env fixture in
# a conftest) hold nothing per example here, so the health check about them is noise.
DB_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
PURE_SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module", autouse=True)
def aws_env():
    # Module-scoped so hypothesis examples share it; harmless next to a conftest that sets
    # the same values.
    with pytest.MonkeyPatch.context() as mp:
        for name, value in AWS_ENV.items():
            mp.setenv(name, value)
        yield


@pytest.fixture(scope="module")
def ddb(aws_env):
    """One moto table for the whole module; each example uses its own item id."""
    with mock_aws():
        client = boto3.client("dynamodb", region_name="ap-southeast-1")
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


_ids = itertools.count()


def fresh_id() -> dict[str, str]:
    return {"S": f"item-{next(_ids)}"}


def conditional_put(client, item: dict[str, Any], condition: dict[str, Any]) -> bool:
    """True if the put happened, False if the condition failed."""
    try:
        client.put_item(TableName=TABLE, Item=item, **condition)
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    return True


# ---------------------------------------------------------------------------------------
# 1. The merge rule
# ---------------------------------------------------------------------------------------

# Few timestamps, fractions (seconds stamps) and two regions, so equal timestamps and equal
# Versions happen often.
versions_st = st.builds(
    Version,
    st.integers(0, 4),
    st.sampled_from(REGIONS),
    st.sampled_from([0, Decimal("0.25"), Decimal("0.5")]),
)
payloads = st.dictionaries(st.sampled_from("abc"), st.integers(0, 2), max_size=2)
states = st.tuples(versions_st, payloads)


def canonical(payload: dict[str, Any]) -> str:
    return json.dumps(payload, sort_keys=True)


def merge(a, b):
    """What both regions apply: the greater Version wins. Exact Version ties (which the
    system never produces for different payloads) are broken by payload to make it total."""
    return max(a, b, key=lambda state: (state[0], canonical(state[1])))


def apply_all(sequence):
    return reduce(merge, sequence)


@PURE_SETTINGS
@given(states, states)
def test_merge_is_commutative(a, b):
    assert merge(a, b) == merge(b, a)


@PURE_SETTINGS
@given(states, states, states)
def test_merge_is_associative(a, b, c):
    assert merge(merge(a, b), c) == merge(a, merge(b, c))


@PURE_SETTINGS
@given(states)
def test_merge_is_idempotent(a):
    assert merge(a, a) == a


@PURE_SETTINGS
@given(st.data())
def test_any_delivery_order_and_replays_give_the_same_state(data):
    # One region may see changes in another order than the other, and Kinesis may
    # redeliver some: the final state must not depend on either.
    sequence = data.draw(st.lists(states, min_size=1, max_size=6))
    reordered = data.draw(st.permutations(sequence))
    replayed = reordered + data.draw(st.lists(st.sampled_from(sequence), max_size=4))
    assert apply_all(reordered) == apply_all(sequence)
    assert apply_all(replayed) == apply_all(sequence)
    assert apply_all(sequence)[0] == max(state[0] for state in sequence)


@PURE_SETTINGS
@given(versions_st, st.integers(0, 6), st.sampled_from(REGIONS))
def test_bumped_version_is_always_newer(version, now, region):
    # A restamp must beat the version it replaces even when the local clock lags.
    assert version.bumped(now, region) > version


# -- the stored unit: whole milliseconds, or seconds with any fraction ----------------------

# A time as applications stamp it in seconds: up to 11 whole digits and a fraction that keeps
# the number within DynamoDB's 38 significant digits, or the original sample's
# Decimal(time.time()), the exact value of a binary float.
stamped_seconds = st.one_of(
    st.builds(
        lambda whole, digits: Decimal(f"{whole}.{digits}" if digits else str(whole)),
        st.integers(0, 10**11 - 1),
        st.text("0123456789", max_size=27),
    ),
    # Exact binary fractions of small numbers run past 38 digits: DynamoDB (and boto3's
    # serializer) refuse those, so no stored stamp is one.
    st.floats(0, 4e9, allow_nan=False).map(Decimal),
).filter(lambda seconds: significant_digits(str(seconds)) <= 38)


@PURE_SETTINGS
@given(stamped_seconds, st.sampled_from(REGIONS))
@example(Decimal("1E-130"), REGIONS[0])
@example(Decimal("9.9999999999999999999999999999999999999E+10"), REGIONS[0])
def test_a_seconds_stamp_reads_exactly_and_writes_back_equal(seconds, region):
    version = of_image({TIMESTAMP_ATTR: {"N": str(seconds)}, REGION_ATTR: {"S": region}}, SECONDS)
    assert version is not None and 0 <= version.fraction < 1
    assert Decimal(version.stored(SECONDS)) == seconds  # numerically, as DynamoDB compares
    assert significant_digits(version.stored(SECONDS)) <= 38
    assert "E" not in version.stored(SECONDS).upper()
    with localcontext() as exact:
        exact.prec = 100  # the default 28 digits would round a 38-digit stamp
        assert version.timestamp == int(seconds.scaleb(3) // 1)  # whole milliseconds, floored


@PURE_SETTINGS
@given(stamped_seconds, stamped_seconds, st.sampled_from(REGIONS), st.sampled_from(REGIONS))
def test_versions_order_as_the_stored_seconds_do(a, b, region_a, region_b):
    # The merge rule in Python and DynamoDB's comparison of the stored numbers agree.
    va = of_image({TIMESTAMP_ATTR: {"N": str(a)}, REGION_ATTR: {"S": region_a}}, SECONDS)
    vb = of_image({TIMESTAMP_ATTR: {"N": str(b)}, REGION_ATTR: {"S": region_b}}, SECONDS)
    assert (va < vb) == ((a, region_a) < (b, region_b))
    assert (va == vb) == ((a, region_a) == (b, region_b))


@PURE_SETTINGS
@given(st.integers(0, 10**14), st.sampled_from(REGIONS), st.sampled_from(VERSION_UNITS))
def test_whole_milliseconds_round_trip_in_either_unit(ms, region, unit):
    version = Version(ms, region)
    assert of_image(version.to_typed(unit), unit) == version
    # A stamp made here (a restamp, a delete) is never finer than a millisecond.
    assert of_image(version.bumped(ms, region).to_typed(unit), unit).fraction == 0


@PURE_SETTINGS
@given(stamped_seconds.filter(lambda s: s != s.to_integral_value()))
def test_milliseconds_refuse_a_fraction_and_seconds_accept_it(seconds):
    # A fractional time in a milliseconds deployment is not a version (the sender stamps
    # such an item afresh); the same number is a fine version in seconds.
    image = {TIMESTAMP_ATTR: {"N": str(seconds)}, REGION_ATTR: {"S": REGIONS[0]}}
    assert of_image(image, MILLISECONDS) is None
    assert of_image(image, SECONDS) is not None


@pytest.mark.parametrize("raw", ["-1", "NaN", "Infinity", "1e40", "abc", "", "0x10"])
@pytest.mark.parametrize("unit", VERSION_UNITS)
def test_no_unit_reads_a_number_no_clock_gives(raw, unit):
    assert of_image({TIMESTAMP_ATTR: {"N": raw}, REGION_ATTR: {"S": REGIONS[0]}}, unit) is None


@PURE_SETTINGS
@given(stamped_seconds, st.sampled_from(REGIONS))
# The smallest number DynamoDB stores, and a float's tiny exact value (found by this test):
# a fraction with many zeros after the point.
@example(Decimal("1E-130"), REGIONS[0])
@example(Decimal(2.220446049250313e-16), REGIONS[0])
def test_a_fine_version_crosses_the_wire_exactly(seconds, region):
    version = of_image({TIMESTAMP_ATTR: {"N": str(seconds)}, REGION_ATTR: {"S": region}}, SECONDS)
    assert from_wire(json.loads(json.dumps(version.to_wire()))) == version


@pytest.mark.parametrize(
    "fraction", ["0", "0.0", "1.5", "0.5e1", ".5", "0.", 0.5, "-0.5", "0." + "1" * 171]
)
def test_a_wire_fraction_must_be_a_decimal_string_between_0_and_1(fraction):
    with pytest.raises(ValueError, match="fraction"):
        from_wire({"timestamp": 1, "region": REGIONS[0], "fraction": fraction})


# -- the condition expressions implement the rule ------------------------------------------

UNSTAMPED = "unstamped"  # an item that exists but carries no version attributes
stored_states = st.one_of(st.none(), st.just(UNSTAMPED), versions_st)
# Each condition is checked with the stored times in either unit (VERSION_UNIT).
UNITS = pytest.mark.parametrize("unit", VERSION_UNITS)


def in_unit(version, unit: str):
    """`version` as a deployment in `unit` can hold it: whole milliseconds can't carry a
    fraction of one."""
    if version in (None, UNSTAMPED) or unit == SECONDS:
        return version
    return Version(version.timestamp, version.region)


def typed(version: Version, unit: str) -> dict[str, Any]:
    attrs = version.to_typed(unit)
    # DynamoDB refuses numbers of more than 38 significant digits; moto doesn't check.
    assert significant_digits(attrs[TIMESTAMP_ATTR]["N"]) <= 38, attrs
    return attrs


def store(client, key: dict[str, str], stored, unit: str = MILLISECONDS) -> None:
    if stored is None:
        return
    item = {"id": key, "payload": {"S": "stored"}}
    if stored != UNSTAMPED:
        item.update(typed(stored, unit))
    client.put_item(TableName=TABLE, Item=item)


@UNITS
@DB_SETTINGS
@given(stored=stored_states, incoming=versions_st)
def test_older_than_condition_is_the_merge_rule(ddb, unit, stored, incoming):
    stored, incoming = in_unit(stored, unit), in_unit(incoming, unit)
    key = fresh_id()
    store(ddb, key, stored, unit)
    item = {"id": key, "payload": {"S": "incoming"}, **typed(incoming, unit)}
    applied = conditional_put(ddb, item, older_than_condition(incoming, unit=unit))
    # Missing and never-stamped items count as older than any real write.
    expected = stored is None or stored == UNSTAMPED or stored < incoming
    assert applied == expected, f"stored={stored} incoming={incoming}"


@UNITS
@DB_SETTINGS
@given(stored=stored_states, incoming=versions_st, horizon=st.integers(0, 4))
def test_a_stored_version_beyond_the_horizon_counts_as_oldest(ddb, unit, stored, incoming, horizon):
    """With a horizon (the replicator's clock plus the allowed skew), the condition is the
    merge rule over trusted versions: one stamped beyond the horizon loses to any incoming
    change (incoming versions beyond it are refused before any write)."""
    stored, incoming = in_unit(stored, unit), in_unit(incoming, unit)
    if incoming.beyond(horizon):
        return
    key = fresh_id()
    store(ddb, key, stored, unit)
    item = {"id": key, "payload": {"S": "incoming"}, **typed(incoming, unit)}
    applied = conditional_put(ddb, item, older_than_condition(incoming, horizon, unit))
    held = None if stored in (None, UNSTAMPED) else stored
    assert applied == (trusted(held, horizon) < incoming), f"stored={stored} in={incoming}"


@UNITS
@DB_SETTINGS
@given(
    drawn=st.lists(st.tuples(versions_st, st.text(max_size=3)), min_size=1, max_size=5),
    data=st.data(),
)
def test_two_copies_converge_through_the_condition(ddb, unit, drawn, data):
    # Two copies of one item receive the same changes in different orders, each applied
    # with older_than_condition: both end with the newest. Versions are distinct, as the
    # system guarantees (a region restamps rather than reuse a version).
    changes = list(dict((in_unit(v, unit), p) for v, p in drawn).items())
    orders = [changes, data.draw(st.permutations(changes))]
    keys = [fresh_id(), fresh_id()]
    for key, order in zip(keys, orders, strict=True):
        for version, payload in order:
            item = {"id": key, "payload": {"S": payload}, **typed(version, unit)}
            conditional_put(ddb, item, older_than_condition(version, unit=unit))
    finals = [ddb.get_item(TableName=TABLE, Key={"id": key})["Item"] for key in keys]
    newest_version, newest_payload = max(changes)
    for final in finals:
        assert final["payload"] == {"S": newest_payload}
        stored = of_image(final, unit)
        assert stored == newest_version, (stored, newest_version)


@UNITS
@DB_SETTINGS
@given(stored=stored_states, incoming=versions_st, local=st.sampled_from(REGIONS))
def test_replica_older_than_condition_only_matches_older_replica_writes(
    ddb, unit, stored, incoming, local
):
    stored, incoming = in_unit(stored, unit), in_unit(incoming, unit)
    key = fresh_id()
    store(ddb, key, stored, unit)
    applied = conditional_put(ddb, {"id": key}, replica_older_than_condition(incoming, local, unit))
    # Only an item the replicator wrote (stamped by the other region) and older than
    # `incoming` may be touched; never a missing item, nor a local or unstamped write.
    expected = (
        stored is not None and stored != UNSTAMPED and stored.region != local and stored < incoming
    )
    assert applied == expected, f"stored={stored} incoming={incoming} local={local}"


def test_replica_condition_ignores_an_item_with_a_timestamp_but_no_region(ddb):
    # Not stamped by another region, so not a replicator write: must not match. But
    # `#vreg <> :vlocal` is true when #vreg is missing (in moto, and we believe in DynamoDB),
    # so an item with only a timestamp older than `version` passes.
    key = fresh_id()
    ddb.put_item(TableName=TABLE, Item={"id": key, TIMESTAMP_ATTR: {"N": "1"}})
    condition = replica_older_than_condition(Version(5, "cn-north-1"), "ap-southeast-1")
    assert not conditional_put(ddb, {"id": key}, condition)


# A version attribute as stored: absent, or a few values, some of them malformed.
timestamp_attrs = st.sampled_from([None, {"N": "1"}, {"N": "2"}, {"S": "1"}])
region_attrs = st.sampled_from([None, {"S": REGIONS[0]}, {"S": REGIONS[1]}])


def version_attrs(timestamp, region) -> dict[str, Any]:
    attrs = {}
    if timestamp is not None:
        attrs[TIMESTAMP_ATTR] = timestamp
    if region is not None:
        attrs[REGION_ATTR] = region
    return attrs


@DB_SETTINGS
@given(
    stored=st.none() | st.tuples(timestamp_attrs, region_attrs),
    image=st.tuples(timestamp_attrs, region_attrs),
)
def test_unchanged_condition_holds_iff_version_attributes_are_the_same(ddb, stored, image):
    key = fresh_id()
    if stored is not None:
        ddb.put_item(
            TableName=TABLE, Item={"id": key, "other": {"S": "x"}, **version_attrs(*stored)}
        )
    # The image may carry other attributes; only the version ones (and existence) matter.
    image_item = {"id": key, "other": {"S": "changed"}, **version_attrs(*image)}
    applied = conditional_put(ddb, {"id": key}, unchanged_condition(image_item, "id"))
    # Compared as stored, type included: an {"S": "1"} timestamp is not {"N": "1"}.
    expected = stored is not None and version_attrs(*stored) == version_attrs(*image)
    assert applied == expected, f"stored={stored} image={image}"


# ---------------------------------------------------------------------------------------
# 2. The wire format
# ---------------------------------------------------------------------------------------


@st.composite
def number_strings(draw) -> str:
    """DynamoDB number text: up to 38 digits, optional sign, decimal point and exponent."""
    digits = draw(st.text("0123456789", min_size=1, max_size=38))
    point = draw(st.none() | st.integers(0, len(digits)))
    if point is not None:
        digits = f"{digits[:point]}.{digits[point:]}"
        if digits == ".":
            digits = "0."
    sign = draw(st.sampled_from(["", "-", "+"]))
    exponent = draw(st.none() | st.tuples(st.sampled_from("eE"), st.sampled_from(["", "+", "-"])))
    text = sign + digits
    if exponent is not None:
        text += exponent[0] + exponent[1] + str(draw(st.integers(0, 125)))
    return text


def dynamodb_holds(text: str) -> bool:
    """DynamoDB's range: zero, or a magnitude from 1E-130 to 9.99...E+125."""
    value = Decimal(text)
    return value.is_zero() or -130 <= value.adjusted() <= 125


numbers = number_strings().filter(dynamodb_holds) | st.sampled_from(
    ["-0.000123", "12345678901234567890123456789012345678", "1E+5", "0", "-0", ".5", "5."]
)
base64_text = st.binary(max_size=20).map(lambda raw: base64.b64encode(raw).decode())
names = st.text(min_size=1, max_size=8)

scalars = st.one_of(
    st.builds(lambda v: {"S": v}, st.text()),
    st.builds(lambda v: {"N": v}, numbers),
    st.builds(lambda v: {"B": v}, base64_text),
    st.builds(lambda v: {"SS": v}, st.lists(st.text(), min_size=1, max_size=4, unique=True)),
    st.builds(lambda v: {"NS": v}, st.lists(numbers, min_size=1, max_size=4, unique=True)),
    st.builds(
        lambda v: {"BS": [base64.b64encode(b).decode() for b in v]},
        st.lists(st.binary(max_size=8), min_size=1, max_size=4, unique=True),
    ),
    st.builds(lambda v: {"BOOL": v}, st.booleans()),
    st.just({"NULL": True}),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.builds(lambda v: {"M": v}, st.dictionaries(names, children, max_size=3)),
        st.builds(lambda v: {"L": v}, st.lists(children, max_size=3)),
    ),
    max_leaves=8,
)
key_values = st.one_of(
    st.builds(lambda v: {"S": v}, st.text(min_size=1)),
    st.builds(lambda v: {"N": v}, numbers),
    st.builds(lambda v: {"B": v}, base64_text),
)


@st.composite
def changes(draw, attribute_values=values) -> wire.Change:
    keys = {"id": draw(key_values)}
    if draw(st.booleans()):
        keys["sk"] = draw(key_values)
    op = draw(st.sampled_from([wire.PUT, wire.DELETE]))
    item = None
    if op == wire.PUT:
        # The keys are part of the item, as in a stream record's NewImage.
        item = {**draw(st.dictionaries(names, attribute_values, max_size=4)), **keys}
    return wire.Change(
        table=draw(st.text(min_size=1, max_size=20)),
        op=op,
        keys=keys,
        version=Version(draw(st.integers(min_value=0)), draw(st.text(min_size=1, max_size=20))),
        origin=draw(st.text(min_size=1, max_size=20)),
        stream_ts_ms=draw(st.integers()),
        item=item,
        event_id=draw(st.text(max_size=20)),
    )


@PURE_SETTINGS
@given(changes(attribute_values=scalars))
def test_wire_round_trip_is_exact_for_flat_items(change):
    # Numbers keep every digit and binary stays the same base64 text: nothing goes through
    # float or bytes on the way. (Scalars and sets only; nested documents are below.)
    assert wire.decode(wire.encode(change)) == change


@PURE_SETTINGS
@given(changes())
def test_wire_round_trip_is_exact_with_maps_and_lists(change):
    assert wire.decode(wire.encode(change)) == change


@PURE_SETTINGS
@given(changes())
def test_equal_keys_give_equal_partition_keys_whatever_their_order(change):
    # All changes to one item must land on one shard, in order.
    reordered = dataclasses.replace(change, keys=dict(reversed(change.keys.items())))
    assert wire.partition_key(reordered) == wire.partition_key(change)


def assert_binary_is_bytes(typed: dict[str, Any], client: dict[str, Any]) -> None:
    (kind, inner), (client_kind, client_inner) = *typed.items(), *client.items()
    assert kind == client_kind
    if kind == "B":
        assert client_inner == base64.b64decode(inner)
        assert isinstance(client_inner, bytes)
    elif kind == "BS":
        assert client_inner == [base64.b64decode(member) for member in inner]
        assert all(isinstance(member, bytes) for member in client_inner)
    elif kind == "M":
        assert client_inner.keys() == inner.keys()
        for name in inner:
            assert_binary_is_bytes(inner[name], client_inner[name])
    elif kind == "L":
        assert len(client_inner) == len(inner)
        for member, client_member in zip(inner, client_inner, strict=True):
            assert_binary_is_bytes(member, client_member)
    else:
        assert client_inner == inner


@PURE_SETTINGS
@given(values)
def test_client_form_round_trips_and_carries_binary_as_bytes(value):
    client = wire.to_client(value)
    assert_binary_is_bytes(value, client)
    assert wire.from_client(client) == value


# -- malformed input -----------------------------------------------------------------------

DROP = object()


def valid_doc() -> dict[str, Any]:
    return json.loads(
        wire.encode(
            wire.Change(
                table="t",
                op=wire.PUT,
                keys={"id": {"S": "k"}},
                version=Version(5, "cn-north-1"),
                origin="cn-north-1",
                stream_ts_ms=1,
                item={"id": {"S": "k"}, "a": {"S": "x"}},
            )
        )
    )


def with_changes(**fields: Any) -> bytes:
    """The valid document with some top-level fields replaced, or dropped (DROP)."""
    doc = valid_doc()
    for name, value in fields.items():
        if value is DROP:
            del doc[name]
        else:
            doc[name] = value
    return json.dumps(doc).encode()


def with_attribute(value: Any) -> bytes:
    return with_changes(item={"id": {"S": "k"}, "a": value})


def nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"S": "leaf"}
    for level in range(levels):
        value = {"M": {"m": value}} if level % 2 else {"L": [value]}
    return value


def test_valid_doc_decodes():
    # The malformed cases below each change one thing in this document.
    assert wire.decode(json.dumps(valid_doc()).encode()).keys == {"id": {"S": "k"}}


def test_nesting_up_to_the_limit_is_accepted():
    # DynamoDB's own limit: a legitimate item must not be called malformed.
    assert wire.decode(with_attribute(nested(wire.MAX_DEPTH))).item["a"] == nested(wire.MAX_DEPTH)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(b"{not json", "not JSON", id="not-json"),
        pytest.param(b"\xff\xfe\x00garbage", "not JSON", id="not-utf8"),
        pytest.param(b"[]", "not a ddb-replication document", id="not-an-object"),
        pytest.param(with_changes(format="other"), "not a ddb-replication", id="wrong-format"),
        pytest.param(with_changes(format=DROP), "not a ddb-replication", id="no-format"),
        pytest.param(with_changes(v=2), "unsupported wire version", id="wrong-wire-version"),
        pytest.param(with_changes(table=""), "table", id="empty-table"),
        pytest.param(with_changes(op="UPDATE"), "op must be", id="unknown-op"),
        pytest.param(with_changes(origin=DROP), "origin", id="no-origin"),
        pytest.param(with_changes(version=DROP), "version", id="missing-version"),
        pytest.param(with_changes(version="5"), "version", id="version-not-object"),
        pytest.param(
            with_changes(version={"timestamp": -1, "region": "r"}), "timestamp", id="negative-ts"
        ),
        pytest.param(
            with_changes(version={"timestamp": 1.5, "region": "r"}), "timestamp", id="float-ts"
        ),
        pytest.param(
            with_changes(version={"timestamp": "5", "region": "r"}), "timestamp", id="string-ts"
        ),
        pytest.param(
            with_changes(version={"timestamp": True, "region": "r"}), "timestamp", id="bool-ts"
        ),
        pytest.param(
            with_changes(version={"timestamp": 5, "region": ""}), "region", id="empty-region"
        ),
        pytest.param(with_changes(version={"timestamp": 5}), "region", id="missing-region"),
        pytest.param(with_changes(stream_ts_ms="1"), "stream_ts_ms", id="bad-stream-ts"),
        pytest.param(with_changes(keys={}), "keys", id="no-keys"),
        pytest.param(
            with_changes(keys={"id": {"M": {}}}), "must be of type S, N or B", id="map-key"
        ),
        pytest.param(with_changes(item=DROP), "whole item", id="put-without-item"),
        pytest.param(with_changes(item={}), "whole item", id="put-with-empty-item"),
        pytest.param(
            with_changes(item={"a": {"S": "x"}}), "key attribute 'id'", id="item-missing-key"
        ),
        pytest.param(
            with_changes(item={"id": {"S": "other"}}), "key attribute 'id'", id="item-other-key"
        ),
        pytest.param(with_attribute({"X": "1"}), "unknown type 'X'", id="unknown-type"),
        pytest.param(with_attribute("plain"), "not a typed", id="untyped-value"),
        pytest.param(with_attribute({"S": "x", "N": "1"}), "not a typed", id="two-type-tags"),
        pytest.param(
            with_attribute(nested(wire.MAX_DEPTH + 1)), "deeper than 32", id="nested-too-deep"
        ),
        pytest.param(with_attribute({"N": "abc"}), "bad N", id="N-letters"),
        pytest.param(with_attribute({"N": ""}), "bad N", id="N-empty"),
        pytest.param(with_attribute({"N": "1.2.3"}), "bad N", id="N-two-points"),
        pytest.param(with_attribute({"N": 5}), "bad N", id="N-json-number"),
        pytest.param(with_attribute({"N": "1\n"}), "bad N", id="N-trailing-newline"),
        pytest.param(with_attribute({"N": "\u0661\u0662"}), "bad N", id="N-non-ascii-digits"),
        pytest.param(with_attribute({"NS": ["1", "x"]}), "bad NS", id="NS-member"),
        pytest.param(with_attribute({"NS": []}), "bad NS", id="NS-empty"),
        pytest.param(with_attribute({"B": "not base64!"}), "bad B", id="B-not-base64"),
        pytest.param(with_attribute({"B": "QQ"}), "bad B", id="B-bad-padding"),
        pytest.param(with_attribute({"BS": []}), "bad BS", id="BS-empty"),
        pytest.param(with_attribute({"BOOL": "true"}), "bad BOOL", id="BOOL-string"),
        pytest.param(with_attribute({"NULL": False}), "bad NULL", id="NULL-false"),
        pytest.param(with_attribute({"M": []}), "M must hold", id="M-not-object"),
        pytest.param(with_attribute({"L": {}}), "L must hold", id="L-not-list"),
        # Garbage must still come back as MalformedChange, not an exception from json.
        pytest.param(b"[" * 100_000, "not JSON", id="json-nested-past-recursion-limit"),
        pytest.param(
            b'{"format":"ddb-replication","v":1' + b"0" * 5000 + b"}",
            "",
            id="json-integer-over-4300-digits",
        ),
    ],
)
def test_malformed_input_raises_malformed_change(data, message):
    with pytest.raises(wire.MalformedChange) as raised:
        wire.decode(data)
    assert message in str(raised.value)
    assert str(raised.value)  # says what is wrong


# ---------------------------------------------------------------------------------------
# 3. Signed records: what verifies is exactly what was signed
# ---------------------------------------------------------------------------------------

RING = SigningKeys.generate("k1")


@PURE_SETTINGS
@given(change=changes(), big=st.booleans())
def test_a_packed_change_unpacks_to_itself_and_verifies(change, big):
    if big and change.op == wire.PUT:  # so large it only fits compressed
        change = dataclasses.replace(change, item={**change.item, "pad": {"S": "\x00" * 300_000}})
    received = wire.unpack(wire.pack(change, RING))
    assert received.change == change
    RING.verify(received.payload, received.signature)


@PURE_SETTINGS
@given(change=changes(), data=st.data())
def test_any_altered_byte_is_refused(change, data):
    """Flip one byte anywhere in a signed record: it no longer decodes, or its signature no
    longer verifies, or (a byte of the MAC's base64 padding aside) it is refused."""
    sealed = bytearray(wire.seal(wire.encode(change), RING))
    position = data.draw(st.integers(0, len(sealed) - 1))
    sealed[position] ^= data.draw(st.integers(1, 255))
    try:
        received = wire.unpack(bytes(sealed))
        if received.signature is None:
            return  # the sig member itself was mangled away: refused as unsigned
        RING.verify(received.payload, received.signature)
    except (wire.MalformedChange, BadSignature):
        return
    pytest.fail(f"an altered record verified (byte {position})")


@PURE_SETTINGS
@given(steps=st.lists(st.sampled_from(["next", "promote", "retire"]), max_size=12))
def test_rotation_steps_keep_the_ring_sound(steps):
    """Any sequence of rotation steps keeps at most three keys, the current one among them,
    and never drops the key that was current before the last promotion."""
    ring, serial, previous = RING, 0, None
    for step in steps:
        if step == "next":
            serial += 1
            ring = ring.with_next(f"k-{serial}", bytes([serial]) * 32)
        elif step == "promote":
            newest = list(ring.keys)[-1]
            if newest != ring.current:
                previous, ring = ring.current, ring.promoted(newest)
        else:
            ring = ring.retired()
        assert 1 <= len(ring.keys) <= 3 and ring.current in ring.keys
        if previous is not None and previous != ring.current:
            assert previous in ring.keys
