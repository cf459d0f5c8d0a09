"""The whole system on this machine: both regions writing at once through the emulator.

One deployment (moto server, the four functions in their own processes, mappings at
AWS's polling rates, an 80 ms link) serves every test here; each test uses keys of its
own and waits for both regions to agree.
"""

from __future__ import annotations

import base64
import random
import threading
import time

from deployment.names import CHINA, GLOBAL
from emulator.resources import SIGNING_KEYS
from replication import wire
from replication.stamping import stamp
from replication.versions import Version, now_ms

CONVERGE_S = 90


def write(deployment, region: str, key: str, **attrs) -> None:
    r = deployment.regions[region]
    item = {"PK": {"S": key}, **{k: {"S": str(v)} for k, v in attrs.items()}}
    r.client("dynamodb").put_item(TableName=r.names.tables[0], Item=stamp(item, region, typed=True))


def delete(deployment, region: str, key: str) -> None:
    r = deployment.regions[region]
    r.client("dynamodb").delete_item(TableName=r.names.tables[0], Key={"PK": {"S": key}})


def in_both_regions(deployment, fn) -> None:
    """Run fn(region) for both regions at the same time."""
    threads = [threading.Thread(target=fn, args=(region,)) for region in (CHINA, GLOBAL)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def keys_with(deployment, prefix: str) -> dict[str, set[str]]:
    return {
        region: {k for k in deployment.items(region) if f'"{prefix}' in k}
        for region in (CHINA, GLOBAL)
    }


def crossed(deployment, region: str) -> list[wire.Change]:
    """Every change in `region`'s replication stream: what crossed the border into it."""
    kinesis = deployment.regions[region].client("kinesis")
    stream = deployment.regions[region].names.replication_stream
    changes = []
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            page = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            changes += [wire.unpack(record["Data"]).change for record in page["Records"]]
            iterator = page.get("NextShardIterator") if page["Records"] else None
    return changes


def test_bidirectional_load_converges_and_crosses_the_border_once(deployment):
    count = 150

    def load(region):
        for i in range(count):
            write(deployment, region, f"load-{region}-{i}", n=i)

    in_both_regions(deployment, load)
    assert deployment.wait_until_converged(CONVERGE_S), deployment.divergent_keys()[:5]

    keys = keys_with(deployment, "load-")
    assert len(keys[CHINA]) == len(keys[GLOBAL]) == 2 * count
    # Each region's writes crossed into the other, and no echo went back: the changes that
    # reached a region are exactly the peer's writes, one put per item. (The records are counted
    # in the stream, not at the link: a PutRecords retried after a slow answer under load may
    # reach the link twice, which the versions make harmless.)
    for region, peer in ((CHINA, GLOBAL), (GLOBAL, CHINA)):
        arrived = [
            c
            for c in crossed(deployment, region)
            if c.keys.get("PK", {}).get("S", "")[:5] == "load-"
        ]
        assert {c.origin for c in arrived} == {peer}
        assert {c.keys["PK"]["S"] for c in arrived} == {f"load-{peer}-{i}" for i in range(count)}
        assert all(c.op == wire.PUT for c in arrived)


def test_concurrent_conflicting_writes_and_deletes_converge(deployment):
    keys = [f"fight-{i}" for i in range(12)]

    def fight(region):
        rng = random.Random(region)
        for _ in range(120):
            key = rng.choice(keys)
            if rng.random() < 0.25:
                delete(deployment, region, key)
            else:
                write(deployment, region, key, by=region, at=time.time())
            time.sleep(rng.random() / 100)

    in_both_regions(deployment, fight)
    assert deployment.wait_until_converged(CONVERGE_S), deployment.divergent_keys()[:5]


def test_a_link_outage_loses_nothing_once_the_link_returns(deployment):
    link = deployment.links[GLOBAL]  # changes from China into the Global region
    link.outage(20)
    for i in range(60):
        write(deployment, CHINA, f"outage-{i}", n=i)
        time.sleep(0.2)
    assert link.stats["dropped_connections"] > 0
    assert deployment.wait_until_converged(CONVERGE_S + 20), deployment.divergent_keys()[:5]
    assert len(keys_with(deployment, "outage-")[GLOBAL]) == 60


def test_throttled_put_records_lose_nothing(deployment):
    for link in deployment.links.values():
        link.throttle_rate = 0.3
    try:

        def load(region):
            for i in range(80):
                write(deployment, region, f"throttled-{region}-{i}", n=i)

        in_both_regions(deployment, load)
        assert deployment.wait_until_converged(CONVERGE_S), deployment.divergent_keys()[:5]
    finally:
        for link in deployment.links.values():
            link.throttle_rate = 0.0
    assert sum(link.stats["throttled_records"] for link in deployment.links.values()) > 0
    assert all(len(keys) == 160 for keys in keys_with(deployment, "throttled-").values())


def test_a_poison_record_is_isolated_and_the_rest_of_its_batch_replicates(deployment):
    world = deployment.regions[GLOBAL]
    kinesis = world.client("kinesis")
    stream = world.names.replication_stream

    def change(key):
        version = Version(now_ms(), CHINA)
        keys = {"PK": {"S": key}}
        return wire.Change(
            "user-cn", wire.PUT, keys, version, CHINA, now_ms(), {**keys, **version.to_typed()}
        )

    good = [change(f"poison-neighbour-{i}") for i in range(6)]
    # Signed as China's sender signs them (the emulator's key ring is this process's).
    records = [
        {"Data": wire.pack(c, SIGNING_KEYS), "PartitionKey": wire.partition_key(c)} for c in good
    ]
    records.insert(3, {"Data": b"\x00 not a change", "PartitionKey": "poison"})
    kinesis.put_records(StreamName=stream, Records=records)

    deadline = time.time() + CONVERGE_S
    while time.time() < deadline and len(keys_with(deployment, "poison-neighbour-")[GLOBAL]) < 6:
        time.sleep(0.5)
    assert len(keys_with(deployment, "poison-neighbour-")[GLOBAL]) == 6
    [report] = [
        m
        for m in deployment.failure_messages(GLOBAL, "replicator")
        if m.get("kind") == "poison-record"
    ]
    assert "undecodable" in report["reason"]
    assert base64.b64decode(report["record"]["kinesis"]["data"]) == b"\x00 not a change"
