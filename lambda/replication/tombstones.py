"""Tombstones: the version at which each recently deleted item was deleted.

A delete leaves no item to hold its version, so without a tombstone an older put that
arrives after the delete would bring the item back. Each region keeps its tombstones in a
table of its own (partition key `pk`, the item's key_id; expiring through DynamoDB TTL on
`expires_at`) and consults them before letting a put create an item.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from typing import Any

from botocore.exceptions import ClientError

from replication.versions import Version, of_image, older_than_condition, unchanged_condition

KEY_ATTR = "pk"
EXPIRY_ATTR = "expires_at"
AWAITING_ATTR = "awaits_local_delete"
_BATCH_GET_LIMIT = 100
# DynamoDB takes a partition key of at most 2,048 bytes; an item's key_id (the JSON of its
# table and keys) can be longer (a long key, or a short one of control characters, which JSON
# writes six bytes each). Those are kept under a digest; shorter ones as they are, readable.
MAX_READABLE_KEY_BYTES = 1_024


def storage_key(key_id: str) -> str:
    """The tombstone table's partition key for an item's key_id: itself, or a digest if long."""
    if len(key_id.encode("utf-8", "surrogatepass")) <= MAX_READABLE_KEY_BYTES:
        return key_id
    return "sha256:" + hashlib.sha256(key_id.encode("utf-8", "surrogatepass")).hexdigest()


class Tombstones:
    def __init__(
        self,
        dynamodb: Any,
        table: str,
        ttl_seconds: int,
        clock: Callable[[], float] = time.time,
    ):
        self._dynamodb = dynamodb
        self.table = table
        self._ttl = ttl_seconds
        self._clock = clock

    def versions(self, key_ids: Iterable[str]) -> dict[str, Version]:
        """The tombstone version of each key that has one; strongly consistent reads."""
        return self.read(key_ids)[0]

    def read(self, key_ids: Iterable[str]) -> tuple[dict[str, Version], set[str]]:
        """The tombstone version of each key that has one, and the keys whose tombstone was
        recorded ahead of a delete made in this region, whose own stream record is still to
        come (record(..., awaiting_delete=True)); strongly consistent reads."""
        found: dict[str, Version] = {}
        awaiting: set[str] = set()
        for key_id, row in self._rows(key_ids).items():
            version = of_image(row)
            if version is not None:
                found[key_id] = version
                if row.get(AWAITING_ATTR, {}).get("BOOL"):
                    awaiting.add(key_id)
        return found, awaiting

    def settle_awaited(self, key_id: str, version: Version) -> None:
        """The awaited delete came, at the tombstone's own version: the mark goes, so that a
        later delete of this item is taken for what it is (PutItem, the tombstone unchanged)."""
        try:
            self._dynamodb.put_item(
                TableName=self.table,
                Item=self._item(key_id, version),
                **unchanged_condition(version.to_typed(), KEY_ATTR),
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise

    def _item(self, key_id: str, version: Version) -> dict[str, Any]:
        return {
            KEY_ATTR: {"S": storage_key(key_id)},
            **version.to_typed(),
            EXPIRY_ATTR: {"N": str(int(self._clock()) + self._ttl)},
        }

    def _rows(self, key_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        stored_as = {storage_key(k): k for k in key_ids}
        wanted = list(stored_as)
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(wanted), _BATCH_GET_LIMIT):
            pending: dict[str, Any] = {
                self.table: {
                    "Keys": [
                        {KEY_ATTR: {"S": k}} for k in wanted[start : start + _BATCH_GET_LIMIT]
                    ],
                    "ConsistentRead": True,
                }
            }
            for attempt in range(8):
                response = self._dynamodb.batch_get_item(RequestItems=pending)
                for row in response.get("Responses", {}).get(self.table, []):
                    found[stored_as[row[KEY_ATTR]["S"]]] = row
                pending = response.get("UnprocessedKeys") or {}
                if not pending:
                    break
                time.sleep(min(0.05 * 2**attempt, 1.0))
            else:
                raise RuntimeError(f"{self.table}: keys still unprocessed after retries")
        return found

    def record(
        self,
        key_id: str,
        version: Version,
        horizon_ms: int | None = None,
        awaiting_delete: bool = False,
    ) -> Version:
        """Store `version` unless a newer tombstone exists (one beyond `horizon_ms` doesn't
        count: see versions.trusted); returns the tombstone now stored. `awaiting_delete`: the
        item was deleted here and the delete's own record is still to come, so this tombstone
        is the least version it may have, not an echo of it."""
        item = self._item(key_id, version)
        if awaiting_delete:
            item[AWAITING_ATTR] = {"BOOL": True}
        try:
            self._dynamodb.put_item(
                TableName=self.table,
                Item=item,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **older_than_condition(version, horizon_ms),
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            return of_image(exc.response.get("Item")) or version
        return version
