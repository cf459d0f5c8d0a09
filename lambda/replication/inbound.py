"""The replicator: applies the peer region's changes to this region's tables.

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
from replication.batch import KeyOrderedBatchProcessor
from replication.function import ReplicationFunction
from replication.settings import ReplicatorSettings
from replication.stats import StatsTable

# What DynamoDB says about a write that can never succeed as sent (item too large, key
# schema does not match the local table...): retrying would only block the shard.
PERMANENT_ERRORS = frozenset({"ValidationException", "SerializationException"})


METRIC_NAMES = {
    "replicated": "Replicated",
    "stale": "Stale",
    "failed": "Failed",
    "poison": "Poison",
}


class TombstoneCheckError(RuntimeError):
    """A created item could not be checked against the tombstones; retried."""


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
    lock: threading.Lock = field(default_factory=threading.Lock)

    def settle(self, record: dict[str, Any], table: str, outcome: str, lag_ms: int | None = None):
        with self.lock:
            self.outcomes[id(record)] = (table, outcome)
            if lag_ms is not None:
                self.lag_ms[table].append(lag_ms)


class Replicator(ReplicationFunction):
    service = "replicator"

    def __init__(self, settings: ReplicatorSettings, **shared: Any):
        super().__init__(settings, **shared)
        self.settings = settings
        self.stats = StatsTable(self.clients.lazy("dynamodb"), settings.stats_table)
        self.processor = KeyOrderedBatchProcessor(
            EventType.KinesisDataStreams,
            lambda raw: raw["kinesis"]["partitionKey"],
            settings.concurrency,
            logger=self.logger,
        )

    def handle(self, event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        records = event.get("Records", [])
        batch = _Batch()
        try:
            with self.processor(records=records, handler=partial(self._apply_record, batch)):
                self.processor.process()
                self._undo_resurrections(batch)
        finally:
            self._report(batch, records, {id(m.raw_event) for m in self.processor.fail_messages})
        return self.processor.response()

    # -- per record ------------------------------------------------------------------

    def _apply_record(self, batch: _Batch, record: Any) -> str:
        raw = record.raw_event
        try:
            change = wire.decode(base64.b64decode(raw["kinesis"]["data"], validate=True))
        except (wire.MalformedChange, binascii.Error, KeyError, TypeError, ValueError) as exc:
            return self._poison(batch, raw, "", f"undecodable change: {exc}")
        table = self.settings.table_map.get(change.table)
        if table is None:
            return self._poison(
                batch, raw, "", f"no local table is mapped for {change.table!r}", change.keys
            )
        if change.origin == self.settings.region:
            return self._poison(
                batch,
                raw,
                table,
                f"change came from this region ({change.origin}): a loop",
                change.keys,
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

    def _put(self, batch: _Batch, raw, table: str, change: wire.Change) -> str:
        try:
            response = self.clients("dynamodb").put_item(
                TableName=table,
                Item=wire.item_to_client(change.item),
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **versions.older_than_condition(change.version),
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            if versions.of_image(exc.response.get("Item")) == change.version:
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
        self.tombstones.record(kid, change.version)
        try:
            self.clients("dynamodb").delete_item(
                TableName=table,
                Key=wire.item_to_client(change.keys),
                **versions.older_than_condition(change.version),
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            return "stale"
        batch.written.pop(kid, None)  # nothing of the batch's puts is left to check
        return "replicated"

    def _poison(
        self,
        batch: _Batch,
        raw: dict[str, Any],
        table: str,
        reason: str,
        keys: dict[str, Any] | None = None,  # the item's, when the change could be decoded
    ) -> str:
        self.logger.error("isolating a change that cannot be applied", extra={"reason": reason})
        self.failures.report(reason, raw, keys)
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
        for written in last_writes:
            tombstone = tombstones.get(wire.key_id(written.table, written.change.keys))
            if tombstone is None or tombstone < written.change.version:
                continue
            try:
                self.clients("dynamodb").delete_item(
                    TableName=written.table,
                    Key=wire.item_to_client(written.change.keys),
                    **versions.unchanged_condition(
                        written.change.version.to_typed(), next(iter(written.change.keys))
                    ),
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    self.processor.mark_failed([written.record], TombstoneCheckError(str(exc)))
                # Otherwise it changed since: a newer write here, which the sender compares
                # with the same tombstone.
                continue
            batch.settle(written.record, written.table, "stale")

    def _report(self, batch: _Batch, records: list[dict[str, Any]], failed: set[int]) -> None:
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
            try:
                self.stats.add(table, counts, max(lags) if lags else None, self.clock())
            except ClientError as exc:
                # Counters are for monitoring: never fail (and re-apply) a batch over them.
                self.logger.warning("could not update the stats table", extra={"error": str(exc)})
        all_lags = [lag for lags in batch.lag_ms.values() for lag in lags]
        timings = {"ReplicationLag": max(all_lags)} if all_lags else {}
        self.publish(totals, METRIC_NAMES, **timings)
