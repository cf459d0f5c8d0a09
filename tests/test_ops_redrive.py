"""ops.py redrive, against the emulator: batches the mappings gave up on are read back from
their streams and replayed; what the streams no longer hold, and poison records, are reported
and left in the queues.

One deployment serves every test. Its mappings give up after one retry, so that breaking a
function for a few seconds fills its failure queue with genuine on-failure records.
"""

from __future__ import annotations

import json
import time

import pytest

from deployment.names import CHINA, GLOBAL
from deployment.tables import scan_all
from emulator import events
from emulator.esm import EventSourceMapping, MappingConfig
from emulator.resources import SIGNING_KEYS
from emulator.stream_sources import DynamoDBStreamSource, KinesisSource
from replication import wire
from replication.failures import FailureQueue
from replication.stamping import stamp
from replication.tombstones import EXPIRY_ATTR
from replication.tombstones import KEY_ATTR as TOMBSTONE_KEY
from replication.versions import Version, now_ms
from tests.helpers import emulator_running
from tools import ops
from tools.operations.redrive import classify
from tools.operations.stream_ranges import FailedBatch, RangeLost, collect_range

WAIT_S = 45
# Give up on a batch after one retry, whole (a batch whose every record fails is a function
# error, which would otherwise be bisected down to single records): on-failure records
# covering several records, within seconds of a breakage.
GIVE_UP_FAST = {
    "batch_size": 100,
    "parallelization_factor": 1,
    "maximum_retry_attempts": 1,
    "bisect_on_error": False,
}


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    with emulator_running(
        tmp_path_factory.mktemp("emulator"),
        latency_ms=5,
        sender_mapping=MappingConfig(**GIVE_UP_FAST, poll_interval_s=0.25),
        replicator_mapping=MappingConfig(**GIVE_UP_FAST, poll_interval_s=0.5),
    ) as running:
        yield running


@pytest.fixture(autouse=True)
def empty_queues(request):
    """Each test of the deployment starts with empty failure queues (whatever the last one
    left, even non-JSON)."""
    if "deployment" not in request.fixturenames:
        return
    deployment = request.getfixturevalue("deployment")
    for region in (CHINA, GLOBAL):
        r = deployment.regions[region]
        sqs = r.client("sqs")
        for url in (r.sender_queue_url, r.replicator_queue_url):
            while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get(
                "Messages"
            ):
                for message in messages:
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def redrive(deployment, capsys, region: str, *options: str) -> tuple[int, str]:
    """Run `ops.py redrive` for a region; its exit code and stdout."""
    capsys.readouterr()
    code = ops.main(
        [
            "redrive",
            "--region",
            region,
            "--endpoint-url",
            deployment.endpoint_url,
            # The sender reaches the peer's Kinesis through the link, as the deployed one does.
            "--peer-endpoint-url",
            deployment.links[deployment.names[region].peer_region].url,
            "--quiet",
            *options,
        ]
    )
    return code, capsys.readouterr().out


def queue_counts(deployment, region: str, kind: str) -> tuple[int, int]:
    """Messages (visible, in flight) in a region's sender or replicator failure queue."""
    r = deployment.regions[region]
    url = r.sender_queue_url if kind == "sender" else r.replicator_queue_url
    attributes = r.client("sqs").get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )


def wait_for(condition, timeout_s: float = WAIT_S) -> bool:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def keys_in(deployment, region: str, prefix: str) -> set[str]:
    """The keys starting with `prefix` in a region's table."""
    r = deployment.regions[region]
    items = scan_all(r.client("dynamodb"), r.names.tables[0])
    return {i["PK"]["S"] for i in items if i["PK"]["S"].startswith(prefix)}


def write(deployment, region: str, key: str) -> None:
    r = deployment.regions[region]
    item = stamp({"PK": {"S": key}, "n": {"S": key}}, region, typed=True)
    r.client("dynamodb").put_item(TableName=r.names.tables[0], Item=item)


def gave_up_on(deployment, mapping: str, records: int, before: int) -> bool:
    """The mapping has sent `records` more records' batches to its on-failure queue."""
    return deployment.mappings[mapping].stats.sent_to_failure_destination - before >= records


def test_replicator_batches_are_read_back_from_kinesis_and_replayed(deployment, capsys):
    keys = [f"rep-{i}" for i in range(5)]
    for key in keys:
        write(deployment, CHINA, key)
    assert wait_for(lambda: keys_in(deployment, GLOBAL, "rep-") == set(keys))

    # Without its tombstone table the replicator in ap-southeast-1 can't apply a delete.
    world = deployment.regions[GLOBAL]
    ddb = world.client("dynamodb")
    tombstones = world.names.tombstone_table
    ddb.delete_table(TableName=tombstones)
    mapping = f"replicator-{GLOBAL}"
    before = deployment.mappings[mapping].stats.sent_to_failure_destination
    china = deployment.regions[CHINA]
    for key in keys:
        china.client("dynamodb").delete_item(
            TableName=china.names.tables[0], Key={"PK": {"S": key}}
        )
    assert wait_for(lambda: gave_up_on(deployment, mapping, len(keys), before))
    messages = queue_counts(deployment, GLOBAL, "replicator")[0]
    assert messages >= 1
    assert keys_in(deployment, GLOBAL, "rep-") == set(keys)  # the deletes never arrived

    ddb.create_table(
        TableName=tombstones,
        KeySchema=[{"AttributeName": TOMBSTONE_KEY, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": TOMBSTONE_KEY, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.update_time_to_live(
        TableName=tombstones,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": EXPIRY_ATTR},
    )

    # A dry run finds every record still on the stream, and changes nothing.
    code, out = redrive(deployment, capsys, GLOBAL, "--function", "replicator", "--dry-run")
    assert code == 0, out
    assert "dry run" in out and "every message can be redriven" in out
    assert queue_counts(deployment, GLOBAL, "replicator") == (messages, 0)
    assert keys_in(deployment, GLOBAL, "rep-") == set(keys)

    echoes = deployment.mappings[f"sender-{GLOBAL}-{world.names.tables[0]}"].stats
    delivered = echoes.delivered
    code, out = redrive(deployment, capsys, GLOBAL, "--function", "replicator", "--json")
    assert code == 0, out
    result = json.loads(out)
    assert result["region"] == GLOBAL and result["dry_run"] is False and result["complete"]
    assert result["items"] == []
    assert set(result["functions"]) == {"replicator"}
    counts = result["functions"]["replicator"]
    assert counts["queue"] == world.names.replicator_failure_queue
    assert counts["messages"] == counts["redriven"] == messages
    assert counts["records_replayed"] >= len(keys)
    assert counts["unrecoverable"] == counts["poison_left"] == counts["failed"] == 0
    assert queue_counts(deployment, GLOBAL, "replicator") == (0, 0)
    assert keys_in(deployment, GLOBAL, "rep-") == set()
    # The deletes come round on the table's stream; the sender knows them for echoes.
    assert wait_for(lambda: echoes.delivered - delivered >= len(keys))
    assert queue_counts(deployment, GLOBAL, "sender") == (0, 0)
    assert keys_in(deployment, CHINA, "rep-") == set()


def test_sender_batches_are_kept_while_the_peer_is_unreachable_then_shipped(deployment, capsys):
    link = deployment.links[GLOBAL]  # what the sender in cn-north-1 ships through
    mapping = f"sender-{CHINA}-{deployment.names[CHINA].tables[0]}"
    before = deployment.mappings[mapping].stats.sent_to_failure_destination
    keys = [f"send-{i}" for i in range(5)]
    link.set_link(False)
    try:
        for key in keys:
            write(deployment, CHINA, key)
        assert wait_for(lambda: gave_up_on(deployment, mapping, len(keys), before))
        messages = queue_counts(deployment, CHINA, "sender")[0]
        assert messages >= 1

        # Replayed into a link that is still down: nothing shipped, every message kept.
        code, out = redrive(deployment, capsys, CHINA, "--function", "sender")
        assert code == 1, out
        failed = [line for line in out.splitlines() if line.startswith("failed")]
        assert len(failed) == messages
        assert all("not accepted by the peer stream" in line for line in failed)
        assert queue_counts(deployment, CHINA, "sender") == (messages, 0)
    finally:
        link.set_link(True)
    assert keys_in(deployment, GLOBAL, "send-") == set()

    code, out = redrive(deployment, capsys, CHINA, "--function", "sender")
    assert code == 0, out
    assert "every message was redriven" in out
    [row] = [line.split() for line in out.splitlines() if line.startswith("sender")]
    assert row[1:3] == [str(messages), str(messages)]  # messages, redriven
    assert int(row[3]) >= len(keys)  # records replayed
    assert queue_counts(deployment, CHINA, "sender") == (0, 0)
    # Shipped to the peer's stream; its replicator applies them.
    assert wait_for(lambda: keys_in(deployment, GLOBAL, "send-") == set(keys))


def failure_message(source, shard_id: str, sequences: list[int]) -> str:
    """The on-failure record the emulator's mapping sends for a batch with these sequence
    numbers."""
    now = time.time()
    if isinstance(source, DynamoDBStreamSource):
        batch = [
            {"dynamodb": {"SequenceNumber": str(n), "ApproximateCreationDateTime": now}}
            for n in sequences
        ]
    else:
        batch = [
            {"kinesis": {"sequenceNumber": str(n), "approximateArrivalTimestamp": now}}
            for n in sequences
        ]
    mapping = EventSourceMapping("test", source, lambda event: None, MappingConfig(), print)
    return json.dumps(mapping.failure_message(shard_id, batch, "RetryAttemptsExhausted", 2))


def test_ranges_the_streams_no_longer_hold_are_reported_and_kept(deployment, capsys):
    world = deployment.regions[GLOBAL]
    sqs = world.client("sqs")
    # Sequence numbers past anything the replication stream holds: records long gone.
    replication = KinesisSource(
        world.client("kinesis"),
        world.names.replication_stream,
        world.replication_stream_arn,
        GLOBAL,
    )
    gone = failure_message(replication, "shardId-000000000000", list(range(10**9, 10**9 + 5)))
    sqs.send_message(QueueUrl=world.replicator_queue_url, MessageBody=gone)
    sqs.send_message(QueueUrl=world.replicator_queue_url, MessageBody="hello")
    # The stream of a table that no longer exists.
    streams = world.client("dynamodbstreams")
    table_stream = world.stream_arns[world.names.tables[0]]
    shard = streams.describe_stream(StreamArn=table_stream)["StreamDescription"]["Shards"][0]
    first = int(shard["SequenceNumberRange"]["StartingSequenceNumber"])
    dropped = failure_message(
        DynamoDBStreamSource(streams, table_stream.replace("/user-sg/", "/user-gone/"), GLOBAL),
        shard["ShardId"],
        [first, first + 1],
    )
    sqs.send_message(QueueUrl=world.sender_queue_url, MessageBody=dropped)

    code, out = redrive(deployment, capsys, GLOBAL, "--json")
    assert code == 1, out
    result = json.loads(out)
    assert not result["complete"]
    by_status = {}
    for item in result["items"]:
        by_status.setdefault(item["status"], []).append(item)
    assert len(by_status["unrecoverable"]) == 2
    repairs = {item["function"]: item["repair"] for item in by_status["unrecoverable"]}
    command = "python tools/ops.py verify --region ap-southeast-1 --table {} --repair"
    assert repairs["replicator"] == f"run `{command.format('user-sg')}`"
    assert repairs["sender"] == f"run `{command.format('user-gone')}`"
    reasons = {item["function"]: item["reason"] for item in by_status["unrecoverable"]}
    assert str(10**9) in reasons["replicator"]
    assert "no longer exists" in reasons["sender"]
    assert by_status["unrecognised"][0]["reason"] == "not JSON"
    assert result["functions"]["replicator"]["unrecoverable"] == 1
    assert result["functions"]["replicator"]["unrecognised"] == 1
    assert result["functions"]["sender"]["unrecoverable"] == 1
    # Kept, and visible again at once for the next run.
    assert queue_counts(deployment, GLOBAL, "replicator") == (2, 0)
    assert queue_counts(deployment, GLOBAL, "sender") == (1, 0)

    code, out = redrive(
        deployment, capsys, GLOBAL, "--function", "replicator", "--max-messages", "1"
    )
    assert code == 1
    [row] = [line.split() for line in out.splitlines() if line.startswith("replicator")]
    assert row[1] == "1"  # messages taken
    assert queue_counts(deployment, GLOBAL, "replicator") == (2, 0)


def test_poison_records_are_left_unless_retried(deployment, capsys):
    world = deployment.regions[GLOBAL]
    world.client("kinesis").put_record(
        StreamName=world.names.replication_stream, Data=b"\x00 not a change", PartitionKey="p"
    )
    assert wait_for(lambda: queue_counts(deployment, GLOBAL, "replicator")[0] == 1)
    # A change the table refused until its cause was fixed, reported as the replicator does.
    version = Version(now_ms(), CHINA)
    keys = {"PK": {"S": "poison-fixed"}}
    change = wire.Change(
        "user-cn", wire.PUT, keys, version, CHINA, now_ms(), {**keys, **version.to_typed()}
    )
    [record] = events.kinesis_batch(
        [change], world.replication_stream_arn, GLOBAL, keys=SIGNING_KEYS
    )["Records"]
    FailureQueue(world.client("sqs"), world.replicator_queue_url, "replicator").report(
        "user-sg rejected the change: ValidationException", record, keys
    )

    code, out = redrive(deployment, capsys, GLOBAL, "--function", "replicator")
    assert code == 1, out
    poison = [line for line in out.splitlines() if line.startswith("poison")]
    assert len(poison) == 2
    assert any("undecodable change" in line for line in poison)
    assert any("poison-fixed" in line and "ValidationException" in line for line in poison)
    assert queue_counts(deployment, GLOBAL, "replicator") == (2, 0)
    assert keys_in(deployment, GLOBAL, "poison-fixed") == set()

    code, out = redrive(deployment, capsys, GLOBAL, "--function", "replicator", "--retry-poison")
    assert code == 1, out  # the undecodable one is poison still
    assert keys_in(deployment, GLOBAL, "poison-fixed") == {"poison-fixed"}
    [still] = [line for line in out.splitlines() if line.startswith("poison")]
    assert "still poison: undecodable change" in still
    # The originals are gone; the replicator queued the one that failed again afresh.
    [fresh] = deployment.failure_messages(GLOBAL, "replicator")
    assert fresh["kind"] == "poison-record" and "undecodable change" in fresh["reason"]


def pages(*sequences: list[int], caught_up: bool = True):
    """GetRecords pages of Kinesis records with these sequence numbers."""
    for page in sequences:
        yield [{"SequenceNumber": str(n)} for n in page], caught_up


def batch(start: int, end: int, size: int) -> FailedBatch:
    return FailedBatch("replicator", "arn:stream/s", "shardId-000000000000", start, end, size)


def test_a_range_is_read_by_sequence_numbers_as_integers():
    # 9 < 10 < 11, though "10" < "9" as text.
    found = collect_range(batch(9, 11, 3), pages([8, 9], [10, 11, 12]))
    assert [r["SequenceNumber"] for r in found] == ["9", "10", "11"]
    # Other lanes' records in between are replayed too (harmless): more than the batch is fine.
    assert len(collect_range(batch(9, 12, 2), pages([9, 10, 11, 12]))) == 4


def test_a_range_missing_records_is_lost():
    with pytest.raises(RangeLost, match="no longer holds sequence number 9"):
        collect_range(batch(9, 11, 3), pages([10, 11]))  # trimmed up to 10
    with pytest.raises(RangeLost, match="holds 2 of the batch's 3 records"):
        collect_range(batch(9, 11, 3), pages([9, 11]))
    with pytest.raises(RangeLost, match="holds 1 of the batch's 3 records"):
        collect_range(batch(9, 11, 3), pages([9], [], []))  # the shard ends before the range does


def test_a_sender_batch_from_a_capture_stream_is_read_from_kinesis_and_replayed_by_the_sender():
    # With kinesis capture the sender's mapping reads a Kinesis stream: its on-failure message
    # carries KinesisBatchInfo, yet it is the sender's to replay, from that stream.
    info = {
        "shardId": "shardId-000000000000",
        "startSequenceNumber": "5",
        "endSequenceNumber": "9",
        "batchSize": 3,
        "streamArn": "arn:aws-cn:kinesis:cn-north-1:1:stream/ddb_capture_stream_cn",
    }
    body = json.dumps({"requestContext": {}, "KinesisBatchInfo": info})
    found = classify(body, "sender")
    assert (found.function, found.service, found.start, found.end) == ("sender", "kinesis", 5, 9)
    # Found in the replicator's queue, or with no queue named, Kinesis means the replicator.
    assert classify(body).function == "replicator"
    assert classify(body.replace("KinesisBatchInfo", "DDBStreamBatchInfo")).service == "dynamodb"
