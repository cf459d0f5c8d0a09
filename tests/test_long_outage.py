"""A three-day border outage, emulated in simulated time with every stream trimmed at its
retention (emulator/retention.py), in both capture modes.

- dynamodb_streams: the sender's mapping gives up on records a day old, and the table's stream
  forgets them at the same age, so what China wrote in the outage's first two days never
  crosses. `redrive` names those ranges as gone, `verify` reports the items, and
  `verify --repair` settles them.
- kinesis capture (7-day retention): the sender's mapping on the capture stream retries until
  the link returns, and everything crosses by itself: nothing in a failure queue, nothing for
  `verify` to find.
"""

from __future__ import annotations

import json

from botocore.exceptions import EndpointConnectionError

from deployment.names import CHINA
from deployment.tables import scan_all
from emulator.capture import DYNAMODB_STREAMS, KINESIS
from emulator.simulated_time import SimulatedTime, simulated
from emulator.stepped import TwoRegions
from replication.stamping import stamp
from replication.versions import now_ms
from tests.helpers import queue_messages
from tests.test_convergence import canonical
from tools import ops

HOUR_MS = 3_600_000
OUTAGE_HOURS = 72
STEPS_PER_HOUR = 4  # each step a quarter of an hour: a mapping's retry, a poll, a trim
WRITES_PER_HOUR = 2


def cut(node) -> None:
    """The link from this region to its peer goes down: every PutRecords fails to connect."""

    def unreachable(records):
        raise EndpointConnectionError(endpoint_url="https://kinesis.ap-southeast-1.amazonaws.com")

    node.sender.peer.put_records = unreachable


def write(node, key: str, n: int) -> None:
    item = stamp({"PK": {"S": key}, "n": {"N": str(n)}}, node.name, node.clock(), typed=True)
    node.client("dynamodb").put_item(TableName=node.table, Item=item)


def run_ops(capsys, *argv: str) -> tuple[int, str]:
    code = ops.main([*argv, "--quiet"])
    out, _ = capsys.readouterr()
    return code, out


def outage(capture: str) -> tuple[TwoRegions, SimulatedTime]:
    """Three days without the China -> Global link, both regions writing every hour; then
    the link returns and the regions settle. Time starts four days ago, so that when it is
    over the operator tools (on the machine's clock) see nothing from the future."""
    time = SimulatedTime(now_ms() - 4 * 24 * HOUR_MS)
    with simulated(time):
        regions = TwoRegions(time_source=time, capture=capture)
        china, world = regions.china, regions.world
        for node in regions.nodes.values():
            node.sender.pause = lambda attempt: None  # the test is about outcomes, not backoff
        for i in range(10):
            write(china, f"before-{i}", 0)
        regions.settle()
        healthy = china.sender.peer.put_records
        cut(china)
        for hour in range(OUTAGE_HOURS):
            for i in range(WRITES_PER_HOUR):
                write(china, f"cn-{hour}-{i}", hour)
            write(china, f"before-{hour % 10}", hour + 1)  # updates too
            write(world, f"sg-{hour}", hour)  # the other direction still works
            for _ in range(STEPS_PER_HOUR):
                time.ms += HOUR_MS // STEPS_PER_HOUR
                regions.step()
        china.sender.peer.put_records = healthy
        regions.settle()
    return regions, time


def keys(node) -> set[str]:
    return {item["PK"]["S"] for item in scan_all(node.client("dynamodb"), node.table)}


def tables(regions: TwoRegions) -> tuple[list, list]:
    return (
        canonical(scan_all(regions.china.client("dynamodb"), regions.china.table)),
        canonical(scan_all(regions.world.client("dynamodb"), regions.world.table)),
    )


def test_with_dynamodb_streams_an_outage_past_retention_is_found_by_verify_and_repaired(
    aws, capsys
):
    regions, time = outage(DYNAMODB_STREAMS)
    china, world = tables(regions)
    lost = len(china) - len(world)
    assert lost > 0, "the outage outlasted the stream's retention: something must be lost"
    # The last day's writes crossed once the link returned; the first two days' did not.
    world_keys = keys(regions.world)
    assert {f"cn-{h}-0" for h in range(OUTAGE_HOURS - 23, OUTAGE_HOURS)} <= world_keys
    assert not {f"cn-{h}-0" for h in range(OUTAGE_HOURS - 48)} & world_keys
    assert regions.china.retention.trimmed > 0
    # The mapping gave up on those records, into the sender's failure queue ...
    queue = regions.china.client("sqs").get_queue_attributes(
        QueueUrl=regions.china.region.sender_queue_url,
        AttributeNames=["ApproximateNumberOfMessages"],
    )
    assert int(queue["Attributes"]["ApproximateNumberOfMessages"]) > 0

    capsys.readouterr()  # what the functions logged while the link was down
    with simulated(time):
        # ... and the stream no longer holds them: redrive names each range as gone, and the
        # command that settles what they carried.
        code, out = run_ops(capsys, "redrive", "--region", CHINA, "--function", "sender")
        assert code == 1
        assert "trimmed: older than the stream's retention (TrimmedDataAccessException)" in out
        assert f"run `python tools/ops.py verify --region {CHINA} --table user-cn --repair`" in out
        # verify finds each item that never crossed ...
        code, out = run_ops(capsys, "verify", "--region", CHINA, "--json")
        report = json.loads(out)
        assert (code, report["in_sync"]) == (1, False)
        assert report[f"only_in_{CHINA}"] == lost and report["differing"] == 0, report
        # ... and --repair settles them.
        code, out = run_ops(capsys, "verify", "--region", CHINA, "--repair", "--json")
        assert code == 0, out
        code, out = run_ops(capsys, "verify", "--region", CHINA, "--json")
        assert (code, json.loads(out)["in_sync"]) == (0, True), out
    china, world = tables(regions)
    assert china == world


def test_with_kinesis_capture_the_same_outage_loses_nothing_and_needs_no_operator(aws, capsys):
    regions, time = outage(KINESIS)
    china, world = tables(regions)
    assert china == world
    assert len(china) == 10 + OUTAGE_HOURS * (WRITES_PER_HOUR + 1)
    for node in regions.nodes.values():
        assert queue_messages(node, node.region.sender_queue_url) == []
        assert queue_messages(node, node.region.replicator_queue_url) == []
    capsys.readouterr()
    with simulated(time):
        code, out = run_ops(capsys, "verify", "--region", CHINA, "--json")
        assert (code, json.loads(out)["in_sync"]) == (0, True), out
