"""Faults injected into the stepped emulator as the schedule says, where a real deployment meets
them: at the functions' own AWS calls, at the link into the peer, and at their invocations.

Each function's clients are wrapped (again after every cold start), so a fault strikes the call
the engine really makes:
- the peer's PutRecords: a cut link fails to connect, a throttled stream refuses some records,
  and a retired key is refused as the peer account would (UnrecognizedClientException);
- the sender's tombstone reads and the replicator's conditional writes: throttled;
- Parameter Store (the peer's keys, the signing key ring): unreachable.
An invocation may be killed after a few of its calls, or run out of time (its context's
remaining time shrinks with each call, and the engine sees it): either way the process is gone,
the mapping sees a function error, and the next invocation cold-starts.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError, EndpointConnectionError

from chaos import schedule as kinds
from chaos.schedule import Schedule
from emulator.resources import DUMMY_KEYS
from emulator.stepped import Node, TwoRegions

CALL_COST_MS = 1_000  # the function time one AWS call takes, against a timed-out invocation


class Killed(BaseException):
    """The function's process died mid-invocation. A BaseException, so that nothing in the
    engine can catch it: a dead process runs no handler."""


class Invocation:
    """One invocation's fate: killed after `kill_after` calls, or out of time after
    `budget_ms` of calls."""

    def __init__(self, kill_after: int | None = None, budget_ms: float | None = None):
        self.kill_after, self.budget_ms, self.spent_ms, self.calls = kill_after, budget_ms, 0, 0

    def charge(self) -> None:
        self.calls += 1
        self.spent_ms += CALL_COST_MS
        if self.kill_after is not None and self.calls > self.kill_after:
            raise Killed("the process was killed")
        if self.budget_ms is not None and self.spent_ms > self.budget_ms:
            raise Killed("Task timed out")

    def get_remaining_time_in_millis(self) -> int:
        """Lambda's context: what is left of the function's timeout."""
        if self.budget_ms is None:
            return 60_000
        return max(0, int(self.budget_ms - self.spent_ms))


def _throttled(operation: str) -> ClientError:
    code = "ProvisionedThroughputExceededException"
    return ClientError({"Error": {"Code": code, "Message": "chaos: throttled"}}, operation)


class Injector:
    def __init__(
        self,
        regions: TwoRegions,
        plan: Schedule,
        elapsed: Callable[[], int],
        seed: int,
        on_cold_start: Callable[[Any], None] | None = None,
    ):
        """`elapsed`: simulated milliseconds since the campaign began."""
        self.regions, self.plan, self.elapsed = regions, plan, elapsed
        self.rng = random.Random(f"chaos-injection:{seed}")
        self.on_cold_start = on_cold_start or (lambda function: None)
        self.counts: Counter = Counter()
        self.current: Invocation | None = None
        self.stopped = False
        # The access keys the peer account accepts from each region's sender.
        self.accepted = {name: {DUMMY_KEYS[0]} for name in regions.nodes}
        self._rotated: set[int] = set()
        self._retired: set[int] = set()
        self._restarted: set[int] = set()

    # -- installing --------------------------------------------------------------------

    def install(self) -> None:
        for node in self.regions.nodes.values():
            self._wrap_sender(node)
            self._wrap_replicator(node)
            for mapping in node.sender_mappings:
                mapping.invoke = self._invoker(node, "sender")
            node.replicator_mapping.invoke = self._invoker(node, "replicator")

    def _wrap_sender(self, node: Node) -> None:
        sender, region = node.sender, node.name
        ddb = sender.clients("dynamodb")
        for name in ("put_item", "update_item", "delete_item"):
            self._wrap(ddb, name, region)
        self._wrap(ddb, "batch_get_item", region, throttle=kinds.TOMBSTONE_THROTTLE)
        self._wrap_parameter_store(sender, region)
        real_client = sender.peer.client
        sender.peer.client = lambda: _PeerEndpoint(self, node, real_client())
        self.on_cold_start(sender)

    def _wrap_replicator(self, node: Node) -> None:
        replicator, region = node.replicator, node.name
        ddb = replicator.clients("dynamodb")
        for name in ("put_item", "delete_item"):  # the conditional writes
            self._wrap(ddb, name, region, throttle=kinds.WRITE_THROTTLE)
        for name in ("update_item", "batch_get_item", "get_item"):
            self._wrap(ddb, name, region)
        self._wrap_parameter_store(replicator, region)
        self.on_cold_start(replicator)

    def _wrap_parameter_store(self, function: Any, region: str) -> None:
        """The peer's keys and the signing key ring, read from Parameter Store."""
        ssm = function.clients("ssm")
        for name in ("get_parameter", "get_parameters"):
            self._wrap(ssm, name, region, down=kinds.SSM_DOWN)

    def _wrap(self, client: Any, name: str, region: str, throttle: str = "", down: str = ""):
        real = getattr(client, name)

        def call(**kwargs: Any) -> Any:
            self.charge()
            now = self.elapsed()
            if down and self._active(down, region, now):
                self.counts["parameter store unreachable"] += 1
                raise EndpointConnectionError(endpoint_url=f"https://ssm.{region}.amazonaws.com")
            if throttle:
                for fault in self._active(throttle, region, now):
                    if self.rng.random() < fault.rate:
                        self.counts[f"{throttle} calls"] += 1
                        raise _throttled(name)
            return real(**kwargs)

        setattr(client, name, call)

    def _invoker(self, node: Node, function: str) -> Callable[[dict], dict | None]:
        def invoke(event: dict[str, Any]) -> dict[str, Any] | None:
            invocation = self._fate(node.name, function)
            self.current = invocation
            try:
                return getattr(node, function).handle(event, invocation)
            except Killed as exc:
                self.counts["invocations killed" if "killed" in str(exc) else "timeouts"] += 1
                self.regions.cold_start(node.name, function)
                (self._wrap_sender if function == "sender" else self._wrap_replicator)(node)
                raise RuntimeError(f"{function} in {node.name}: {exc}") from None
            finally:
                self.current = None

        return invoke

    def _fate(self, region: str, function: str) -> Invocation:
        now = self.elapsed()
        for fault in self.plan.active(kinds.KILL, region, now, function):
            if not self.stopped and self.rng.random() < fault.rate:
                return Invocation(kill_after=self.rng.randrange(0, 6))
        for fault in self.plan.active(kinds.TIMEOUT, region, now, function):
            if not self.stopped and self.rng.random() < fault.rate:
                return Invocation(budget_ms=self.rng.uniform(0, 12_000))
        return Invocation()

    def charge(self) -> None:
        if self.current is not None:
            self.current.charge()

    def _active(self, kind: str, region: str, now: int) -> list:
        return [] if self.stopped else self.plan.active(kind, region, now)

    # -- as time passes ----------------------------------------------------------------

    def tick(self) -> None:
        """Apply the instants that are due: key rotations and retirements, mapping restarts."""
        now = self.elapsed()
        for i, fault in enumerate(self.plan.faults):
            if fault.kind == kinds.KEY_ROTATION:
                if i not in self._rotated and now >= fault.start_ms:
                    self._rotated.add(i)
                    self._rotate(fault.region, i)
                if i not in self._retired and now >= fault.end_ms:
                    self._retired.add(i)
                    self._retire(fault.region)
            elif fault.kind == kinds.ESM_RESTART and i not in self._restarted:
                self._restart_when_due(i, fault, now)

    def _restart_when_due(self, index: int, fault, now: int) -> None:
        if now < fault.start_ms:
            return
        self._restarted.add(index)
        for mapping in self.regions.nodes[fault.region].mappings():
            mapping.restart()
        self.counts["mapping restarts"] += 1

    def _rotate(self, region: str, index: int) -> None:
        """A new key for the peer's writer user, stored in this region (peer_keys.py rotate):
        the peer accepts both until the old one is retired."""
        node = self.regions.nodes[region]
        key = f"AKIACHAOS{index:03d}{region[:2].upper()}00000"[:20]
        self.accepted[region].add(key)
        ssm, prefix = node.client("ssm"), node.region.names.peer_credentials_prefix
        ssm.put_parameter(Name=f"{prefix}AccessKey", Value=key, Type="String", Overwrite=True)
        ssm.put_parameter(
            Name=f"{prefix}SecretKey", Value=f"secret-{key}", Type="SecureString", Overwrite=True
        )
        self.counts["key rotations"] += 1

    def _retire(self, region: str) -> None:
        node = self.regions.nodes[region]
        prefix = node.region.names.peer_credentials_prefix
        stored = node.client("ssm").get_parameter(Name=f"{prefix}AccessKey")["Parameter"]["Value"]
        self.accepted[region] = {stored}

    def stop(self) -> None:
        """Every fault ends: the link is up, nothing is throttled, nothing dies."""
        self.stopped = True
        for region in self.regions.nodes:
            self._retire(region)


class _PeerEndpoint:
    """The peer's Kinesis endpoint as one of the sender's PutRecords reaches it."""

    def __init__(self, injector: Injector, node: Node, client: Any):
        self.injector, self.node, self.client = injector, node, client

    def put_records(self, **kwargs: Any) -> dict[str, Any]:
        injector, region = self.injector, self.node.name
        injector.charge()
        now = injector.elapsed()
        if injector._active(kinds.LINK_CUT, region, now):
            injector.counts["puts across a cut link"] += 1
            raise EndpointConnectionError(endpoint_url="https://kinesis.peer.amazonaws.com")
        key = self.node.sender.peer.credentials.get()[0]
        if key not in injector.accepted[region]:
            injector.counts["puts with a retired key"] += 1
            error = {"Code": "UnrecognizedClientException", "Message": "chaos: key retired"}
            raise ClientError({"Error": error}, "PutRecords")
        records = kwargs["Records"]
        rate = max((f.rate for f in injector._active(kinds.PUT_THROTTLE, region, now)), default=0)
        passing = [i for i in range(len(records)) if injector.rng.random() >= rate]
        injector.counts["records throttled"] += len(records) - len(passing)
        if not passing:
            return {
                "FailedRecordCount": len(records),
                "Records": [_refused() for _ in records],
            }
        taken = self.client.put_records(**{**kwargs, "Records": [records[i] for i in passing]})[
            "Records"
        ]
        results = dict(zip(passing, taken, strict=True))
        return {
            "FailedRecordCount": len(records) - len(passing),
            "Records": [results.get(i) or _refused() for i in range(len(records))],
        }


def _refused() -> dict[str, str]:
    return {
        "ErrorCode": "ProvisionedThroughputExceededException",
        "ErrorMessage": "chaos: throttled",
    }
