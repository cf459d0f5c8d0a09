"""Taking over from the original sample (aws-samples/aws-dynamodb-cross-region-replication), as
docs/migrating.md tells an operator to: its applications keep writing, unchanged, throughout.

The sample, as its setup guide builds it, uses the names this project's defaults.json uses:
tables user-cn / user-sg (key PK, NEW_AND_OLD_IMAGES streams), replicator_stats, the streams
ddb_replication_stream_cn / _sg, the queues and the peer-key parameters. Its applications stamp
last_update_timestamp with Decimal(time.time()) (fractional epoch seconds), and its sender
writes each change to the peer's stream as bytes(str(dict)).
"""

from __future__ import annotations

import base64
import io
import random
from decimal import Decimal

import boto3
import pytest

from deployment.names import CHINA, GLOBAL, region_names
from deployment.tables import scan_all
from emulator.stepped import TwoRegions
from replication.versions import SECONDS, now_ms, of_image
from tests.helpers import kinesis_event, queue_messages
from tools.operations import backfill, status, verify
from tools.operations.sides import open_side

NAMES = region_names()
ALIAS = {CHINA: "cn", GLOBAL: "sg"}
NOW = (now_ms() // 1000 - 3600) * 1000  # an hour ago, in milliseconds


def client(service: str, region: str):
    return boto3.client(service, region_name=region)


def sample_item(key: str, region: str, at_ms: int, **attrs: str) -> dict:
    """An item as the sample's applications write it (its load_items.py's convention)."""
    return {
        "PK": {"S": key},
        **{name: {"S": value} for name, value in attrs.items()},
        "last_update_timestamp": {"N": str(Decimal(at_ms / 1000 + 0.000123))},
        "last_updater_region": {"S": region},
    }


def sample_record(event_name: str, image: dict) -> bytes:
    """A change as the sample's sender puts it on the peer's stream."""
    field = "old_image" if event_name == "REMOVE" else "new_image"
    return bytes(str({"event_name": event_name, field: image}), "utf-8")


def run_the_sample() -> None:
    """What the sample's setup guide creates in both regions, after a while of replicating:
    the same items on both sides, except two changes the sample lost (its sender gave up):
    one days ago, and one within the last 24 hours, still in its table's stream."""
    for region, names in NAMES.items():
        ddb = client("dynamodb", region)
        [table] = names.tables
        # The stream is switched on after the old items are written, so they are not in it,
        # as changes older than its 24 hours are not (moto keeps stream records forever).
        ddb.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        ddb.create_table(
            TableName=names.stats_table,
            KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        ddb.put_item(
            TableName=names.stats_table, Item={"PK": {"S": "replicated_count"}, "cnt": {"N": "7"}}
        )
        kinesis = client("kinesis", region)
        kinesis.create_stream(StreamName=names.replication_stream, ShardCount=1)
        for queue in (names.sender_failure_queue, names.replicator_failure_queue):
            client("sqs", region).create_queue(QueueName=queue)
        ssm = client("ssm", region)
        prefix = names.peer_credentials_prefix
        ssm.put_parameter(Name=f"{prefix}AccessKey", Value="AKIASAMPLE", Type="String")
        ssm.put_parameter(Name=f"{prefix}SecretKey", Value="sample-secret", Type="SecureString")
    for i in range(6):
        for region in NAMES:
            item = sample_item(f"user-{i}", CHINA, NOW + i, name=f"name-{i}")
            client("dynamodb", region).put_item(TableName=NAMES[region].tables[0], Item=item)
    lost = sample_item("lost-days-ago", CHINA, NOW + 10, name="only in China")
    client("dynamodb", CHINA).put_item(TableName="user-cn", Item=lost)
    for region, names in NAMES.items():
        client("dynamodb", region).update_table(
            TableName=names.tables[0],
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
    recent = sample_item("lost-today", GLOBAL, NOW + 20, name="only in Singapore")
    client("dynamodb", GLOBAL).put_item(TableName="user-sg", Item=recent)
    # The last changes the sample shipped, still in its streams (its records stay 24 hours).
    for region, names in NAMES.items():
        peer_item = sample_item("user-5", CHINA, NOW + 5, name="name-5")
        client("kinesis", region).put_record(
            StreamName=names.replication_stream,
            Data=sample_record("MODIFY", peer_item),
            PartitionKey="user-5",
        )


def take_over() -> TwoRegions:
    """docs/migrating.md's cut-over, once the sample's mappings are disabled and its streams
    drained: replace the replication streams (their records are in the sample's format), keep
    the tables and the stats table, and deploy with version_unit = "seconds"."""
    for region, names in NAMES.items():
        client("kinesis", region).delete_stream(StreamName=names.replication_stream)
    return TwoRegions(version_unit=SECONDS)


@pytest.fixture
def taken_over(aws):
    run_the_sample()
    return take_over()


def items(node) -> dict[str, dict]:
    return {i["PK"]["S"]: i for i in scan_all(node.client("dynamodb"), node.table)}


def test_the_sample_is_taken_over_without_touching_its_applications(taken_over, tmp_path):
    regions = taken_over
    # The senders read the tables' streams from their oldest record (TRIM_HORIZON): the last
    # day of the sample era is replayed, which recovers a change it lost today.
    regions.settle()
    assert "lost-today" in items(regions.china)
    rng = random.Random(7)
    # Its applications go on writing as they always have; nothing is stamped afresh.
    for n in range(20):
        node = rng.choice(list(regions.nodes.values()))
        key = f"user-{rng.randrange(8)}"
        at = NOW + 60_000 + n * 10
        node.client("dynamodb").put_item(
            TableName=node.table, Item=sample_item(key, node.name, at, name=f"v{n}")
        )
        regions.settle()
    for node in regions.nodes.values():
        for item in items(node).values():
            # Each version is an application's own stamp (0.123 ms past a millisecond): a
            # restamp would have written whole milliseconds.
            assert of_image(item, SECONDS).fraction > 0, item

    # The change it lost days ago is still only in China: a backfill copies it over, and
    # verify then finds the regions equal.
    assert "lost-days-ago" not in items(regions.world)
    china, world = open_side(CHINA), open_side(GLOBAL)
    copy = backfill.Backfill(china, world, "user-cn", checkpoint_path=tmp_path / "ck.json")
    assert copy.run().status() == "finished"
    report = io.StringIO()
    here = verify.TableSide("here", china, "user-cn")
    peer = verify.TableSide("peer", world, "user-sg")
    assert verify.verify(here, peer, segments=1, report=report).in_sync, report.getvalue()
    assert items(regions.china) == items(regions.world)
    assert of_image(items(regions.world)["lost-days-ago"], SECONDS) is not None

    # The sample's own counter in replicator_stats is left alone, and status reads past it.
    for node in regions.nodes.values():
        stats = client("dynamodb", node.name).get_item(
            TableName=NAMES[node.name].stats_table, Key={"PK": {"S": "replicated_count"}}
        )["Item"]
        assert stats["cnt"] == {"N": "7"}
        assert status.region_status(open_side(node.name)).region == node.name


def test_a_record_left_in_the_samples_format_is_isolated_with_what_to_do(taken_over):
    # Had a stream been imported instead of replaced, the sample's last records would meet
    # the replicator: each is poison with the reason, and the records behind it flow on.
    regions = taken_over
    world = regions.world
    legacy = sample_record("MODIFY", sample_item("user-1", CHINA, NOW + 1, name="x"))
    world.replicator.handle(kinesis_event(world, [legacy], signed=False))
    [report] = queue_messages(world, world.region.replicator_queue_url)
    assert report["kind"] == "poison-record"
    assert "original sample's format" in report["reason"]
    assert "verify --repair" in report["reason"]
    # The report carries the refused record whole, so its item can be found and settled.
    assert base64.b64decode(report["record"]["kinesis"]["data"]) == legacy
