"""The sender: turns this region's stream records into changes for the peer region.

For each record it decides, in stream order per item:
- an echo of a change the replicator applied here (stamped by the peer): dropped;
- a write that did not give the item a newer version (no version, the same one, an older
  one, or one older than the item's tombstone): the item is stamped with a fresh version
  here, and that stamping write, seen next on the stream, is what gets shipped;
- a write stamped further ahead of this clock than the allowed skew (an application clock
  gone wrong): counted, logged, and stamped afresh like a write without a version, so it
  can't freeze the item in both regions;
- a delete: its version is derived from the stream record, kept as a tombstone, shipped;
- anything else: shipped as is.
Changes are then signed and shipped with PutRecords, retrying only the records that failed.
A record that can never be shipped (unreadable, too large even compressed, refused by its own
table) is isolated as poison; an error of this region's own infrastructure is retried.
Every minute a scheduled invocation also ships a heartbeat through the same path.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from aws_lambda_powertools.utilities.batch import EventType
from botocore.exceptions import BotoCoreError, ClientError

from replication import streams, versions, wire
from replication.batch import BatchOutcome, KeyOrderedBatchProcessor
from replication.function import PERMANENT_ERRORS, BatchResult, ReplicationFunction
from replication.peer import PeerCredentials, PeerStream
from replication.settings import SenderSettings
from replication.versions import UNVERSIONED, Version

# Kinesis PutRecords limits (a record's, 1 MiB, is wire.MAX_RECORD_BYTES).
MAX_RECORDS_PER_REQUEST = 500
MAX_BYTES_PER_REQUEST = 5 * 1024 * 1024
SHIP_ATTEMPTS = 6
# What the EventBridge schedule sends, every minute.
HEARTBEAT_EVENT = {"replication": "heartbeat"}
# Time kept back after the last attempt, to report failures and flush metrics.
REPORTING_MARGIN_MS = 2_000


METRIC_NAMES = {
    "shipped": "Shipped",
    "echo": "EchoesDropped",
    "unchanged": "UnchangedDropped",
    "restamped": "Restamped",
    "reinstated": "Reinstated",
    "superseded": "Superseded",
    "ttl_skipped": "TtlDeletesSkipped",
    "poison": "Poison",
    "failed": "Failed",
    "ship_retries": "ShipRetries",
    "peer_credential_refreshes": "PeerCredentialRefreshes",
    "future_clamped": "FutureVersionsClamped",
    "heartbeat_sent": "HeartbeatsSent",
}


class ShipError(RuntimeError):
    """The peer stream did not accept the record within the retries this invocation allows."""


class TombstoneError(RuntimeError):
    """This region's tombstone table failed a read or a write: retried, never poison (the
    table is at fault, not the record)."""


@dataclass
class _Outgoing:
    position: int  # the record's place in the batch, to keep stream order per item
    record: dict[str, Any]
    data: bytes
    partition_key: str


@dataclass
class _Batch:
    tombstones: dict[str, Version]
    positions: dict[int, int]  # id(record) -> its place in the batch
    horizon_ms: int  # versions beyond this are a clock gone wrong (versions.trusted)
    outgoing: list[_Outgoing] = field(default_factory=list)
    outcomes: dict[int, str] = field(default_factory=dict)  # id(record) -> outcome
    accepted: set[int] = field(default_factory=set)  # id(record) the peer stream took
    counts: Counter = field(default_factory=Counter)  # besides one outcome per record
    unreadable: dict[int, str] = field(default_factory=dict)  # id(record) -> why
    # Items deleted here whose delete record is still to come (Sender._settle_above).
    awaiting_delete: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, what: str) -> None:
        with self.lock:
            self.counts[what] += 1

    def settle(self, raw: dict[str, Any], outcome: str) -> None:
        with self.lock:
            self.outcomes[id(raw)] = outcome

    def trusted(self, version: Version | None) -> Version:
        return versions.trusted(version, self.horizon_ms)


class Sender(ReplicationFunction):
    service = "sender"

    def __init__(self, settings: SenderSettings, **shared: Any):
        super().__init__(settings, **shared)
        self.settings = settings
        self.unit = settings.version_unit  # of the stored versions in this region's tables
        self.peer = PeerStream(
            settings,
            PeerCredentials(
                self.clients.lazy("ssm"),
                settings.peer_credentials_prefix,
                settings.credentials_ttl_seconds,
            ),
        )
        # Full-jitter exponential backoff between PutRecords attempts; replaceable in tests.
        self.pause: Callable[[int], None] = _backoff
        self.processor = KeyOrderedBatchProcessor(
            EventType.DynamoDBStreams, _record_key, settings.concurrency, logger=self.logger
        )
        # A table captured through Kinesis Data Streams: its failures are named by Kinesis
        # sequence numbers.
        self.capture_processor = KeyOrderedBatchProcessor(
            EventType.KinesisDataStreams, _record_key, settings.concurrency, logger=self.logger
        )

    # -- the public API --------------------------------------------------------------

    def handle(self, event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        """Lambda's entry point: a table's changes (a DynamoDB stream event, or a capture
        stream's Kinesis event), or the schedule's heartbeat event, in; the partial-batch
        response out. A batch whose every record failed raises, so the
        mapping treats it as a function error."""
        if event == HEARTBEAT_EVENT:
            return self.send_heartbeat(context)
        outcome, _ = self._run(event.get("Records", []), context)
        outcome.raise_if_all_failed()
        return outcome.response

    def process(self, records: list[dict[str, Any]], context: Any = None) -> BatchResult:
        """Ship this region's stream records (as Lambda delivers them) to the peer; how each
        ended. `context` (Lambda's) bounds the retries by the time left."""
        outcome, counts = self._run(records, context)
        return BatchResult.of(outcome, counts)

    def _run(self, records: list[dict[str, Any]], context: Any) -> tuple[BatchOutcome, Counter]:
        horizon = self.clock() + self.max_skew_ms
        batch = _Batch(
            tombstones={},
            positions={id(record): i for i, record in enumerate(records)},
            horizon_ms=horizon,
        )
        refreshes_before = self.peer.credential_refreshes
        failed: set[int] | frozenset[int] = {id(raw) for raw in records}  # unless it completes
        processor = self.processor
        if records and streams.is_capture(records[0]):
            processor = self.capture_processor
            for raw in records:
                try:
                    streams.open_capture(raw)
                except streams.UnreadableRecord as exc:
                    batch.unreadable[id(raw)] = str(exc)

        def ship() -> None:
            unshipped = self._ship(batch, context)
            if unshipped:
                processor.mark_failed(unshipped, ShipError("not accepted by the peer stream"))

        try:
            batch.tombstones, batch.awaiting_delete = self._tombstones_of(
                self._tombstone_keys(records, horizon)
            )
            outcome = processor.run(records, partial(self._handle_record, batch), after=ship)
            failed = outcome.failed
        finally:
            batch.counts["peer_credential_refreshes"] = (
                self.peer.credential_refreshes - refreshes_before
            )
            counts = self._outcome_counts(batch, records, failed)
            self.publish(counts, METRIC_NAMES)
        return outcome, counts

    def send_heartbeat(self, context: Any = None) -> dict[str, Any]:
        """Ship a heartbeat through the path changes take (signed, with the peer's keys, to the
        peer's stream); the peer's replicator records how old it is on arrival."""
        change = wire.heartbeat(self.settings.region, self.clock())
        record = {"eventID": change.event_id}
        batch = _Batch(tombstones={}, positions={id(record): 0}, horizon_ms=0)
        data = wire.pack(change, self.signing.get())
        batch.outgoing.append(_Outgoing(0, record, data, wire.partition_key(change)))
        try:
            if self._ship(batch, context):
                raise ShipError("the peer stream did not accept the heartbeat")
            batch.count("heartbeat_sent")
        finally:
            self.publish(batch.counts, METRIC_NAMES)
        return {"heartbeat": change.version.to_wire()}

    def _outcome_counts(self, batch: _Batch, records: list[dict[str, Any]], failed: set[int]):
        """One outcome per record, as it truly ended: a change counts as shipped only once the
        peer's stream took it, and a record the mapping will retry counts as failed."""
        counts = Counter(batch.counts)
        for raw in records:
            outcome = batch.outcomes.get(id(raw), "failed")
            if id(raw) in failed:
                outcome = "failed"
            elif outcome == "queued":
                outcome = "shipped" if id(raw) in batch.accepted else "failed"
            counts[outcome] += 1
        return counts

    # -- per record ------------------------------------------------------------------

    def _handle_record(self, batch: _Batch, record: Any) -> str:
        raw = record.raw_event
        if id(raw) in batch.unreadable:
            return self._poison(batch, raw, batch.unreadable[id(raw)])
        try:
            table = streams.table_of(raw)
            keys = streams.keys_of(raw)
            created = streams.created_ms(raw)
            name = streams.event_name(raw)
            if name not in ("INSERT", "MODIFY", "REMOVE"):
                raise streams.UnreadableRecord(f"unknown eventName {name!r}")
            if name != "REMOVE" and not streams.images(raw).get("NewImage"):
                raise streams.UnreadableRecord(
                    "record has no NewImage: the stream must be NEW_AND_OLD_IMAGES"
                )
        except streams.UnreadableRecord as exc:
            return self._poison(batch, raw, str(exc))
        try:
            if name == "REMOVE":
                outcome = self._handle_remove(batch, raw, table, keys, created)
            else:
                outcome = self._handle_write(batch, raw, table, keys, created)
        except ClientError as exc:
            # Only calls on the record's own table get here (the tombstone table's errors are
            # TombstoneErrors): one it refuses for good can't be replicated by retrying.
            if exc.response.get("Error", {}).get("Code") not in PERMANENT_ERRORS:
                raise
            return self._poison(batch, raw, f"{table} refused a write replication needs: {exc}")
        batch.settle(raw, outcome)
        return outcome

    def _handle_write(self, batch, raw, table, keys, created) -> str:
        new = streams.images(raw)["NewImage"]
        old = streams.images(raw).get("OldImage")
        if old is not None and new == old:
            return "unchanged"
        if self._is_echo(raw, batch.horizon_ms):
            return "echo"
        new_version = versions.of_image(new, self.unit)
        # A local write must be newer than the item's old version and its tombstone: a write
        # on an item that a replicated put brought back while its delete was being recorded
        # would otherwise lose to that delete in the peer region only.
        floor = max(
            batch.trusted(versions.of_image(old, self.unit)),
            batch.trusted(batch.tombstones.get(wire.key_id(table, keys))),
        )
        if new_version is not None and new_version.beyond(batch.horizon_ms):
            batch.count("future_clamped")
            self.logger.warning(
                "a write was stamped ahead of this clock by more than the allowed skew; "
                "stamping it afresh",
                extra={"table": table, "keys": keys, "stamped": new_version},
            )
            return self._restamp(batch, raw, table, keys, new, floor, None)
        from_peer = new_version is not None and new_version.region != self.settings.region
        if new_version is None or from_peer or new_version <= floor:
            return self._restamp(batch, raw, table, keys, new, floor, new_version)
        return self._queue(batch, raw, wire.PUT, table, keys, new_version, created, item=new)

    def _restamp(self, batch: _Batch, raw, table, keys, image, floor, seen) -> str:
        """Give the item a version newer than everything it is compared with; the stream
        then carries that write, which is shipped in place of this one."""
        above = max(floor, seen or UNVERSIONED)
        fresh = above.bumped(self.clock(), self.settings.region)
        try:
            self._stamp(table, keys, image, fresh)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            # The least a delete of this write must outrank: what it saw, from when it was made.
            least = above.bumped(streams.created_ms(raw), self.settings.region)
            return self._settle_above(batch, raw, table, keys, image, fresh, least)
        self.logger.info(
            "stamped a write that carried no newer version",
            extra={"table": table, "keys": keys, "seen": seen, "stamped": fresh},
        )
        return "restamped"

    def _stamp(self, table, keys, image, fresh: Version) -> None:
        """Set the item's version to `fresh`, if it still carries the version `image` has."""
        self.clients("dynamodb").update_item(
            TableName=table,
            Key=wire.item_to_client(keys),
            **versions.restamp_update(
                wire.item_to_client(image), next(iter(keys)), fresh, self.unit
            ),
        )

    def _settle_above(
        self, batch, raw, table, keys, image, fresh: Version, least: Version, attempts=3
    ) -> str:
        """The item changed before this write could be stamped `fresh`. Whatever it holds
        now must still end up above what this write saw (which the peer may hold):
        - a later local write is lifted to `fresh`;
        - an older replicated change is overwritten by this write, put back at `fresh`;
        - a later local delete gets a tombstone at `least` (above what this write saw), which
          its own record, later on the stream, ships at its own version if that is higher;
        - a delete newer than what this write saw (the peer's, applied since) stands."""
        ddb = self.clients("dynamodb")
        kid, key_attr = wire.key_id(table, keys), next(iter(keys))
        for _ in range(attempts):
            current = ddb.get_item(
                TableName=table, Key=wire.item_to_client(keys), ConsistentRead=True
            ).get("Item")
            try:
                if current is not None:
                    held = versions.of_image(current, self.unit)
                    if held is not None and held.beyond(batch.horizon_ms):
                        held = None  # a clock gone wrong: lift it like an unstamped write
                    if held is not None and held >= fresh:
                        return "superseded"
                    if held is None or held.region == self.settings.region:
                        self._stamp(table, keys, wire.item_from_client(current), fresh)
                        return "restamped"
                    self._put_back(
                        table, image, fresh, versions.unchanged_condition(current, key_attr)
                    )
                    return self._reinstated(table, keys, held, fresh)
                tombstone = self._tombstone_versions([kid]).get(kid)
                if tombstone is not None and tombstone.beyond(batch.horizon_ms):
                    tombstone = None
                # Gone, by a delete newer than anything this write saw: that delete came
                # after it (had it come before, this write would have re-created the item),
                # so it wins, however high `fresh` was lifted.
                seen = batch.trusted(
                    versions.of_image(streams.images(raw).get("OldImage"), self.unit)
                )
                if tombstone is not None and (tombstone >= fresh or tombstone > seen):
                    return "superseded"
                if tombstone is not None and tombstone.region != self.settings.region:
                    self._put_back(table, image, fresh, _absent(key_attr))
                    return self._reinstated(table, keys, tombstone, fresh)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise
                continue  # it changed again: look once more
            # Deleted here after this write: the delete must outrank what this write saw. Not
            # at this clock, though: the sender may run well after the delete, and a version
            # from now would beat the peer's writes made since. The delete's own record comes
            # later on the stream and ships it; the tombstone says so, so that it isn't taken
            # for an echo of this one.
            batch.tombstones[kid] = self._record_tombstone(
                kid, least, batch.horizon_ms, awaiting_delete=True
            )
            batch.awaiting_delete.add(kid)
            return "superseded"
        raise RuntimeError(f"{table} {keys}: the item kept changing while being stamped")

    def _reinstated(self, table, keys, overwritten_by: Version, fresh: Version) -> str:
        self.logger.info(
            "put back a write an older replicated change had overwritten",
            extra={
                "table": table,
                "keys": keys,
                "overwritten_by": overwritten_by,
                "stamped": fresh,
            },
        )
        return "reinstated"

    def _handle_remove(self, batch, raw, table, keys, created) -> str:
        if streams.is_ttl_delete(raw) and self.settings.ttl_deletes == "skip":
            return "ttl_skipped"
        old_version = batch.trusted(
            versions.of_image(streams.images(raw).get("OldImage"), self.unit)
        )
        # Derived from the record alone, so a redelivered delete gets the same version.
        version = Version(max(created, old_version.timestamp + 1), self.settings.region)
        kid = wire.key_id(table, keys)
        known = batch.trusted(batch.tombstones.get(kid))
        # The functions delete only items the peer stamped: the replicator stamps one written
        # here with the peer's delete before deleting it (inbound.Replicator._delete_item).
        by_function = old_version.region == self.settings.peer_region
        awaited = kid in batch.awaiting_delete and known.region == self.settings.region
        if by_function and awaited:
            # The delete _settle_above awaited was the replicator's, of an older peer delete
            # that a newer tombstone here hid: the write it removed goes back, above both.
            return self._reinstate_removed(batch, raw, table, keys, kid, known)
        if by_function and old_version == known:
            return "echo"  # the replicator applied the peer's delete
        if known > old_version and known != version:
            if by_function:
                # The replicator or the sender undid a resurrection under a newer tombstone.
                return "echo"
            # An application deleted a write of this region's below the tombstone (re-created
            # over it, or awaited: _settle_above): the delete ships above what the write saw.
            if known.region == self.settings.region:
                version = max(version, known)
            else:
                version = max(version, known.bumped(created, self.settings.region))
        stored = self._record_tombstone(kid, version, batch.horizon_ms)
        if awaited:
            if stored == version:
                self._settle_awaited(kid, version)  # the mark goes; the tombstone stays
            batch.awaiting_delete.discard(kid)
        batch.tombstones[kid] = stored  # later writes to this item in the batch must beat it
        if stored > version:
            return "echo"
        # A replicated put may have re-created the item between the delete and the
        # tombstone; take it out again unless it is newer than this delete.
        self._delete_resurrected(table, keys, version)
        return self._queue(batch, raw, wire.DELETE, table, keys, version, created)

    def _reinstate_removed(self, batch, raw, table, keys, kid: str, awaited: Version) -> str:
        removed = streams.images(raw)["OldImage"]
        fresh = awaited.bumped(self.clock(), self.settings.region)
        try:
            self._put_back(table, removed, fresh, _absent(next(iter(keys))))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            # Written again since: that write's own record follows.
        self._settle_awaited(kid, awaited)
        batch.awaiting_delete.discard(kid)
        return self._reinstated(table, keys, versions.of_image(removed, self.unit), fresh)

    def _put_back(self, table, image, fresh: Version, condition: dict[str, Any]) -> None:
        """Write `image` again at `fresh`, if the item is as `condition` says."""
        self.clients("dynamodb").put_item(
            TableName=table,
            Item={**wire.item_to_client(image), **fresh.to_typed(self.unit)},
            **condition,
        )

    def _record_tombstone(
        self, kid: str, version: Version, horizon_ms: int, awaiting_delete: bool = False
    ) -> Version:
        try:
            return self.tombstones.record(kid, version, horizon_ms, awaiting_delete)
        except ClientError as exc:
            raise TombstoneError(f"{self.tombstones.table}: {exc}") from exc

    def _settle_awaited(self, kid: str, version: Version) -> None:
        try:
            self.tombstones.settle_awaited(kid, version)
        except ClientError as exc:
            raise TombstoneError(f"{self.tombstones.table}: {exc}") from exc

    def _tombstone_versions(self, kids: list[str]) -> dict[str, Version]:
        return self._tombstones_of(kids)[0]

    def _tombstones_of(self, kids: list[str]) -> tuple[dict[str, Version], set[str]]:
        try:
            return self.tombstones.read(kids)
        except ClientError as exc:
            raise TombstoneError(f"{self.tombstones.table}: {exc}") from exc

    def _delete_resurrected(self, table, keys, version: Version) -> None:
        try:
            self.clients("dynamodb").delete_item(
                TableName=table,
                Key=wire.item_to_client(keys),
                **versions.replica_older_than_condition(version, self.settings.region, self.unit),
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise

    def _queue(self, batch: _Batch, raw, op, table, keys, version, created, item=None) -> str:
        change = wire.Change(
            table=table,
            op=op,
            keys=keys,
            version=version,
            origin=self.settings.region,
            stream_ts_ms=created,
            item=item,
            event_id=raw.get("eventID", ""),
        )
        try:
            data = wire.pack(change, self.signing.get())
        except wire.ChangeTooLarge as exc:
            return self._poison(batch, raw, str(exc))
        key = wire.partition_key(change)
        with batch.lock:
            batch.outgoing.append(_Outgoing(batch.positions[id(raw)], raw, data, key))
        return "queued"

    def _poison(self, batch: _Batch, raw: dict[str, Any], reason: str) -> str:
        if not self.failures.report(reason, raw, keys=streams.images(raw).get("Keys")):
            # Reported when the mapping first delivered it; this is a retry of its batch.
            batch.settle(raw, "poison_repeat")
            return "poison_repeat"
        self.logger.error("isolating a record that cannot be replicated", extra={"reason": reason})
        batch.settle(raw, "poison")
        return "poison"

    # -- shipping --------------------------------------------------------------------

    def _ship(self, batch: _Batch, context: Any) -> list[dict[str, Any]]:
        """PutRecords everything queued; returns the records still not accepted."""
        pending = sorted(batch.outgoing, key=lambda o: o.position)
        for attempt in range(SHIP_ATTEMPTS):
            if not pending:
                break
            if attempt:
                self.pause(attempt)
            if _remaining_ms(context) < self._attempt_budget_ms():
                break  # an attempt might not finish before the function times out
            if attempt:
                batch.counts["ship_retries"] += len(pending)
            sent, pending = pending, [o for c in _chunks(pending) for o in self._put_chunk(c)]
            refused = {id(o) for o in pending}
            batch.accepted.update(id(o.record) for o in sent if id(o) not in refused)
        return [o.record for o in pending]

    def _attempt_budget_ms(self) -> int:
        """The longest one PutRecords attempt can take, plus time to report the outcome."""
        s = self.settings
        return 1000 * (s.connect_timeout_seconds + s.read_timeout_seconds) + REPORTING_MARGIN_MS

    def _put_chunk(self, chunk: list[_Outgoing]) -> list[_Outgoing]:
        try:
            response = self.peer.put_records(
                [{"Data": o.data, "PartitionKey": o.partition_key} for o in chunk]
            )
        except (ClientError, BotoCoreError) as exc:
            self.logger.warning(
                "PutRecords failed", extra={"error": str(exc), "records": len(chunk)}
            )
            return chunk
        results = response.get("Records", [])
        return [o for o, result in zip(chunk, results, strict=True) if result.get("ErrorCode")]

    # -- reporting -------------------------------------------------------------------

    def _is_echo(self, raw: dict[str, Any], horizon_ms: int) -> bool:
        """A write the replicator made: stamped by the peer, and moving the version forward
        (the replicator never writes otherwise; an application write that kept the peer's
        version did not move it, and is stamped as a local change). An old version beyond the
        horizon counts as none: the replicator overwrites such a version."""
        new_version = versions.of_image(streams.images(raw).get("NewImage"), self.unit)
        # Only the peer's replicator writes here under another region's name: a write stamped
        # with any third region is an application's, shipped (after stamping) like any other.
        if new_version is None or new_version.region != self.settings.peer_region:
            return False
        if new_version.beyond(horizon_ms):
            return False
        old = versions.trusted(
            versions.of_image(streams.images(raw).get("OldImage"), self.unit), horizon_ms
        )
        return new_version > old

    def _tombstone_keys(self, records: list[dict[str, Any]], horizon_ms: int) -> list[str]:
        """Local writes and deletes are compared with tombstones; read them all in one go."""
        wanted = []
        for raw in records:
            name = streams.event_name(raw)
            try:
                echo = name in ("INSERT", "MODIFY") and self._is_echo(raw, horizon_ms)
                if name == "REMOVE" or (name in ("INSERT", "MODIFY") and not echo):
                    wanted.append(wire.key_id(streams.table_of(raw), streams.keys_of(raw)))
            except (streams.UnreadableRecord, KeyError, TypeError, AttributeError):
                continue
        return wanted


def _absent(key_attribute: str) -> dict[str, Any]:
    """ConditionExpression parameters that hold while the item does not exist."""
    return {
        "ConditionExpression": "attribute_not_exists(#vkey)",
        "ExpressionAttributeNames": {"#vkey": key_attribute},
    }


def _record_key(raw: dict[str, Any]) -> str:
    return wire.key_id(streams.table_of(raw), streams.keys_of(raw))


def _chunks(items: list[_Outgoing]):
    chunk: list[_Outgoing] = []
    size = 0
    for item in items:
        item_size = len(item.data) + len(item.partition_key)
        if chunk and (
            len(chunk) == MAX_RECORDS_PER_REQUEST or size + item_size > MAX_BYTES_PER_REQUEST
        ):
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += item_size
    if chunk:
        yield chunk


def _backoff(attempt: int) -> None:
    time.sleep(random.uniform(0, min(2.0, 0.1 * 2**attempt)))


def _remaining_ms(context: Any) -> int:
    getter = getattr(context, "get_remaining_time_in_millis", None)
    return getter() if getter else 60_000
