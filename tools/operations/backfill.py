"""backfill: copy a table's existing items to the peer's mirror table, when replication is
first switched on.

    job = Backfill(here, peer, "user-cn", segments=4, rate=200)  # checks, opens the checkpoint
    result = job.run(on_page=print)  # on_page hears of every page applied

A parallel Scan reads the table, one thread per segment. Each page goes through the peer's own
replicator, so every write is conditioned on the item's version: an item the peer already holds
newer (live replication flowing meanwhile) is left alone, and a copy that lands after a newer
delete is undone by the tombstone check. An item that was never stamped is stamped in place
first, as the sender would stamp it. Each segment's position is checkpointed after every page,
so an interrupted backfill resumes where its segments stopped.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from replication import versions, wire
from replication.inbound import Replicator
from tools import cli
from tools.loader import RateLimiter, backoff_delay
from tools.operations.checkpoint import (
    DEFAULT_SEGMENTS,
    Counts,
    default_checkpoint_path,
    describe,
    open_checkpoint,
)
from tools.operations.context import Context
from tools.operations.functions import apply_changes, put_change, replicator_for
from tools.operations.sides import OperationError, Side, mirror_keys, peer_table

SUMMARY = "copy a table's existing items to the peer (resumable, rate-limited)"

DEFAULT_PAGE_SIZE = 100
APPLY_ATTEMPTS = 3  # a page whose writes still fail after these stops its segment
STAMP_ATTEMPTS = 3  # an item whose version keeps changing unstamped is left for the next run
STAMP_WORKERS = 8  # one stamping write per unversioned item: done in parallel
WRITERS = 32  # the peer's write concurrency, shared out among the segments


# -- the backfill ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """What on_page hears after each page is applied and checkpointed."""

    segment: int
    counts: Counts
    segment_done: bool
    segments_done: int


@dataclass
class Result:
    identity: dict[str, str]
    counts: Counts  # this run's
    total: Counts  # every run's, from the checkpoint
    segments: int
    segments_done: int
    seconds: float
    dry_run: bool
    already_finished: bool
    resumed_done: int  # segments that were done before this run
    scanned_before: int  # items that earlier runs read and applied
    checkpoint: Path | None
    stopped: dict[int, str] = field(default_factory=dict)  # segment -> why it stopped

    @property
    def finished(self) -> bool:
        return self.segments_done == self.segments

    @property
    def ok(self) -> bool:
        return not (self.counts.failed or self.counts.poison)

    @property
    def items_per_second(self) -> float:
        return self.counts.scanned / self.seconds if self.seconds > 0 else 0.0

    def status(self) -> str:
        if self.already_finished:
            return "already finished"
        if self.dry_run:
            return "dry run"
        return "finished" if self.finished else "unfinished"

    def summary(self) -> dict[str, Any]:
        return {
            **self.identity,
            "status": self.status(),
            "dry_run": self.dry_run,
            **asdict(self.counts),
            "total": asdict(self.total),
            "segments": self.segments,
            "segments_done": self.segments_done,
            "seconds": round(self.seconds, 3),
            "items_per_second": round(self.items_per_second, 1),
            "checkpoint": str(self.checkpoint) if self.checkpoint else None,
            "stopped_segments": {str(k): v for k, v in sorted(self.stopped.items())},
        }


class _Tally:
    """This run's counts and stopped segments, shared by the segment threads."""

    def __init__(self) -> None:
        self.counts = Counts()
        self.stopped: dict[int, str] = {}
        self.lock = threading.Lock()

    def add(self, counts: Counts) -> None:
        with self.lock:
            self.counts.add(counts)

    def stop_segment(self, index: int, reason: str) -> None:
        with self.lock:
            self.stopped[index] = reason


class Backfill:
    """One backfill of `table` in `source` into the peer's mirror table in `target`.

    Creating it checks both tables and opens the checkpoint; run() does the copying."""

    def __init__(
        self,
        source: Side,
        target: Side,
        table: str | None = None,
        *,
        segments: int | None = None,
        page_size: int | None = None,
        rate: float | None = None,
        checkpoint_path: Path | str | None = None,
        restart: bool = False,
        dry_run: bool = False,
        log: Callable[[str], Any] = lambda message: None,
    ):
        if segments is not None and not 1 <= segments <= 1_000_000:
            raise ValueError("segments must be between 1 and 1,000,000")
        if page_size is not None and page_size < 1:
            raise ValueError("page_size must be at least 1")
        if rate is not None and rate <= 0:
            raise ValueError("rate must be positive")
        self.source, self.target = source, target
        self.table, self.peer_table = peer_table(source.names, target.names, table)
        self.keys = mirror_keys(source, self.table, target, self.peer_table)
        self.item_count = int(source.describe_table(self.table).get("ItemCount", 0))
        self.rate = rate
        # A page is at most about a second's worth at the rate, so the bucket paces pages
        # rather than letting each one through in a burst.
        self.page_size = page_size or (
            min(DEFAULT_PAGE_SIZE, max(1, int(rate))) if rate else DEFAULT_PAGE_SIZE
        )
        self.dry_run = dry_run
        self.log = log
        identity = {
            "region": source.region,
            "table": self.table,
            "peer_region": target.region,
            "peer_table": self.peer_table,
        }
        path = Path(checkpoint_path or default_checkpoint_path(source.region, self.table))
        self.checkpoint = open_checkpoint(path, identity, segments, restart)
        self.checkpoint.persist = not dry_run

    @property
    def segments(self) -> int:
        return len(self.checkpoint.segments)

    @property
    def finished(self) -> bool:
        return self.checkpoint.finished

    def run(self, on_page: Callable[[Page], Any] | None = None) -> Result:
        """Copy every segment not yet done. An exception from on_page (or Ctrl-C) stops the
        run: the other segments finish the page in hand, checkpoint it and stop too."""
        started = time.monotonic()
        already_finished = self.finished
        resumed_done = self.checkpoint.segments_done()
        scanned_before = self.checkpoint.total().scanned
        pending = [i for i, state in enumerate(self.checkpoint.segments) if not state.done]
        tally = _Tally()
        if pending:
            self.checkpoint.save()  # a fresh or restarted run owns the file from now on
            self._run_segments(pending, tally, on_page)
        return Result(
            identity=dict(self.checkpoint.identity),
            counts=tally.counts,
            total=self.checkpoint.total(),
            segments=self.segments,
            segments_done=self.checkpoint.segments_done(),
            seconds=time.monotonic() - started,
            dry_run=self.dry_run,
            already_finished=already_finished,
            resumed_done=resumed_done,
            scanned_before=scanned_before,
            checkpoint=None if self.dry_run else self.checkpoint.path,
            stopped=tally.stopped,
        )

    def _run_segments(
        self, pending: list[int], tally: _Tally, on_page: Callable[[Page], Any] | None
    ) -> None:
        stop = threading.Event()
        limiter = RateLimiter(self.rate, sleep=stop.wait) if self.rate else None
        writers = max(4, WRITERS // len(pending))
        replicators = {
            i: None if self.dry_run else replicator_for(self.target, writers) for i in pending
        }
        with (
            ThreadPoolExecutor(STAMP_WORKERS, thread_name_prefix="stamp") as stampers,
            ThreadPoolExecutor(len(pending), thread_name_prefix="segment") as segments,
        ):
            futures = [
                segments.submit(
                    self._segment, i, replicators[i], stampers, limiter, stop, tally, on_page
                )
                for i in pending
            ]
            try:
                wait(futures, return_when=FIRST_EXCEPTION)
            finally:
                stop.set()  # after an error or Ctrl-C: the others stop after their page
        for future in futures:
            future.result()

    def _segment(
        self,
        index: int,
        replicator: Replicator | None,
        stampers: ThreadPoolExecutor,
        limiter: RateLimiter | None,
        stop: threading.Event,
        tally: _Tally,
        on_page: Callable[[Page], Any] | None,
    ) -> None:
        ddb = self.source.client("dynamodb")
        state = self.checkpoint.segments[index]
        while not stop.is_set():
            request: dict[str, Any] = {
                "TableName": self.table,
                "Segment": index,
                "TotalSegments": self.segments,
                "Limit": self.page_size,
            }
            if state.last_key is not None:
                request["ExclusiveStartKey"] = wire.item_to_client(state.last_key)
            page = ddb.scan(**request)
            items = page["Items"]
            if limiter and items:
                limiter.acquire(len(items))
                if stop.is_set():
                    return  # stopped while waiting: the page is read again next run
            counts, problem = self._copy(items, replicator, stampers)
            tally.add(counts)
            if counts.failed:
                tally.stop_segment(index, problem)
                return
            next_key = page.get("LastEvaluatedKey")
            next_key = wire.item_from_client(next_key) if next_key else None
            segments_done = self.checkpoint.advance(index, next_key, counts)
            if on_page:
                on_page(Page(index, counts, next_key is None, segments_done))
            if next_key is None:
                return

    # -- one page ------------------------------------------------------------------------

    def _copy(
        self,
        items: list[dict[str, Any]],
        replicator: Replicator | None,
        stampers: ThreadPoolExecutor,
    ) -> tuple[Counts, str]:
        """Stamp what has no version, then apply the page at the peer: the counts, and why
        the page failed if it did."""
        counts = Counts(scanned=len(items))
        unit = self.source.version_unit
        unversioned = [item for item in items if versions.of_image(item, unit) is None]
        ready = [item for item in items if versions.of_image(item, unit) is not None]
        if self.dry_run:
            counts.stamped = len(unversioned)
            counts.copied = len(items)  # would be, unless the peer has them as new
            return counts, ""
        problems = []
        for outcome, item, problem in stampers.map(self.stamp_item, unversioned):
            if outcome in ("stamped", "vanished", "failed", "poison"):
                setattr(counts, outcome, getattr(counts, outcome) + 1)
            if problem:
                self.log(problem)
                problems.append(problem)
            if item is not None:
                ready.append(item)
        changes = [
            put_change(self.source.region, self.table, item, self.keys, unit) for item in ready
        ]
        applied = self._apply(replicator, changes)
        counts.copied, counts.stale = applied.copied, applied.stale
        counts.failed += applied.failed
        counts.poison += applied.poison
        if applied.failed:
            problems.append(
                f"the peer did not take {applied.failed} items in {APPLY_ATTEMPTS} attempts"
            )
        return counts, "; ".join(problems)

    def stamp_item(self, item: dict[str, Any]) -> tuple[str, dict[str, Any] | None, str]:
        """Give an item that has no version one in the source table, unless it changed since
        it was read. Returns what happened (stamped, versioned: someone else did it, vanished,
        failed, poison), the item to copy, and what went wrong, if anything."""
        ddb = self.source.client("dynamodb")
        key = {name: item[name] for name in self.keys}
        for _ in range(STAMP_ATTEMPTS):
            # Conditioned on the version attributes being as read (absent or malformed), and
            # on the item existing: an update would otherwise re-create a deleted item.
            fresh = versions.Version(versions.now_ms(), self.source.region)
            try:
                response = ddb.update_item(
                    TableName=self.table,
                    Key=key,
                    ReturnValues="ALL_NEW",
                    **versions.restamp_update(item, self.keys[0], fresh, self.source.version_unit),
                )
                return "stamped", response["Attributes"], ""
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code")
                if code == "ValidationException":  # such as an item too large to grow
                    return "poison", None, f"cannot stamp {key_text(key)}: {error}"
                if code != "ConditionalCheckFailedException":
                    return "failed", None, f"cannot stamp {key_text(key)}: {error}"
            try:
                current = ddb.get_item(TableName=self.table, Key=key, ConsistentRead=True)
            except ClientError as error:
                return "failed", None, f"cannot read {key_text(key)}: {error}"
            item = current.get("Item")
            if item is None:
                return "vanished", None, ""
            if versions.of_image(item, self.source.version_unit) is not None:
                return "versioned", item, ""  # written meanwhile: copy what is there now
        return "failed", None, f"{key_text(key)} kept changing without a version"

    def _apply(self, replicator: Replicator | None, changes: list[wire.Change]) -> Counts:
        """Apply through the peer's replicator, retrying a page while some of it fails.
        Replays are harmless: what landed the first time is stale the second."""
        if not changes or replicator is None:
            return Counts()
        copied, failed, poison = 0, 0, 0
        for attempt in range(APPLY_ATTEMPTS):
            if attempt:
                time.sleep(backoff_delay(attempt, base=0.2))
            outcome = apply_changes(replicator, changes)
            copied += outcome.get("replicated", 0)
            failed, poison = outcome.get("failed", 0), outcome.get("poison", 0)
            if not failed:
                break
        stale = len(changes) - copied - failed - poison
        return Counts(copied=copied, stale=stale, failed=failed, poison=poison)


def key_text(key: dict[str, Any]) -> str:
    return json.dumps(wire.item_from_client(key), ensure_ascii=False)


# -- the command line ------------------------------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--table", help="the table to copy (needed when the region replicates several)")
    add(
        "--segments",
        type=cli.int_in(1),
        metavar="N",
        help=f"parallel scan segments, one thread each (default: the checkpoint's, "
        f"else {DEFAULT_SEGMENTS})",
    )
    add(
        "--rate",
        type=cli.positive_float,
        metavar="ITEMS_PER_S",
        help="at most this many items a second, all segments together (default: no limit)",
    )
    add(
        "--page-size",
        type=cli.int_in(1),
        metavar="N",
        help=f"items per Scan page (default: {DEFAULT_PAGE_SIZE}, or a second's worth at --rate)",
    )
    add(
        "--checkpoint",
        metavar="FILE",
        help="where progress is kept (default: .backfill-REGION-TABLE.json here)",
    )
    add("--restart", action="store_true", help="ignore the checkpoint and start over")


def main(args: argparse.Namespace, ctx: Context) -> int:
    backfill = Backfill(
        ctx.here,
        ctx.peer,
        args.table,
        segments=args.segments,
        page_size=args.page_size,
        rate=args.rate,
        checkpoint_path=args.checkpoint,
        restart=args.restart,
        dry_run=ctx.dry_run,
        log=ctx.log,
    )
    # A finished backfill only reports; it needs no progress display.
    result = backfill.run() if backfill.finished else _run_with_progress(backfill, ctx)
    ctx.emit(result.summary(), result_lines(result))
    return 0 if result.ok else 1


def _run_with_progress(backfill: Backfill, ctx: Context) -> Result:
    checkpoint = backfill.checkpoint
    earlier = checkpoint.total().scanned
    resuming = f", resuming ({checkpoint.segments_done()} done)" if earlier else ""
    ctx.log(f"backfill {describe(checkpoint.identity)}: {backfill.segments} segments{resuming}")
    with ctx.progress() as progress:
        task = progress.add_task(
            f"{backfill.table} -> {backfill.peer_table}",
            total=backfill.item_count or None,  # DynamoDB's estimate, refreshed every few hours
            completed=earlier,
            note="",
        )

        def on_page(page: Page) -> None:
            note = f"{page.segments_done}/{backfill.segments} segments"
            progress.update(task, advance=page.counts.scanned, note=note)

        try:
            return backfill.run(on_page)
        except KeyboardInterrupt:
            if not ctx.dry_run:
                ctx.log(f"stopped: {checkpoint.path} keeps each segment's place; rerun to resume")
            raise
        except (ClientError, BotoCoreError) as error:
            resume = "" if ctx.dry_run else f" ({checkpoint.path} keeps the progress made)"
            raise OperationError(f"AWS: {error}{resume}") from None


def result_lines(result: Result) -> list[str]:
    title = describe(result.identity)
    if result.already_finished:
        t = result.total
        return [
            f"{title}: already finished (checkpoint {result.checkpoint})",
            "--restart runs it again",
            f"in earlier runs: {t.scanned} scanned, {t.copied} copied, {t.stale} left alone, "
            f"{t.stamped} stamped, {t.poison} refused",
        ]
    c = result.counts
    row = "{:<16}{:>9} {}".format
    if result.dry_run:
        return [
            f"{title}: dry run, nothing written",
            row("scanned", c.scanned, "items"),
            row("would copy", c.copied, "items, unless the peer has them as new (not read)"),
            row("would stamp", c.stamped, "items first (they have no version)"),
            row("segments", f"{result.segments_done}/{result.segments}", "scanned"),
        ]
    lines = [f"{title}: {result.status()}"]
    if result.scanned_before:
        lines.append(
            f"resumed: {result.resumed_done} segments were done, "
            f"{result.scanned_before} items in earlier runs"
        )
    lines += [
        row("scanned", c.scanned, "items"),
        row("copied", c.copied, "items"),
        row("left alone", c.stale, "items (the peer's version is as new or newer)"),
        row("stamped first", c.stamped, "items (they had no version)"),
        row("failed", c.failed + c.poison, _failed_note(result)),
    ]
    if c.vanished:
        lines.append(row("vanished", c.vanished, "items (deleted before they were stamped)"))
    lines += [
        row("segments", f"{result.segments_done}/{result.segments}", "done"),
        row(
            "rate",
            f"{result.items_per_second:.1f}",
            f"items/s ({c.scanned} in {result.seconds:.1f} s)",
        ),
        f"checkpoint      {result.checkpoint}",
    ]
    for index, reason in sorted(result.stopped.items()):
        lines.append(f"segment {index} stopped: {reason}; rerun to retry it")
    return lines


def _failed_note(result: Result) -> str:
    if result.counts.poison:
        return f"items ({result.counts.poison} can never be written: see the log on stderr)"
    return "items"
