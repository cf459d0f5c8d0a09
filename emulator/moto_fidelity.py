"""Where moto's DynamoDB Streams differ from AWS in a way the replication would notice, the
emulator makes them agree. Imported for its effect by emulator/resources.py.

- An UpdateItem that creates its item: moto records two INSERTs, the first holding only the
  key (it creates an empty item, then updates it), where DynamoDB records one INSERT of the
  item as written. A sender reading the first would see an application write of an item with
  no attributes and no version, and stamp it (or put it back) as such.
"""

from __future__ import annotations

from functools import wraps
from typing import Any

from moto.dynamodb.models import DynamoDBBackend

_update_item = DynamoDBBackend.update_item


@wraps(_update_item)
def _update_item_recording_one_insert(self: DynamoDBBackend, *args: Any, **kwargs: Any) -> Any:
    table = self.get_table(kwargs.get("table_name") or args[0])
    shard = table.stream_shard
    before = len(shard.items) if shard is not None else 0
    item = _update_item(self, *args, **kwargs)
    if shard is not None and len(shard.items) == before + 2:
        created, updated = shard.items[before], shard.items[before + 1]
        if created.record["eventName"] == updated.record["eventName"] == "INSERT":
            # The one INSERT keeps the first one's place (and sequence number) in the stream.
            sequence = created.record["dynamodb"]["SequenceNumber"]
            updated.record["dynamodb"]["SequenceNumber"] = sequence
            del shard.items[before]
    return item


if not getattr(DynamoDBBackend.update_item, "_one_insert", False):
    _update_item_recording_one_insert._one_insert = True  # type: ignore[attr-defined]
    DynamoDBBackend.update_item = _update_item_recording_one_insert  # type: ignore[method-assign]
