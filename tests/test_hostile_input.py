"""No input can hold a shard: hostile and oversized records are isolated, reported once, in a
message SQS takes, and counted truly. SQS's byte limit and DynamoDB's 38 digits are imitated
(tests/aws_limits.py), since moto enforces neither."""

from __future__ import annotations

import base64
import dataclasses
import json
import os

import pytest
from botocore.exceptions import ClientError

from emulator.resources import SIGNING_KEYS
from replication import wire
from replication.failures import QUEUE_MAX_MESSAGE_BYTES, FailureQueue
from replication.versions import Version, now_ms
from tests.aws_limits import SqsLimits, imitate_limits
from tests.helpers import item, kinesis_event, mutated, put, queue_messages, stream_records

CN, SG = "cn-north-1", "ap-southeast-1"


def utf8(text: str) -> int:
    return len(text.encode())


def unreadable(record: dict) -> dict:
    """A stream record the sender can never handle: its event name is unknown."""
    return mutated(record, eventName="TRUNCATE")


def refuse(function, method: str, code: str, message: str = "no", table=None, when=None) -> None:
    """Make the function's DynamoDB client fail `method` with `code` (for `table` only, and
    only when `when(kwargs)` holds, if given); every other call goes through."""
    real = function.clients("dynamodb")

    class Refusing:
        def __getattr__(self, name):
            call = getattr(real, name)
            if name != method:
                return call

            def refused(**kwargs):
                if (table and kwargs.get("TableName") != table) or (when and not when(kwargs)):
                    return call(**kwargs)
                raise ClientError({"Error": {"Code": code, "Message": message}}, method)

            return refused

    function.clients._clients["dynamodb"] = Refusing()


def peer_put(key: str, **attrs: str) -> wire.Change:
    """A change from ap-southeast-1 carrying its item's own version."""
    version = Version(now_ms() - 1_000, SG)
    keys = {"PK": {"S": key}}
    body = {**keys, **{k: {"S": v} for k, v in attrs.items()}, **version.to_typed()}
    return wire.Change("user-sg", wire.PUT, keys, version, SG, version.timestamp, body)


def big_put(node, key: str, **attrs: str) -> None:
    item = {"PK": {"S": key}, **{k: {"S": v} for k, v in attrs.items()}}
    item.update(Version(now_ms(), node.name).to_typed())
    node.client("dynamodb").put_item(TableName=node.table, Item=item)


# -- reports that always fit ---------------------------------------------------------------

CHINESE = "数据复制跨越边境" * 16_250  # 130,000 characters, 390,000 bytes of UTF-8
CONTROL = "".join(chr(i % 32) for i in range(300_000))  # JSON writes most as \u00XX


@pytest.mark.parametrize(
    ("name", "value"),
    [("chinese", CHINESE), ("control", CONTROL), ("noncharacters", "\uffff\ufffe" * 60_000)],
)
def test_a_poison_report_of_a_huge_record_fits_the_queue(regions, name, value):
    cn = regions.china
    sqs = imitate_limits(cn.sender)
    big_put(cn, "big", text=value)
    put(cn, "next", now=now_ms())
    records = stream_records(cn)
    response = cn.sender.handle({"Records": [unreadable(records[0]), records[1]]})

    assert response == {"batchItemFailures": []}, sqs.refused
    assert sqs.refused == []
    [body] = sqs.sent
    assert utf8(body) <= QUEUE_MAX_MESSAGE_BYTES
    report = json.loads(body)
    assert "unknown eventName 'TRUNCATE'" in report["reason"]
    assert report["keys"] == {"PK": {"S": "big"}}
    assert report["record_truncated"]  # as much of the record as fits
    assert report["event_id"] == records[0]["eventID"]
    assert cn.sender.last_counts["poison"] == 1 and cn.sender.last_counts["shipped"] == 1


def test_a_report_of_a_megabyte_kinesis_record_fits(regions):
    cn = regions.china
    sqs = imitate_limits(cn.replicator)
    garbage = os.urandom(1024 * 1024 + 1)
    response = cn.replicator.handle(kinesis_event(cn, [garbage]))

    assert response == {"batchItemFailures": []}
    [body] = sqs.sent
    report = json.loads(body)
    assert utf8(body) <= QUEUE_MAX_MESSAGE_BYTES and "undecodable" in report["reason"]
    assert report["sequence_number"] == "1000"


def test_every_field_is_cut_and_a_stub_always_fits():
    queue = FailureQueue(sqs=None, url="", function="replicator")
    huge = "错" * 400_000
    # Reason, keys and record all far too long: each is cut.
    report = json.loads(queue.body(huge, {"eventID": "e1", "data": huge}, {"PK": {"S": huge}}))
    assert len(report["reason"]) <= 2_001 and report["keys"] is None
    assert report["keys_truncated"] and report["record_truncated"]
    # Even the record's locators far too long: a stub of reason, event ID and place.
    stub = queue.body(huge, {"eventID": huge, "eventSourceARN": huge}, None)
    assert utf8(stub) <= QUEUE_MAX_MESSAGE_BYTES
    assert json.loads(stub)["record_omitted"] is True


def test_a_long_error_from_the_table_is_cut(regions, monkeypatch):
    cn = regions.china
    sqs = imitate_limits(cn.replicator)
    message = "ValidationException detail " * 20_000
    refuse(cn.replicator, "put_item", "ValidationException", message, table="user-cn")
    response = cn.replicator.handle(kinesis_event(cn, [peer_put("u1")]))
    assert response == {"batchItemFailures": []}
    [body] = sqs.sent
    assert utf8(body) <= QUEUE_MAX_MESSAGE_BYTES
    assert json.loads(body)["reason"].startswith("user-cn rejected the change")


# -- reported once, counted once -----------------------------------------------------------


def test_a_poison_record_is_reported_once_however_often_its_batch_is_retried(regions):
    cn = regions.china
    put(cn, "a", now=now_ms())
    records = stream_records(cn)
    poison = unreadable(records[0])
    for _ in range(3):  # the mapping retrying the batch from an earlier failure
        cn.sender.handle({"Records": [poison]})
    assert len(queue_messages(cn, cn.region.sender_queue_url)) == 1
    assert cn.sender.last_counts.get("poison", 0) == 0
    assert cn.sender.last_counts["poison_repeat"] == 1


def test_a_report_that_could_not_be_sent_is_sent_on_the_retry(regions):
    cn = regions.china
    put(cn, "a", now=now_ms())
    poison = unreadable(stream_records(cn)[0])
    sqs = cn.sender.clients("sqs")

    class Down:
        def send_message(self, **kwargs):
            raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "x"}}, "Send")

    cn.sender.clients._clients["sqs"] = Down()
    with pytest.raises(Exception):  # noqa: B017 - every record failed: the mapping retries
        cn.sender.handle({"Records": [poison]})
    cn.sender.clients._clients["sqs"] = sqs
    cn.sender.handle({"Records": [poison]})
    assert len(queue_messages(cn, cn.region.sender_queue_url)) == 1


def test_nothing_counts_as_shipped_when_shipping_raised(regions, monkeypatch):
    cn = regions.china
    put(cn, "a", now=now_ms())
    put(cn, "b", now=now_ms())

    def broken(records):
        raise RuntimeError("the proxy is down")

    monkeypatch.setattr(cn.sender.peer, "put_records", broken)
    with pytest.raises(RuntimeError):
        cn.sender.handle({"Records": stream_records(cn)})
    assert cn.sender.last_counts == {"failed": 2, "peer_credential_refreshes": 0}


# -- permanent errors are poison, infrastructure errors are retried --------------------------


@pytest.mark.parametrize("code", ["ResourceNotFoundException", "ValidationException"])
def test_a_restamp_the_table_refuses_for_good_is_poison(regions, code):
    cn = regions.china
    put(cn, "unstamped-1", name="x")  # no version: the sender stamps it
    put(cn, "fine", now=now_ms())
    refuse(cn.sender, "update_item", code)
    response = cn.sender.handle({"Records": stream_records(cn)})
    assert response == {"batchItemFailures": []}
    [report] = queue_messages(cn, cn.region.sender_queue_url)
    assert code in report["reason"] and report["keys"] == {"PK": {"S": "unstamped-1"}}
    assert cn.sender.last_counts["shipped"] == 1


def test_a_missing_table_while_re_deleting_is_poison(regions):
    cn = regions.china
    put(cn, "u1", now=now_ms())
    cn.client("dynamodb").delete_item(TableName="user-cn", Key={"PK": {"S": "u1"}})
    records = stream_records(cn)
    refuse(cn.sender, "delete_item", "ResourceNotFoundException", table="user-cn")
    response = cn.sender.handle({"Records": records})
    assert response == {"batchItemFailures": []}
    [report] = queue_messages(cn, cn.region.sender_queue_url)
    assert "ResourceNotFoundException" in report["reason"]


def test_a_broken_tombstone_table_is_retried_not_poison(regions):
    cn = regions.china
    put(cn, "u1", now=now_ms())
    cn.client("dynamodb").delete_item(TableName="user-cn", Key={"PK": {"S": "u1"}})
    records = stream_records(cn)
    # Its tombstone write fails (a poison-report row, which carries no version, would not).
    refuse(
        cn.sender,
        "put_item",
        "ResourceNotFoundException",
        table="replication_tombstones",
        when=lambda kwargs: "last_update_timestamp" in kwargs["Item"],
    )
    response = cn.sender.handle({"Records": records})
    assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == [
        records[1]["dynamodb"]["SequenceNumber"]
    ]
    assert queue_messages(cn, cn.region.sender_queue_url) == []


# -- every legal item replicates -----------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["\x01" * 200_000, "".join(chr(i % 32) for i in range(390_000)), CHINESE],
    ids=["200k-control", "390k-control", "390kb-chinese"],
)
def test_every_legal_item_replicates(regions, value):
    """A 200 KB item of control characters is 1.2 MB as JSON, over Kinesis' 1 MiB: it goes
    compressed, and arrives whole."""
    cn, sg = regions.china, regions.world
    big_put(cn, "big", text=value)
    response = cn.sender.handle({"Records": stream_records(cn)})
    assert response == {"batchItemFailures": []}
    assert cn.sender.last_counts["shipped"] == 1

    from tests.helpers import kinesis_records

    [record] = kinesis_records(sg)
    data = base64.b64decode(record["kinesis"]["data"])
    assert len(data) + len(record["kinesis"]["partitionKey"]) <= wire.MAX_RECORD_BYTES
    sg.replicator.handle({"Records": [record]})
    assert item(sg, "big")["text"] == {"S": value}


def test_a_decompression_bomb_is_poison(regions):
    import gzip

    cn = regions.china
    bomb = gzip.compress(b"{" + b" " * (wire.MAX_DECOMPRESSED_BYTES + 10) + b"}")
    response = cn.replicator.handle(kinesis_event(cn, [bomb]))
    assert response == {"batchItemFailures": []}
    [report] = queue_messages(cn, cn.region.replicator_queue_url)
    assert "decompresses to more than" in report["reason"]


def test_sqs_limits_imitation_refuses_what_sqs_refuses(regions):
    """The imitation itself: without it these tests would pass on moto for the wrong reason."""
    sqs = SqsLimits(regions.china.client("sqs"))
    url = regions.china.region.sender_queue_url
    with pytest.raises(ClientError, match="shorter than"):
        sqs.send_message(QueueUrl=url, MessageBody="数" * 90_000)  # 270,000 bytes
    with pytest.raises(ClientError, match="Invalid characters"):
        sqs.send_message(QueueUrl=url, MessageBody="\uffff")
    sqs.send_message(QueueUrl=url, MessageBody="数" * 80_000)  # 240,000 bytes


def test_signed_keys_reach_the_replicator_intact_after_compression(regions):
    cn = regions.china
    value = "\x02" * 200_000
    data = wire.pack(peer_put("c", text=value), SIGNING_KEYS)
    assert data[:2] == b"\x1f\x8b"
    cn.replicator.handle(kinesis_event(cn, [data]))
    assert item(cn, "c")["text"] == {"S": value}


# -- found by attacking the change (a red-team review); each was a way to hold a shard ------


@pytest.mark.parametrize("key", ["k" * 2_040, "\x01" * 340], ids=["2040-bytes", "340-controls"])
def test_an_item_with_a_long_key_replicates_and_its_delete_too(regions, key):
    """key_id, the JSON of table and keys, outgrew the tombstone table's 2,048-byte partition
    key: every delete, and with real DynamoDB's read limit every write, held the shard."""
    cn, sg = regions.china, regions.world
    for node in (cn, sg):
        imitate_limits(node.sender)
        imitate_limits(node.replicator)
    put(cn, key, now=now_ms(), name="long")
    cn.client("dynamodb").delete_item(TableName="user-cn", Key={"PK": {"S": key}})
    put(cn, key, now=now_ms() + 5, name="again")
    assert cn.sender.handle({"Records": stream_records(cn)}) == {"batchItemFailures": []}
    from tests.helpers import kinesis_records

    assert sg.replicator.handle({"Records": kinesis_records(sg)}) == {"batchItemFailures": []}
    assert item(sg, key)["name"] == {"S": "again"}
    assert cn.sender.last_counts["shipped"] == 3


def test_a_version_of_absurd_magnitude_is_poison_at_once(regions):
    """1E+5000 is an 11-character number DynamoDB could never hold; turning it into an int
    raised (Python's 4,300-digit limit), and 1E+1000000 took seconds per call."""
    import time

    cn = regions.china
    absurd = []
    for magnitude in ("1E+5000", "1E+1000000"):
        change = peer_put("u1")
        stamped = {**change.item, "last_update_timestamp": {"N": magnitude}}
        absurd.append(dataclasses.replace(change, item=stamped))
    started = time.monotonic()
    response = cn.replicator.handle(kinesis_event(cn, [*absurd, peer_put("after")]))
    assert response == {"batchItemFailures": []}
    assert time.monotonic() - started < 5
    assert item(cn, "after") is not None
    reports = queue_messages(cn, cn.region.replicator_queue_url)
    assert len(reports) == 2 and all("bad N value" in r["reason"] for r in reports)


def test_the_senders_counts_say_failed_when_its_tombstone_read_fails(regions):
    cn = regions.china
    put(cn, "a", now=now_ms())
    cn.sender.handle({"Records": stream_records(cn)})
    assert cn.sender.last_counts["shipped"] == 1
    put(cn, "b", now=now_ms())
    refuse(cn.sender, "batch_get_item", "ProvisionedThroughputExceededException")
    with pytest.raises(Exception, match="ProvisionedThroughputExceeded"):
        cn.sender.handle({"Records": stream_records(cn)[1:]})
    assert cn.sender.last_counts["failed"] == 1 and "shipped" not in cn.sender.last_counts


def test_the_imitation_counts_all_of_a_numbers_digits():
    from tests.aws_limits import significant_digits

    assert significant_digits("1" * 39) == 39
    assert significant_digits(str(10**38)) == 1
    assert significant_digits("-0.000000000000000000000000000000000000001") == 1


def test_a_poison_record_without_an_event_id_or_with_a_huge_one_is_reported_once(regions):
    cn = regions.china
    for event_id in (None, "x" * 5_000):
        record = kinesis_event(cn, [b"\x00 not a change"])["Records"][0]
        if event_id is None:
            del record["eventID"]
        else:
            record["eventID"] = event_id
        for _ in range(3):
            cn.replicator.handle({"Records": [record]})
    assert len(queue_messages(cn, cn.region.replicator_queue_url)) == 2
