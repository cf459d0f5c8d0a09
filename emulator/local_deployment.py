"""The whole system on this machine: both regions on one moto server, the real functions
in their own processes, mappings with Lambda's semantics, a faulty link between them, and
each sender's heartbeat schedule. With capture="kinesis", each region's tables stream into its
capture stream (a pump thread, emulator/capture.py) and the sender's mapping reads that.

    with LocalDeployment(workdir) as deployment:
        ... write to deployment.regions["cn-north-1"] ...
        deployment.wait_until_converged(timeout_s=60)
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from deployment import names as topology
from deployment.functions import FUNCTIONS
from deployment.tables import scan_all
from emulator import resources
from emulator.capture import (
    DYNAMODB_STREAMS,
    NO_FAULTS,
    CaptureFaults,
    CapturePump,
)
from emulator.esm import (
    REPLICATOR_MAPPING,
    SENDER_MAPPING,
    EventSourceMapping,
    MappingConfig,
    sqs_destination,
)
from emulator.faults import FaultProxy
from emulator.functions import Function, FunctionError
from emulator.stream_sources import KinesisSource
from replication import wire
from replication.versions import now_ms

# Each region's functions use credentials of their own "account", as in two real accounts.
ACCOUNT_KEYS = {topology.CHINA: "AKIACHINAEMULATED000", topology.GLOBAL: "AKIAGLOBALEMULATED00"}
# What each region's EventBridge rule sends its sender, every minute on AWS.
HEARTBEAT_EVENT = {"replication": "heartbeat"}
HEARTBEAT_INTERVAL_S = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class LagRecorder:
    """End-to-end lag of each replicated put: from its version timestamp (when it was written)
    to the moment the replicator's batch holding it completed."""

    samples: dict[str, list[int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def observe(self, region: str, records: list[dict[str, Any]]) -> None:
        done = now_ms()
        lags = []
        for record in records:
            try:
                change = wire.unpack(base64.b64decode(record["kinesis"]["data"])).change
            except ValueError:  # MalformedChange, BadSignature, bad base64
                continue
            if change.op == wire.PUT:
                lags.append(done - change.version.timestamp)
        with self.lock:
            self.samples.setdefault(region, []).extend(lags)

    def all(self) -> list[int]:
        with self.lock:
            return [lag for lags in self.samples.values() for lag in lags]

    def count(self, region: str) -> int:
        with self.lock:
            return len(self.samples.get(region, []))


class HeartbeatSchedule:
    """What each region's EventBridge rule does: invoke its sender with the heartbeat event
    every interval, without waiting for the answer (an asynchronous invocation), through the
    same execution environments the stream's batches use.

    The first heartbeats go out at once, so a new deployment is heard from early. At most one
    per sender is under way: while one outlasts the interval (the link is down and the sender
    retries), the next is skipped, where Lambda would run it in another environment. So
    heartbeats never hold every one of a sender's few processes. A failed one is counted, not
    retried; the next comes an interval later.
    """

    def __init__(self, senders: dict[str, Function], interval_s: float):
        self.senders = senders  # region -> its sender
        self.interval_s = interval_s
        self.invoked = dict.fromkeys(senders, 0)  # region -> heartbeats its sender shipped
        self.failed = dict.fromkeys(senders, 0)
        self.skipped = dict.fromkeys(senders, 0)
        self._running: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._paused = 0
        self._thread: threading.Thread | None = None

    def start(self) -> HeartbeatSchedule:
        self._thread = threading.Thread(target=self._run, name="heartbeat-schedule", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """No heartbeats for a while (once those under way are done): for a test that counts
        exactly what crosses the link."""
        with self._lock:
            self._paused += 1
            running = list(self._running.values())
        for thread in running:
            thread.join()
        try:
            yield
        finally:
            with self._lock:
                self._paused -= 1

    def _run(self) -> None:
        due = time.monotonic()
        while not self._stop.wait(max(0.0, due - time.monotonic())):
            due = max(due + self.interval_s, time.monotonic())  # no burst after a stall
            with self._lock:
                if self._paused:
                    continue
            for region in self.senders:
                self._fire(region)

    def _fire(self, region: str) -> None:
        with self._lock:
            running = self._running.get(region)
            if running is not None and running.is_alive():
                self.skipped[region] += 1
                return
            thread = threading.Thread(
                target=self._invoke, args=(region,), name=f"heartbeat-{region}", daemon=True
            )
            self._running[region] = thread
            thread.start()  # under the lock, so paused() never sees a thread not yet started

    def _invoke(self, region: str) -> None:
        try:
            self.senders[region].invoke(HEARTBEAT_EVENT)
        except (FunctionError, OSError, ValueError):  # ValueError: its pipe closed on stop
            outcome = self.failed
        else:
            outcome = self.invoked
        with self._lock:
            outcome[region] += 1


def percentile(values: list[int], fraction: float) -> int | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class LocalDeployment:
    def __init__(
        self,
        workdir: Path,
        latency_ms: float = 80.0,
        throttle_rate: float = 0.0,
        function_concurrency: int = 2,
        sender_mapping: MappingConfig = SENDER_MAPPING,
        replicator_mapping: MappingConfig = REPLICATOR_MAPPING,
        seed: int = 1,
        heartbeat_interval_s: float | None = HEARTBEAT_INTERVAL_S,
        capture: str = DYNAMODB_STREAMS,
        capture_faults: CaptureFaults = NO_FAULTS,
    ):
        self.workdir = Path(workdir)
        self.latency_ms = latency_ms
        self.throttle_rate = throttle_rate
        self.function_concurrency = function_concurrency
        self.mapping_configs = {"sender": sender_mapping, "replicator": replicator_mapping}
        self.seed = seed
        self.heartbeat_interval_s = heartbeat_interval_s  # None: no heartbeat schedule
        self.heartbeats: HeartbeatSchedule | None = None
        self.capture, self.capture_faults = capture, capture_faults
        self.pumps: dict[str, CapturePump] = {}  # region -> its tables' streaming destination
        self.names = topology.region_names()
        self.regions: dict[str, resources.Region] = {}
        self.links: dict[str, FaultProxy] = {}  # region -> the link carrying changes into it
        self.functions: dict[str, Function] = {}
        self.mappings: dict[str, EventSourceMapping] = {}
        self.lag = LagRecorder()
        self.local_writes: dict[str, int] = {}  # region -> its own writes seen on its stream
        self._counted: set[str] = set()  # capture records' eventIDs, so duplicates count once
        self._server: ThreadedMotoServer | None = None
        self.endpoint_url = ""

    # -- lifecycle -------------------------------------------------------------------

    def __enter__(self) -> LocalDeployment:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self._server.start()
        self.endpoint_url = f"http://127.0.0.1:{port}"
        # moto keeps its state per process, not per server: start from nothing even when an
        # earlier deployment ran in this process (one test module after another).
        reset = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        urllib.request.urlopen(reset, timeout=10).close()
        admin = boto3.Session(aws_access_key_id="admin", aws_secret_access_key="admin")
        for name in (topology.CHINA, topology.GLOBAL):
            self.links[name] = FaultProxy(
                self.endpoint_url, latency_ms=self.latency_ms, seed=self.seed
            )
            self.links[name].throttle_rate = self.throttle_rate
            self.links[name].start()
        for name in (topology.CHINA, topology.GLOBAL):
            peer = self.names[name].peer_region
            self.regions[name] = resources.create_region(
                self.names[name],
                admin,
                endpoint_url=self.endpoint_url,
                peer_endpoint_url=self.links[peer].url,
                capture=self.capture,
            )
        for region in self.regions.values():
            self._start_functions(region)
        for region in self.regions.values():
            self._start_mappings(region)
        if self.heartbeat_interval_s:
            senders = {name: self.functions[f"sender-{name}"] for name in self.regions}
            self.heartbeats = HeartbeatSchedule(senders, self.heartbeat_interval_s).start()

    def stop(self) -> None:
        if self.heartbeats is not None:
            self.heartbeats.stop()
        for pump in self.pumps.values():
            pump.stop()
        for mapping in self.mappings.values():
            mapping.stop()
        for function in self.functions.values():
            function.stop()
        for link in self.links.values():
            link.stop()
        if self._server is not None:
            self._server.stop()
            self._server = None

    # -- wiring ----------------------------------------------------------------------

    def _environment(self, region: resources.Region) -> dict[str, str]:
        """What Lambda adds to a function's configured variables (its account is the emulator's)."""
        name = region.names.region
        return {
            "AWS_REGION": name,
            "AWS_DEFAULT_REGION": name,
            "AWS_ACCESS_KEY_ID": ACCOUNT_KEYS[name],
            "AWS_SECRET_ACCESS_KEY": "emulated",
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
            "AWS_EC2_METADATA_DISABLED": "true",
            "POWERTOOLS_METRICS_NAMESPACE": "DynamoDBReplication",
            "POWERTOOLS_LOG_LEVEL": "INFO",
        }

    def _start_functions(self, region: resources.Region) -> None:
        """Each function in its processes, with the variables it is registered with."""
        name = region.names.region
        for kind in FUNCTIONS:
            key = f"{kind}-{name}"
            self.functions[key] = Function(
                key,
                kind,  # the handler module: sender.py, replicator.py
                {
                    **self._environment(region),
                    **region.environments[kind],
                    "POWERTOOLS_SERVICE_NAME": kind,
                },
                self.workdir / f"{key}.log",
                concurrency=self.function_concurrency,
            )

    def _start_mappings(self, region: resources.Region) -> None:
        n = region.names
        sqs = region.client("sqs")
        pump = resources.capture_pump(region, self.capture_faults)
        if pump is not None:
            self.pumps[n.region] = pump.start()
        # Each table's stream, or the one capture stream.
        for label, source in resources.sender_sources(region).items():
            key = f"sender-{n.region}"
            self.mappings[f"{key}-{label}"] = EventSourceMapping(
                key,
                source,
                self.functions[key].invoke,
                resources.sender_config(source, self.mapping_configs["sender"]),
                sqs_destination(sqs, region.sender_queue_url),
                function_arn=resources.function_arn(key, n.region),
                on_done=lambda records, region=n.region: self._count_local_writes(region, records),
            ).start()
        key = f"replicator-{n.region}"
        self.mappings[key] = EventSourceMapping(
            key,
            KinesisSource(
                region.client("kinesis"),
                n.replication_stream,
                region.replication_stream_arn,
                n.region,
            ),
            self.functions[key].invoke,
            self.mapping_configs["replicator"],
            sqs_destination(sqs, region.replicator_queue_url),
            function_arn=resources.function_arn(key, n.region),
            on_done=lambda records, region=n.region: self.lag.observe(region, records),
        ).start()

    def _count_local_writes(self, region: str, records: list[dict[str, Any]]) -> None:
        changes = [self._change_of(r) for r in records]
        written = [
            c
            for c in changes
            if c["dynamodb"].get("NewImage", {}).get("last_updater_region") == {"S": region}
            and c["dynamodb"].get("NewImage") != c["dynamodb"].get("OldImage")
        ]
        with self.lag.lock:
            if self.capture != DYNAMODB_STREAMS:
                fresh = [c for c in written if c["eventID"] not in self._counted]
                self._counted.update(c["eventID"] for c in fresh)
                written = fresh
            self.local_writes[region] = self.local_writes.get(region, 0) + len(written)

    @staticmethod
    def _change_of(record: dict[str, Any]) -> dict[str, Any]:
        """A table change as DynamoDB Streams shapes it, from either kind of record."""
        if record.get("eventSource") == "aws:kinesis":
            return json.loads(base64.b64decode(record["kinesis"]["data"]))
        return record

    # -- observing -------------------------------------------------------------------

    def items(self, region: str) -> dict[str, dict[str, Any]]:
        """A region's first table, keyed by each item's key (as canonical JSON)."""
        r = self.regions[region]
        table = r.names.tables[0]
        ddb = r.client("dynamodb")
        schema = ddb.describe_table(TableName=table)["Table"]["KeySchema"]
        names = [k["AttributeName"] for k in schema]
        return {
            json.dumps([wire.from_client(i[n]) for n in names]): wire.item_from_client(i)
            for i in scan_all(ddb, table)
        }

    def divergent_keys(self) -> list[str]:
        china, world = (self.items(name) for name in (topology.CHINA, topology.GLOBAL))
        return sorted(k for k in china.keys() | world.keys() if china.get(k) != world.get(k))

    def wait_until_converged(self, timeout_s: float, quiet_s: float = 3.0) -> bool:
        """Until both tables hold the same items and nothing has moved for `quiet_s`."""
        deadline = time.time() + timeout_s
        last_moved, last_total = time.time(), -1
        while time.time() < deadline:
            total = sum(m.stats.delivered for m in self.mappings.values())
            if total != last_total:
                last_moved, last_total = time.time(), total
            elif time.time() - last_moved >= quiet_s and not self.divergent_keys():
                return True
            time.sleep(0.5)
        return False

    def failure_messages(self, region: str, kind: str) -> list[dict[str, Any]]:
        """Drain a region's sender or replicator failure queue."""
        r = self.regions[region]
        url = r.sender_queue_url if kind == "sender" else r.replicator_queue_url
        return resources.drain_queue(r.client("sqs"), url)
