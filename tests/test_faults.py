"""The fault proxy on the cross-region link: forwarding, latency, outages, throttling."""

from __future__ import annotations

import http.client
import json
import random
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ConnectionClosedError

from emulator.faults import THROTTLED, FaultProxy
from tests.helpers import moto_server

REGION = "cn-north-1"
SEED = 7
# Fail on the first error, and never wait long: a dead link must show up as an error, fast.
NO_RETRIES = Config(
    retries={"total_max_attempts": 1}, connect_timeout=2, read_timeout=5, max_pool_connections=16
)


@pytest.fixture(scope="module")
def moto_url():
    with moto_server() as url:
        yield url


@pytest.fixture
def proxy(moto_url):
    with FaultProxy(moto_url, latency_ms=0, seed=SEED) as running:
        yield running


def client(service: str, url: str):
    return boto3.client(service, region_name=REGION, endpoint_url=url, config=NO_RETRIES)


def make_stream(url: str, name: str) -> None:
    kinesis = client("kinesis", url)
    kinesis.create_stream(StreamName=name, ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1})


def stored_data(url: str, stream: str) -> list[bytes]:
    kinesis = client("kinesis", url)
    shard = kinesis.list_shards(StreamName=stream)["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(
        StreamName=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    return [record["Data"] for record in kinesis.get_records(ShardIterator=iterator)["Records"]]


def raw_kinesis_request(connection: http.client.HTTPConnection, target: str, payload: dict):
    """A hand-made Kinesis call, so the test knows every byte that crosses the link."""
    headers = {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": f"Kinesis_20131202.{target}",
        # moto routes by the credential scope; it does not check the signature.
        "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20250101/"
        f"{REGION}/kinesis/aws4_request, SignedHeaders=host, Signature=0",
    }
    connection.request("POST", "/", json.dumps(payload).encode(), headers)
    return connection.getresponse()


def test_kinesis_works_through_the_proxy(proxy, moto_url):
    make_stream(proxy.url, "plain")
    kinesis = client("kinesis", proxy.url)
    kinesis.put_record(StreamName="plain", Data=b"one", PartitionKey="k")
    response = kinesis.put_records(
        StreamName="plain", Records=[{"Data": b"two", "PartitionKey": "k"}] * 2
    )

    assert response["FailedRecordCount"] == 0
    assert all("SequenceNumber" in entry for entry in response["Records"])
    assert stored_data(proxy.url, "plain") == [b"one", b"two", b"two"]
    assert stored_data(moto_url, "plain") == [b"one", b"two", b"two"]
    assert proxy.stats["forwarded_records"] == 2  # only PutRecords records are counted


def test_latency_is_added_per_request_without_serializing_requests(proxy):
    kinesis = client("kinesis", proxy.url)
    kinesis.list_streams()  # warm up: connection and botocore's lazy loading

    proxy.latency_ms = 300
    started = time.monotonic()
    kinesis.list_streams()
    assert time.monotonic() - started >= 0.3

    calls = 8
    with ThreadPoolExecutor(calls) as pool:
        started = time.monotonic()
        list(pool.map(lambda _: kinesis.list_streams(), range(calls)))
        elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < calls * 0.3 / 3

    proxy.latency_ms = 0
    started = time.monotonic()
    kinesis.list_streams()
    assert time.monotonic() - started < 0.3


def test_an_outage_drops_requests_fast_and_then_ends(proxy):
    kinesis = client("kinesis", proxy.url)
    kinesis.list_streams()

    proxy.outage(1.0)
    assert not proxy.link_up
    started = time.monotonic()
    with pytest.raises(ConnectionClosedError):
        kinesis.list_streams()
    assert time.monotonic() - started < 0.5  # a closed connection, not a timeout
    assert proxy.stats["dropped_connections"] == 1

    time.sleep(max(0.0, started + 1.05 - time.monotonic()))
    assert proxy.link_up
    assert "StreamNames" in kinesis.list_streams()
    assert proxy.stats["dropped_connections"] == 1


def test_the_link_can_be_cut_by_hand_and_in_flight_requests_finish(proxy):
    kinesis = client("kinesis", proxy.url)
    proxy.latency_ms = 400
    in_flight = ThreadPoolExecutor(1)
    result = in_flight.submit(kinesis.list_streams)
    time.sleep(0.15)  # the request is now sleeping inside the proxy

    proxy.set_link(False)
    assert "StreamNames" in result.result(timeout=5)
    in_flight.shutdown()
    with pytest.raises(ConnectionClosedError):
        kinesis.list_streams()
    time.sleep(0.2)
    assert not proxy.link_up  # stays down until told otherwise

    proxy.link_up = True
    assert "StreamNames" in kinesis.list_streams()
    assert proxy.stats["dropped_connections"] == 1


def test_throttling_refuses_a_seeded_subset_that_is_never_stored(proxy, moto_url):
    make_stream(moto_url, "throttled")
    proxy.throttle_rate = 0.5
    chooser = random.Random(SEED)
    expected_refused = [chooser.random() < 0.5 for _ in range(50)]
    records = [{"Data": f"record-{i}".encode(), "PartitionKey": f"pk-{i}"} for i in range(50)]

    response = client("kinesis", proxy.url).put_records(StreamName="throttled", Records=records)

    refused = [entry.get("ErrorCode") == THROTTLED for entry in response["Records"]]
    assert refused == expected_refused
    assert 10 < sum(refused) < 40
    assert response["FailedRecordCount"] == sum(refused)
    for entry, was_refused in zip(response["Records"], refused, strict=True):
        if was_refused:
            assert "shardId-000000000000 in stream throttled" in entry["ErrorMessage"]
            assert "SequenceNumber" not in entry
        else:
            assert entry["ShardId"] == "shardId-000000000000" and entry["SequenceNumber"]
    accepted = [r["Data"] for r, no in zip(records, refused, strict=True) if not no]
    assert stored_data(moto_url, "throttled") == accepted
    stats = proxy.stats
    assert stats["throttled_records"] == sum(refused)
    assert stats["forwarded_records"] == len(accepted)


def test_a_fully_refused_batch_never_reaches_the_peer(proxy, moto_url):
    make_stream(moto_url, "refused")
    arn = client("kinesis", moto_url).describe_stream_summary(StreamName="refused")[
        "StreamDescriptionSummary"
    ]["StreamARN"]
    proxy.throttle_rate = 1.0
    records = [{"Data": b"x", "PartitionKey": "k"}] * 3

    response = client("kinesis", proxy.url).put_records(StreamARN=arn, Records=records)

    assert response["FailedRecordCount"] == 3
    assert {entry["ErrorCode"] for entry in response["Records"]} == {THROTTLED}
    message = response["Records"][0]["ErrorMessage"]
    assert message.startswith("Rate exceeded for shard shardId-000000000000 in stream refused")
    assert message.endswith(f"under account {arn.split(':')[4]}.")
    assert proxy.stats["bytes_up"] == 0  # nothing was sent upstream
    assert stored_data(moto_url, "refused") == []


def test_dynamodb_and_sqs_pass_through_untouched(proxy, moto_url):
    proxy.throttle_rate = 1.0  # only Kinesis PutRecords is ever throttled
    dynamodb = client("dynamodb", proxy.url)
    dynamodb.create_table(
        TableName="passthrough",
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    item = {"PK": {"S": "u1"}, "name": {"S": "Li"}, "blob": {"B": bytes(range(256))}}
    dynamodb.put_item(TableName="passthrough", Item=item)
    assert dynamodb.get_item(TableName="passthrough", Key={"PK": {"S": "u1"}})["Item"] == item
    direct = client("dynamodb", moto_url).get_item(TableName="passthrough", Key={"PK": {"S": "u1"}})
    assert direct["Item"] == item

    sqs = client("sqs", proxy.url)
    queue = sqs.create_queue(QueueName="passthrough")["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody="héllo ✓")
    [message] = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=0)["Messages"]
    assert message["Body"] == "héllo ✓"

    # Only the PutRecords target is inspected, whatever else a body carries.
    connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
    records = {"Records": [{"Data": "eA==", "PartitionKey": "k"}]}
    response = raw_kinesis_request(connection, "ListStreams", records)
    assert "StreamNames" in json.loads(response.read())
    connection.close()
    assert proxy.stats["throttled_records"] == 0


def test_stats_count_requests_and_bytes_on_the_link(proxy):
    connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
    received = []
    for _ in range(2):  # the same kept-alive connection serves both
        response = raw_kinesis_request(connection, "ListStreams", {})
        received.append(response.read())
        assert response.status == 200
        assert int(response.getheader("Content-Length")) == len(received[-1])
        assert "StreamNames" in json.loads(received[-1])
    connection.close()

    proxy.set_link(False)
    connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
    with pytest.raises(http.client.RemoteDisconnected):
        raw_kinesis_request(connection, "ListStreams", {})
    connection.close()

    assert proxy.stats == {
        "requests": 3,
        "dropped_connections": 1,
        "throttled_records": 0,
        "forwarded_records": 0,
        "bytes_up": 2 * len(b"{}"),
        "bytes_down": sum(len(data) for data in received),
    }


def test_stop_closes_the_listening_port(moto_url):
    with FaultProxy(moto_url, latency_ms=0) as proxy:
        port = proxy.port
        client("kinesis", proxy.url).list_streams()  # leaves a kept-alive connection open
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
