"""A backfill's progress on disk: which segments are done and where each unfinished one
resumes, saved atomically after every page so that a run killed at any moment resumes."""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
import threading
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from replication import wire
from tools.operations.sides import OperationError

CHECKPOINT_KIND = "ddb-replication-backfill"
CHECKPOINT_VERSION = 1
DEFAULT_SEGMENTS = 4
IDENTITY = ("region", "table", "peer_region", "peer_table")  # what a checkpoint is for


# -- counts ----------------------------------------------------------------------------------


@dataclass
class Counts:
    scanned: int = 0  # items read from the source table
    copied: int = 0  # written at the peer
    stale: int = 0  # left alone: the peer's version (or delete) is as new or newer
    stamped: int = 0  # had no version: stamped in the source first
    vanished: int = 0  # had no version and was deleted before it could be stamped
    failed: int = 0  # not written; the page is read again on the next run
    # Can never be written: too large to take a version, or refused by the peer's table
    # (then it is in the peer's replicator failure queue). Not retried.
    poison: int = 0

    def add(self, other: Counts) -> None:
        for name in self.names():
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_dict(cls, raw: Any) -> Counts:
        if not isinstance(raw, dict):
            raise ValueError("counts must be an object")
        values = {name: raw.get(name, 0) for name in cls.names()}
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in values.values()):
            raise ValueError("counts must be whole numbers")
        return cls(**values)


# -- the checkpoint --------------------------------------------------------------------------


@dataclass
class SegmentState:
    last_key: dict[str, Any] | None = None  # typed (wire form): where the next page starts
    done: bool = False
    counts: Counts = field(default_factory=Counts)  # of the pages applied, over every run


@dataclass
class Checkpoint:
    """Where each segment of one backfill stands. Saved whole, atomically, after every page,
    so a run killed at any moment leaves either the previous file or the next one."""

    path: Path
    identity: dict[str, str]  # region, table, peer_region, peer_table
    segments: list[SegmentState]
    persist: bool = True  # False for a dry run: kept in memory only
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def finished(self) -> bool:
        return all(s.done for s in self.segments)

    def segments_done(self) -> int:
        return sum(s.done for s in self.segments)

    def total(self) -> Counts:
        total = Counts()
        for state in self.segments:
            total.add(state.counts)
        return total

    def advance(self, index: int, next_key: dict[str, Any] | None, counts: Counts) -> int:
        """Record an applied page; returns how many segments are done."""
        with self._lock:
            state = self.segments[index]
            state.last_key, state.done = next_key, next_key is None
            state.counts.add(counts)
            self._save_locked()
            return self.segments_done()

    def save(self) -> None:
        with self._lock:
            self._save_locked()

    def _save_locked(self) -> None:
        if not self.persist:
            return
        document = {
            "kind": CHECKPOINT_KIND,
            "version": CHECKPOINT_VERSION,
            **self.identity,
            "total_segments": len(self.segments),
            "updated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "segments": [
                {"done": s.done, "last_key": s.last_key, "counts": asdict(s.counts)}
                for s in self.segments
            ],
        }
        temporary = None
        try:
            # Beside the checkpoint, so the rename stays on one filesystem and is atomic.
            with tempfile.NamedTemporaryFile(
                "w", dir=self.path.parent, prefix=f".{self.path.name}.", delete=False
            ) as temporary:
                json.dump(document, temporary, indent=1, ensure_ascii=False)
                temporary.flush()
                os.fsync(temporary.fileno())
            os.replace(temporary.name, self.path)
        except OSError as error:
            if temporary is not None:
                Path(temporary.name).unlink(missing_ok=True)
            raise OperationError(f"cannot write checkpoint {self.path}: {error}") from None


def default_checkpoint_path(region: str, table: str) -> Path:
    return Path(f".backfill-{region}-{table}.json")


def open_checkpoint(
    path: Path, identity: dict[str, str], segments: int | None, restart: bool
) -> Checkpoint:
    """The checkpoint at `path` if it is this backfill's, else a fresh one (with --restart,
    or when there is none). `segments` None means the checkpoint's own count."""
    if restart or not path.exists():
        fresh = [SegmentState() for _ in range(segments or DEFAULT_SEGMENTS)]
        return Checkpoint(path, identity, fresh)
    try:
        states, saved_identity = _parse_checkpoint(json.loads(path.read_text()))
    except (OSError, ValueError, wire.MalformedChange) as error:
        raise OperationError(
            f"checkpoint {path} is unreadable ({error}): remove it or pass --restart"
        ) from None
    if saved_identity != identity or (segments is not None and segments != len(states)):
        raise OperationError(
            f"checkpoint {path} is for {describe(saved_identity)} in {len(states)} segments, "
            f"not {describe(identity)} in {segments or len(states)}: "
            "pass --restart to start over (or another --checkpoint)"
        )
    return Checkpoint(path, identity, states)


def _parse_checkpoint(document: Any) -> tuple[list[SegmentState], dict[str, str]]:
    if not isinstance(document, dict) or document.get("kind") != CHECKPOINT_KIND:
        raise ValueError("not a backfill checkpoint")
    if document.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"checkpoint version {document.get('version')!r}")
    identity = {name: document.get(name) for name in IDENTITY}
    if not all(isinstance(value, str) and value for value in identity.values()):
        raise ValueError(f"it must name {', '.join(IDENTITY)}")
    raw_segments = document.get("segments")
    if not isinstance(raw_segments, list) or not raw_segments:
        raise ValueError("no segments")
    if document.get("total_segments", len(raw_segments)) != len(raw_segments):
        raise ValueError("total_segments does not match the segments")
    states = []
    for raw in raw_segments:
        if not isinstance(raw, dict) or not isinstance(raw.get("done"), bool):
            raise ValueError("a segment without its done flag")
        last_key = raw.get("last_key")
        if last_key is not None:
            wire.validate_keys(last_key)
        states.append(SegmentState(last_key, raw["done"], Counts.from_dict(raw.get("counts"))))
    return states, identity


def describe(identity: dict[str, Any]) -> str:
    return (
        f"{identity.get('table')} ({identity.get('region')}) -> "
        f"{identity.get('peer_table')} ({identity.get('peer_region')})"
    )
