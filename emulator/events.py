"""Replicator events made up for tests and benchmarks: changes (or raw bytes) in the shape Lambda
delivers Kinesis records (deployment.events shapes records read from a real stream)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from deployment.events import kinesis_record
from replication import wire
from replication.signing import SigningKeys


def kinesis_batch(
    payloads: list[bytes | wire.Change],
    stream_arn: str,
    region: str,
    first_sequence: int = 1000,
    keys: SigningKeys | None = None,
) -> dict[str, Any]:
    """A replicator event carrying changes, signed with `keys` as a sender would (unsigned
    without), or raw bytes (for malformed ones), in order."""
    records = []
    for offset, payload in enumerate(payloads):
        change = payload if isinstance(payload, wire.Change) else None
        data = wire.pack(change, keys) if change else payload
        sequence = str(first_sequence + offset)
        raw = {
            "PartitionKey": wire.partition_key(change) if change else f"raw-{sequence}",
            "SequenceNumber": sequence,
            "Data": data,
            "ApproximateArrivalTimestamp": _EPOCH,
        }
        records.append(kinesis_record(raw, stream_arn, "shardId-000000000000", region))
    return {"Records": records}


_EPOCH = datetime.fromtimestamp(1, UTC)
