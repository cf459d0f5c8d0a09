"""The replicator: applies the peer region's changes to this region's tables.

A change is applied only if it is signed with a key of the shared ring, comes from the peer
region, carries the version its own item carries, and is not stamped further ahead of this
clock than the allowed skew; anything else is isolated as poison, with the reason, and counted
(Rejected*). The peer's writer key alone can put records into the stream, not change data.

Every write is conditioned on the incoming version being newer than the stored one, so
the newest version wins in both regions whatever order changes arrive in, and a replay
is a no-op. Deletes leave a tombstone; a put that creates an item is checked against the
tombstones after it lands (write first, then read, so a concurrent delete here cannot slip
between the two) and undone if a newer delete exists.
"""

from __future__ import annotations

import base64
import binascii
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from aws_lambda_powertools.utilities.batch import EventType
from botocore.exceptions import ClientError

from replication import versions, wire
from replication.batch import BatchOutcome, KeyOrderedBatchProcessor
from replication.function import PERMANENT_ERRORS, BatchResult, ReplicationFunction
from replication.settings import ReplicatorSettings
from replication.signing import BadSignature
from replication.stats import StatsTable

METRIC_NAMES = {
    "replicated": "Replicated",
    "stale": "Stale",
    "failed": "Failed",
    "poison": "Poison",
    "heartbeat": "HeartbeatsReceived",
    "unsigned_accepted": "UnsignedAccepted",
}
# Why a change was refused -> the metric that counts it (each also counts as Poison).
REJECTIONS = {
    "unsigned": "RejectedUnsigned",
    "signature": "RejectedSignature",
    "origin": "RejectedOrigin",
    "version": "RejectedVersion",
    "future": "RejectedFutureVersion",
}


class TombstoneCheckError(RuntimeError):
    """A created item could not be checked against the tombstones; retried."""


class TombstoneWriteError(RuntimeError):
    """A delete's tombstone could not be written; retried (it is this region's table, not the
    change, that is at fault)."""


@dataclass
class _Written:
    """A put this batch applied: the item's state as the batch left it, so far."""

    record: dict[str, Any]
    table: str
    change: wire.Change


@dataclass
class _Batch:
    outcomes: dict[int, tuple[str, str]] = field(
        default_factory=dict
    )  # id(record) -> (table, outcome)
    lag_ms: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    # Per item (key_id): the last put applied, and whether some put in the batch created the
    # item (or replayed one that may have); those are checked against tombstones at the end.
    # Each item's records run on one thread, in order, so these need no lock.
    written: dict[str, _Written] = field(default_factory=dict)
    created: set[str] = field(default_factory=set)
    trusted: bool = False  # an operator's changes, made on this machine: nothing to verify
    extra: Counter = field(default_factory=Counter)  # rejections, unsigned changes let in
    heartbeat_ages_ms: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def settle(self, record: dict[str, Any], table: str, outcome: str, lag_ms: int | None = None):
        with self.lock:
            self.outcomes[id(record)] = (table, outcome)
            if lag_ms is not None:
                self.lag_ms[table].append(lag_ms)

    def count(self, what: str) -> None:
        with self.lock:
            self.extra[what] += 1


class Replicator(ReplicationFunction):
    service = "replicator"

    def __init__(self, settings: ReplicatorSettings, record_stats: bool = True, **shared: Any):
        """`record_stats=False` leaves the stats table alone: an operator's replicator, whose
        versions (a backfill's may be years old) would read as lag."""
        super().__init__(settings, **shared)
        self.settings = settings
        self.unit = settings.version_unit  # of the stored versions in this region's tables
        # A change must arrive while the deletes it could miss are still on record.
        self.max_change_age_ms = max(0, settings.tombstone_ttl_seconds - 3600) * 1000
        self.stats = (
            StatsTable(self.clients.lazy("dynamodb"), settings.stats_table)
            if record_stats
            else None
        )
        self.processor = KeyOrderedBatchProcessor(
            EventType.KinesisDataStreams,
            lambda raw: raw["kinesis"]["partitionKey"],
            settings.concurrency,
            logger=self.logger,
        )

    # -- the public API --------------------------------------------------------------

    def handle(self, event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        """Lambda's entry point: a Kinesis event in, the partial-batch response out. A batch
        whose every record failed raises, so the mapping treats it as a function error."""
        outcome, _ = self._run(event.get("Records", []), trusted=False)
        outcome.raise_if_all_failed()
        return outcome.response

    def process(self, records: list[dict[str, Any]]) -> BatchResult:
        """Apply the replication stream's records (as Lambda delivers them); how each ended."""
        outcome, counts = self._run(records, trusted=False)
        return BatchResult.of(outcome, counts)

    def apply(self, changes: list[wire.Change]) -> BatchResult:
        """Apply changes made on this machine (an operator's repair or backfill) with the
        checks and writes a stream record gets, except its signature: there is none to check."""
        records = [_operator_record(position, change) for position, change in enumerate(changes)]
        outcome, counts = self._run(records, trusted=True)
        return BatchResult.of(outcome, counts)

    def _run(self, records: list[dict[str, Any]], trusted: bool) -> tuple[BatchOutcome, Counter]:
        batch = _Batch(trusted=trusted)
        failed: set[int] | frozenset[int] = {id(raw) for raw in records}  # unless it completes
        try:
            outcome = self.processor.run(
                records,
                partial(self._apply_record, batch),
                after=lambda: self._undo_resurrections(batch),
            )
            failed = outcome.failed
        finally:
            counts = self._report(batch, records, failed)
        return outcome, counts

    # -- per record ------------------------------------------------------------------

    def _apply_record(self, batch: _Batch, record: Any) -> str:
        raw = record.raw_event
        try:
            received = wire.unpack(base64.b64decode(raw["kinesis"]["data"], validate=True))
        except BadSignature as exc:
            return self._reject(batch, raw, "signature", f"mangled signature: {exc}")
        except (wire.MalformedChange, binascii.Error, KeyError, TypeError, ValueError) as exc:
            return self._poison(batch, raw, "", f"undecodable change: {exc}")
        change = received.change
        try:
            refused = self._refusal(batch, received)
        except (ArithmeticError, ValueError) as exc:  # a number no arithmetic should meet
            return self._poison(batch, raw, "", f"unreadable version: {exc}", change.keys)
        if refused is not None:
            return self._reject(batch, raw, *refused, change.keys)
        if change.op == wire.HEARTBEAT:
            return self._heartbeat(batch, raw, change)
        table = self.settings.table_map.get(change.table)
        if table is None:
            return self._poison(
                batch, raw, "", f"no local table is mapped for {change.table!r}", change.keys
            )
        try:
            if change.op == wire.PUT:
                outcome = self._put(batch, raw, table, change)
            else:
                outcome = self._delete(batch, table, change)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in PERMANENT_ERRORS:
                return self._poison(
                    batch, raw, table, f"{table} rejected the change: {exc}", change.keys
                )
            raise
        # A peer clock ahead of ours would make lag negative; it is at least zero.
        batch.settle(raw, table, outcome, max(0, self.clock() - change.stream_ts_ms))
        return outcome

    def _refusal(self, batch: _Batch, received: wire.Received) -> tuple[str, str] | None:
        """Why this change must not be applied, as (rejection, reason); None if it may."""
        change, peer = received.change, self.settings.peer_region
        if batch.trusted:
            pass
        elif received.signature is None:
            if not self.settings.accept_unsigned_changes:
                return "unsigned", "the change is not signed"
        else:
            try:
                self.signing.verify(received.payload, received.signature)
            except BadSignature as exc:
                return "signature", str(exc)
        if change.origin != peer:
            if change.origin == self.settings.region:
                return "origin", f"change came from this region ({change.origin}): a loop"
            return "origin", f"change claims origin {change.origin!r}; only {peer} sends here"
        if not batch.trusted and change.version.region != change.origin:
            # A sender ships only versions it stamped itself (it restamps anything else).
            return "version", (
                f"version {tuple(change.version)} was not stamped by its origin {change.origin}"
            )
        age_ms = self.clock() - change.stream_ts_ms
        if not batch.trusted and age_ms > self.max_change_age_ms:
            # Older than the tombstones kept: a delete it missed may be forgotten here, so it
            # could bring a deleted item back (a replayed old record would do exactly that).
            return "version", (
                f"the change is {age_ms // 86_400_000} days old, older than the tombstones "
                f"kept ({self.settings.tombstone_ttl_seconds // 86400} days): settle its item "
                "with ops.py verify --repair"
            )
        if change.op == wire.PUT and versions.of_image(change.item, self.unit) != change.version:
            return "version", (
                f"version {tuple(change.version)} disagrees with the item's own version "
                f"attributes {versions.of_image(change.item, self.unit)} (read in {self.unit})"
            )
        if change.op != wire.PUT and change.version.fraction:
            # A delete's version is the sender's, in whole milliseconds, as tombstones keep it.
            return (
                "version",
                f"version {tuple(change.version)} of a {change.op} is not whole milliseconds",
            )
        ahead_ms = change.version.timestamp - self.clock()
        if ahead_ms > self.max_skew_ms:
            return "future", (
                f"version {tuple(change.version)} is {ahead_ms // 1000} s ahead of this clock "
                f"(at most {self.max_skew_ms // 1000} s allowed)"
            )
        if received.signature is None and not batch.trusted:
            batch.count("unsigned_accepted")
        return None

    def _heartbeat(self, batch: _Batch, raw: dict[str, Any], change: wire.Change) -> str:
        """Record when the peer's latest heartbeat was sent and received. Only monitoring: a
        stats table that can't be written is logged, not retried."""
        sent, now = change.version.timestamp, self.clock()
        try:
            if self.stats is not None:
                self.stats.heartbeat(change.origin, sent, now)
        except ClientError as exc:
            self.logger.warning("could not record a heartbeat", extra={"error": str(exc)})
        with batch.lock:
            batch.heartbeat_ages_ms.append(max(0, now - sent))
        batch.settle(raw, "", "heartbeat")
        return "heartbeat"

    def _put(self, batch: _Batch, raw, table: str, change: wire.Change) -> str:
        try:
            response = self.clients("dynamodb").put_item(
                TableName=table,
                Item=wire.item_to_client(change.item),
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **versions.older_than_condition(change.version, self._horizon(), self.unit),
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            if versions.of_image(exc.response.get("Item"), self.unit) == change.version:
                # A replay of a put that landed before: it may not have been checked yet.
                self._wrote(batch, raw, table, change, created=True)
            return "stale"
        self._wrote(batch, raw, table, change, created=not response.get("Attributes"))
        return "replicated"

    def _wrote(self, batch: _Batch, raw, table: str, change: wire.Change, created: bool) -> None:
        kid = wire.key_id(table, change.keys)
        batch.written[kid] = _Written(raw, table, change)
        if created:
            with batch.lock:
                batch.created.add(kid)

    def _delete(self, batch: _Batch, table: str, change: wire.Change) -> str:
        kid = wire.key_id(table, change.keys)
        try:
            self.tombstones.record(kid, change.version, self._horizon())
        except ClientError as exc:
            raise TombstoneWriteError(f"{self.tombstones.table}: {exc}") from exc
        if not self._delete_item(table, change):
            return "stale"
        batch.written.pop(kid, None)  # nothing of the batch's puts is left to check
        return "replicated"

    def _delete_item(self, table: str, change: wire.Change, attempts: int = 3) -> bool:
        """Delete the item if it is older than the change; False if it is newer.

        Only an application deletes an item this region wrote: the sender ships every such
        delete, and takes any other for an echo (outbound.Sender._handle_remove). So an item
        written here is first stamped with the delete's own version, then deleted while it
        carries it, and its delete record is recognisably this one."""
        ddb, key = self.clients("dynamodb"), wire.item_to_client(change.keys)
        horizon = self._horizon()
        for _ in range(attempts):
            try:
                ddb.delete_item(
                    TableName=table,
                    Key=key,
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                    **versions.replica_older_than_condition(
                        change.version, self.settings.region, self.unit
                    ),
                )
                return True
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise
                current = exc.response.get("Item")
            if current is None:
                return True  # nothing to delete
            held = versions.trusted(versions.of_image(current, self.unit), horizon)
            if held >= change.version:
                return False
            stamped = change.version.to_typed(self.unit)
            try:
                ddb.update_item(
                    TableName=table,
                    Key=key,
                    **versions.restamp_update(
                        current, next(iter(change.keys)), change.version, self.unit
                    ),
                )
                ddb.delete_item(
                    TableName=table,
                    Key=key,
                    **versions.unchanged_condition(stamped, next(iter(change.keys))),
                )
                return True
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise
                # Written again meanwhile (the sender may have put its write back, newer).
        return False

    def _horizon(self) -> int:
        """Versions beyond this are a clock gone wrong (see versions.trusted)."""
        return self.clock() + self.max_skew_ms

    def _reject(
        self,
        batch: _Batch,
        raw: dict[str, Any],
        rejection: str,
        reason: str,
        keys: dict[str, Any] | None = None,
    ) -> str:
        outcome = self._poison(batch, raw, "", f"rejected ({rejection}): {reason}", keys)
        if outcome == "poison":  # counted once, as the report is sent once
            batch.count(rejection)
        return outcome

    def _poison(
        self,
        batch: _Batch,
        raw: dict[str, Any],
        table: str,
        reason: str,
        keys: dict[str, Any] | None = None,  # the item's, when the change could be decoded
    ) -> str:
        if not self.failures.report(reason, raw, keys):
            # Reported when the mapping first delivered it; this is a retry of its batch.
            batch.settle(raw, table, "poison_repeat")
            return "poison_repeat"
        self.logger.error("isolating a change that cannot be applied", extra={"reason": reason})
        batch.settle(raw, table, "poison")
        return "poison"

    # -- batch-wide steps ------------------------------------------------------------

    def _undo_resurrections(self, batch: _Batch) -> None:
        """Delete items this batch created although a newer delete is on record. The item
        is compared as the batch left it (the last put to it), not as the first put made it."""
        last_writes = [batch.written[kid] for kid in batch.created if kid in batch.written]
        if not last_writes:
            return
        try:
            tombstones = self.tombstones.versions(
                wire.key_id(w.table, w.change.keys) for w in last_writes
            )
        except (ClientError, RuntimeError) as exc:
            self.processor.mark_failed(
                [w.record for w in last_writes], TombstoneCheckError(str(exc))
            )
            return
        horizon = self._horizon()
        for written in last_writes:
            tombstone = tombstones.get(wire.key_id(written.table, written.change.keys))
            if versions.trusted(tombstone, horizon) < written.change.version:
                continue
            try:
                self.clients("dynamodb").delete_item(
                    TableName=written.table,
                    Key=wire.item_to_client(written.change.keys),
                    **versions.unchanged_condition(
                        written.change.version.to_typed(self.unit),
                        next(iter(written.change.keys)),
                    ),
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    self.processor.mark_failed([written.record], TombstoneCheckError(str(exc)))
                # Otherwise it changed since: a newer write here, which the sender compares
                # with the same tombstone.
                continue
            batch.settle(written.record, written.table, "stale")

    def _report(self, batch: _Batch, records: list[dict[str, Any]], failed) -> Counter:
        per_table: dict[str, Counter] = defaultdict(Counter)
        totals: Counter = Counter()
        for raw in records:
            table, outcome = batch.outcomes.get(id(raw), ("", "failed"))
            if id(raw) in failed:
                outcome = "failed"
            per_table[table][outcome] += 1
            totals[outcome] += 1
        for table, counts in per_table.items():
            if not table:
                continue
            lags = batch.lag_ms.get(table, [])
            if self.stats is None:
                continue
            try:
                self.stats.add(table, counts, max(lags) if lags else None, self.clock())
            except ClientError as exc:
                # Counters are for monitoring: never fail (and re-apply) a batch over them.
                self.logger.warning("could not update the stats table", extra={"error": str(exc)})
        all_lags = [lag for lags in batch.lag_ms.values() for lag in lags]
        timings = {"ReplicationLag": max(all_lags)} if all_lags else {}
        if batch.heartbeat_ages_ms:  # the freshest: how long ago the peer was last heard
            timings["HeartbeatAge"] = min(batch.heartbeat_ages_ms)
        counts = totals + batch.extra
        self.publish(counts, {**METRIC_NAMES, **REJECTIONS}, **timings)
        return counts


def _operator_record(position: int, change: wire.Change) -> dict[str, Any]:
    """A change made on this machine, shaped as the stream record it would have arrived in."""
    return {
        "eventID": f"operator:{position}",
        "eventSource": "operator",
        "kinesis": {
            "partitionKey": wire.partition_key(change),
            "sequenceNumber": str(position),
            "data": base64.b64encode(wire.pack(change, None)).decode(),
        },
    }
