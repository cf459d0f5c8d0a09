"""Both tables' items reduced to (key, content digest, version), kept in SQLite on disk, so that
comparing tables of millions of items takes little memory: scanning threads hand pages to one
writer through a bounded queue, and the differences are read back with indexed joins."""

from __future__ import annotations

import hashlib
import json
import queue
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from replication import versions, wire

SIDES = ("here", "peer")
_SETS = ("SS", "NS", "BS")


def canonical(value: dict[str, Any]) -> Any:
    """A typed value (wire form) with set members sorted, maps recursed: equal items are equal
    text, whatever order DynamoDB returned set members in."""
    kind, inner = next(iter(value.items()))
    if kind in _SETS:
        return {kind: sorted(inner)}
    if kind == "M":
        return {"M": {name: canonical(member) for name, member in inner.items()}}
    if kind == "L":
        return {"L": [canonical(member) for member in inner]}
    return value


def item_text(item: dict[str, Any]) -> str:
    """An item as the client returns it, as canonical JSON."""
    typed = wire.item_from_client(item)
    return json.dumps(
        {name: canonical(value) for name, value in typed.items()},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )


def key_text(item: dict[str, Any], key_names: tuple[str, ...]) -> str:
    """The item's key values in key-schema order, canonical JSON (the same in both tables)."""
    return json.dumps([wire.from_client(item[name]) for name in key_names], separators=(",", ":"))


def key_from_text(text: str, key_names: tuple[str, ...]) -> dict[str, Any]:
    """The client-form key for GetItem, from key_text."""
    return {
        name: wire.to_client(value) for name, value in zip(key_names, json.loads(text), strict=True)
    }


@dataclass(frozen=True)
class Row:
    key: str
    digest: bytes
    timestamp: int | None
    fraction: str | None  # of a millisecond, for a seconds stamp finer than one
    region: str | None
    size: int  # bytes of the canonical item: what a read of it roughly costs


def row(item: dict[str, Any], key_names: tuple[str, ...], unit: str = versions.MILLISECONDS) -> Row:
    version = versions.of_image(item, unit)
    text = item_text(item).encode()
    return Row(
        key_text(item, key_names),
        hashlib.blake2b(text, digest_size=16).digest(),
        version.timestamp if version else None,
        format(version.fraction, "f") if version and version.fraction else None,
        version.region if version else None,
        len(text),
    )


@dataclass(frozen=True)
class Difference:
    kind: str  # "only_here", "only_peer" or "differs"
    key: str
    here: versions.Version | None  # None: absent or unversioned on that side
    peer: versions.Version | None


class ItemIndex:
    """One SQLite file; `add(side, rows)` from any thread, then `differences()`."""

    def __init__(self, path: Path, queue_pages: int = 32):
        self.path = path
        self._pages: queue.Queue[tuple[str, list[Row]] | None] = queue.Queue(queue_pages)
        self._error: BaseException | None = None
        self.counts = dict.fromkeys(SIDES, 0)
        db = sqlite3.connect(path)
        for side in SIDES:
            db.execute(
                f"CREATE TABLE IF NOT EXISTS {side} (key TEXT PRIMARY KEY, digest BLOB,"
                " ts INTEGER, fraction TEXT, region TEXT) WITHOUT ROWID"
            )
        db.commit()
        db.close()
        self._writer = threading.Thread(target=self._write, name="item-index", daemon=True)
        self._writer.start()

    def add(self, side: str, rows: list[Row]) -> None:
        if self._error is not None:
            raise RuntimeError(f"the item index failed: {self._error}") from self._error
        self._pages.put((side, rows))  # blocks when the writer is behind: memory stays bounded

    def close(self) -> None:
        """Wait until every page is written."""
        self._pages.put(None)
        self._writer.join()
        if self._error is not None:
            raise RuntimeError(f"the item index failed: {self._error}") from self._error

    def _write(self) -> None:
        db = sqlite3.connect(self.path)
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("PRAGMA synchronous=OFF")
        try:
            while (page := self._pages.get()) is not None:
                side, rows = page
                db.executemany(
                    f"INSERT OR REPLACE INTO {side} VALUES (?, ?, ?, ?, ?)",
                    [(r.key, r.digest, r.timestamp, r.fraction, r.region) for r in rows],
                )
                db.commit()
                self.counts[side] += len(rows)
        except BaseException as error:  # reported by add() and close()
            self._error = error
            while self._pages.get() is not None:  # unblock the producers
                pass
        finally:
            db.close()

    def differences(self) -> Iterator[Difference]:
        """Every key missing on one side or with different content, streamed from disk."""
        db = sqlite3.connect(self.path)
        try:
            queries = (
                (
                    "only_here",
                    "SELECT h.key, h.ts, h.fraction, h.region, NULL, NULL, NULL FROM here h"
                    " LEFT JOIN peer p ON p.key = h.key WHERE p.key IS NULL",
                ),
                (
                    "only_peer",
                    "SELECT p.key, NULL, NULL, NULL, p.ts, p.fraction, p.region FROM peer p"
                    " LEFT JOIN here h ON h.key = p.key WHERE h.key IS NULL",
                ),
                (
                    "differs",
                    "SELECT h.key, h.ts, h.fraction, h.region, p.ts, p.fraction, p.region"
                    " FROM here h"
                    " JOIN peer p ON p.key = h.key WHERE h.digest != p.digest",
                ),
            )
            for kind, sql in queries:
                for key, *versions_of in db.execute(sql):
                    here, peer = _version(*versions_of[:3]), _version(*versions_of[3:])
                    yield Difference(kind, key, here, peer)
        finally:
            db.close()


def _version(
    timestamp: int | None, fraction: str | None, region: str | None
) -> versions.Version | None:
    if timestamp is None or not region:
        return None
    return versions.Version(timestamp, region, Decimal(fraction) if fraction else 0)
