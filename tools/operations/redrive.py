"""Redrive the failure queues: replay what the functions could not process, then delete it.

Two kinds of message land in a function's failure queue:
- the event source mapping's on-failure record (`DDBStreamBatchInfo` for the sender,
  `KinesisBatchInfo` for the replicator). It names a shard and a sequence range, not the
  records, so they are read again from the stream, while it still holds them (24 hours for
  DynamoDB Streams, the retention period for Kinesis), and replayed in order through the
  region's own function code;
- a poison record, sent whole by the function. Retrying one can only help once its cause
  has been fixed, so it is replayed only on request (--retry-poison).

A message is deleted only once every one of its records was replayed. Anything else stays
in the queue and is reported; a range the stream no longer holds can only be made good by
comparing the tables (ops.py verify --repair).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from deployment.discovery import table_of_stream
from replication.failures import POISON_KIND
from tools import cli
from tools.operations.context import Context
from tools.operations.functions import replicator_for, sender_for
from tools.operations.sides import Side
from tools.operations.stream_ranges import FailedBatch, RangeLost, read_range

SUMMARY = "replay the failure queues' batches and poison records, and report what is left"

FUNCTIONS = ("sender", "replicator")
# A received message stays hidden this long (renewed while the run lasts), so that one left
# behind by a crashed run comes back by itself; kept messages are made visible at the end.
VISIBILITY_S = 300
RECEIVE_WAIT_S = 1  # long polling, so that an almost empty queue is not mistaken for empty
REPLAY_BATCH = 500  # records per invocation, the mappings' batch size
COUNTS = (
    "messages",
    "redriven",
    "retrievable",
    "records_found",
    "records_replayed",
    "unrecoverable",
    "poison_left",
    "new_poison",
    "failed",
    "unrecognised",
)
# The counts that mean something is still waiting in a queue.
REMAINING = ("unrecoverable", "poison_left", "new_poison", "failed", "unrecognised")


# -- what the messages say -----------------------------------------------------------------


@dataclass(frozen=True)
class PoisonRecord:
    reason: str
    record: dict[str, Any] | None  # None when the message holds it truncated
    keys: Any


@dataclass(frozen=True)
class Unrecognised:
    reason: str


BATCH_INFO = {"DDBStreamBatchInfo": "dynamodb", "KinesisBatchInfo": "kinesis"}
# Who reads each service, unless the queue says: the sender reads a table's DynamoDB stream,
# the replicator the replication stream (and the sender a capture stream, in its own queue).
READER = {"dynamodb": "sender", "kinesis": "replicator"}


def classify(body: str, function: str | None = None) -> FailedBatch | PoisonRecord | Unrecognised:
    """What a failure-queue message is; `function` is whose queue it came from."""
    try:
        message = json.loads(body)
    except ValueError:
        return Unrecognised("not JSON")
    if not isinstance(message, dict):
        return Unrecognised("not a JSON object")
    if message.get("kind") == POISON_KIND:
        return PoisonRecord(message.get("reason", ""), message.get("record"), _poison_keys(message))
    for name, service in BATCH_INFO.items():
        if isinstance(info := message.get(name), dict):
            try:
                return FailedBatch(
                    function or READER[service],
                    info["streamArn"],
                    info["shardId"],
                    int(info["startSequenceNumber"]),
                    int(info["endSequenceNumber"]),
                    int(info["batchSize"]),
                    service,
                )
            except (KeyError, TypeError, ValueError) as exc:
                return Unrecognised(f"{name} without a usable {exc}")
    return Unrecognised("neither an on-failure record nor a poison record")


def _poison_keys(message: dict[str, Any]) -> Any:
    """The item's keys as the function reported them; for a change too broken to decode,
    its Kinesis partition key."""
    if message.get("keys"):
        return message["keys"]
    kinesis = (message.get("record") or {}).get("kinesis") or {}
    return {"partitionKey": kinesis["partitionKey"]} if "partitionKey" in kinesis else None


# -- the queue -------------------------------------------------------------------------------


@dataclass
class Received:
    message_id: str
    receipt: str
    body: str


class Inbox:
    """One failure queue's messages, held hidden while this run works on them."""

    def __init__(self, sqs: Any, url: str, visibility_s: int = VISIBILITY_S):
        self.sqs, self.url, self.visibility_s = sqs, url, visibility_s
        self.held: dict[str, Received] = {}
        self._renewed = time.monotonic()

    def receive(self, limit: int | None) -> list[Received]:
        """Everything visible (up to `limit`), all at once: a message put back, or a fresh
        poison message the replay itself sends, must not come round again in this run."""
        while limit is None or len(self.held) < limit:
            wanted = 10 if limit is None else min(10, limit - len(self.held))
            messages = self.sqs.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=wanted,
                VisibilityTimeout=self.visibility_s,
                WaitTimeSeconds=RECEIVE_WAIT_S,
            ).get("Messages", [])
            if not messages:
                break
            self._renewed = time.monotonic()
            for m in messages:  # a duplicate delivery replaces the receipt that went stale
                self.held[m["MessageId"]] = Received(m["MessageId"], m["ReceiptHandle"], m["Body"])
        return list(self.held.values())

    def keep_hidden(self) -> None:
        """Renew the hold halfway through it, so a long run keeps what it has not done yet."""
        if time.monotonic() - self._renewed < self.visibility_s / 2:
            return
        self._change_visibility(self.visibility_s)
        self._renewed = time.monotonic()

    def delete(self, message: Received) -> None:
        self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message.receipt)
        self.held.pop(message.message_id, None)

    def release(self) -> None:
        """Make every message still held visible again now, for the next run to see."""
        self._change_visibility(0)
        self.held.clear()

    def _change_visibility(self, seconds: int) -> None:
        held = list(self.held.values())
        for start in range(0, len(held), 10):
            self.sqs.change_message_visibility_batch(
                QueueUrl=self.url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m.receipt, "VisibilityTimeout": seconds}
                    for i, m in enumerate(held[start : start + 10])
                ],
            )


# -- the report ------------------------------------------------------------------------------


@dataclass
class Finding:
    """A message left in a queue, or a record that needs a look, and why."""

    function: str
    status: str  # unrecoverable, poison, new-poison, failed, unrecognised
    subject: str
    reason: str
    message_id: str = ""
    repair: str | None = None


@dataclass
class Report:
    region: str
    dry_run: bool
    retry_poison: bool
    queues: dict[str, str] = field(default_factory=dict)
    counts: dict[str, Counter] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Nothing is left (or, in a dry run, would be left) for an operator to deal with."""
        return not any(c[name] for c in self.counts.values() for name in REMAINING)

    def summary(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "dry_run": self.dry_run,
            "retry_poison": self.retry_poison,
            "functions": {
                function: {"queue": self.queues[function], **{n: counts[n] for n in COUNTS}}
                for function, counts in self.counts.items()
            },
            "items": [vars(finding) for finding in self.findings],
            "complete": self.complete,
        }

    def lines(self) -> list[str]:
        done = "would redrive" if self.dry_run else "redriven"
        header = ["function", "messages", done, "records", "unrecoverable", "poison left", "failed"]
        rows = [header] + [self._row(function, c) for function, c in self.counts.items()]
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        lines = [
            f"redrive {self.region}"
            + (" (dry run: nothing replayed or deleted)" if self.dry_run else "")
        ]
        for row in rows:
            cells = [row[0].ljust(widths[0])] + [
                c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
            ]
            lines.append("  ".join(cells))
        for f in self.findings:
            lines.append(
                f"{f.status:<13} {f.function:<10} {f.subject}: {f.reason}"
                + (f"; {f.repair}" if f.repair else "")
            )
        if self.complete and not any(c["messages"] for c in self.counts.values()):
            lines.append("the failure queues are empty: nothing to redrive")
        elif self.complete:
            lines.append(
                "every message can be redriven" if self.dry_run else "every message was redriven"
            )
        return lines

    def _row(self, function: str, c: Counter) -> list[str]:
        done = c["retrievable"] if self.dry_run else c["redriven"]
        records = c["records_found"] if self.dry_run else c["records_replayed"]
        left, failed = c["poison_left"] + c["new_poison"], c["failed"] + c["unrecognised"]
        return [
            function,
            *(str(n) for n in (c["messages"], done, records, c["unrecoverable"], left, failed)),
        ]


# -- redriving -------------------------------------------------------------------------------


class Redrive:
    """Redrive one region's failure queues with its own sender and replicator code."""

    def __init__(
        self,
        here: Side,
        peer_endpoint_url: str | None = None,
        peer_proxy_url: str | None = None,
        dry_run: bool = False,
        retry_poison: bool = False,
        log: Callable[[str], None] = lambda message: None,
    ):
        self.here = here
        self.peer_endpoint_url = peer_endpoint_url
        self.peer_proxy_url = peer_proxy_url
        self.dry_run = dry_run
        self.retry_poison = retry_poison
        self.log = log
        self.report = Report(here.region, dry_run, retry_poison)
        self._functions: dict[str, Any] = {}

    def function(self, name: str) -> Any:
        """The function's code, built on first use (the sender reads the peer's keys)."""
        if name not in self._functions:
            self._functions[name] = (
                sender_for(self.here, self.peer_endpoint_url, peer_proxy_url=self.peer_proxy_url)
                if name == "sender"
                else replicator_for(self.here)
            )
        return self._functions[name]

    def run(
        self,
        function: str,
        max_messages: int | None = None,
        on_progress: Callable[[int, int], None] = lambda done, total: None,
    ) -> Counter:
        """Redrive one function's failure queue; its counts (also kept in the report)."""
        queue = (
            self.here.names.sender_failure_queue
            if function == "sender"
            else self.here.names.replicator_failure_queue
        )
        inbox = Inbox(self.here.client("sqs"), self.here.queue_url(queue))
        counts = self.report.counts.setdefault(function, Counter())
        self.report.queues[function] = queue
        try:
            received = inbox.receive(max_messages)
            counts["messages"] += len(received)
            self.log(f"{function}: {len(received)} messages in {queue}")
            for done, (message, what) in enumerate(_in_stream_order(received, function)):
                on_progress(done, len(received))
                inbox.keep_hidden()
                if self._redrive(function, message, what, counts) and not self.dry_run:
                    inbox.delete(message)
            on_progress(len(received), len(received))
        finally:
            inbox.release()
        return counts

    def _redrive(self, function: str, message: Received, what: Any, counts: Counter) -> bool:
        """Deal with one message; whether it was redriven (and may go)."""
        if isinstance(what, Unrecognised):
            counts["unrecognised"] += 1
            self._found(function, "unrecognised", message, repr(message.body[:60]), what.reason)
            return False
        if isinstance(what, PoisonRecord):
            return self._poison(function, message, what, counts)
        try:
            records = read_range(self.here, what)
        except RangeLost as lost:
            counts["unrecoverable"] += 1
            self._found(
                function, "unrecoverable", message, what.subject, str(lost), self._repair(what)
            )
            return False
        except ClientError as exc:  # throttled, denied...: a later run may do better
            counts["failed"] += 1
            self._found(function, "failed", message, what.subject, f"could not read: {exc}")
            return False
        if self.dry_run:
            counts["retrievable"] += 1
            counts["records_found"] += len(records)
            return False
        before = counts["new_poison"]
        failure = self._replay(what.function, records, counts)
        if counts["new_poison"] > before:
            reason = (
                f"{counts['new_poison'] - before} of its records were sent to the queue as poison"
            )
            self._found(function, "new-poison", message, what.subject, reason)
        if failure:
            counts["failed"] += 1
            self._found(function, "failed", message, what.subject, failure)
            return False
        counts["redriven"] += 1
        return True

    def _poison(self, function: str, message: Received, poison: PoisonRecord, counts) -> bool:
        subject = json.dumps(poison.keys, ensure_ascii=False, default=str)
        if not self.retry_poison or poison.record is None:
            counts["poison_left"] += 1
            reason = poison.reason
            if poison.record is None:
                reason += " (the message holds the record truncated: it can't be replayed)"
            self._found(function, "poison", message, subject, reason)
            return False
        if self.dry_run:
            counts["retrievable"] += 1
            counts["records_found"] += 1
            return False
        before = counts["new_poison"]
        failure = self._replay(function, [poison.record], counts)
        if failure:
            counts["failed"] += 1
            self._found(function, "failed", message, subject, failure)
            return False
        if counts["new_poison"] > before:
            # The function sent it back to the queue as a fresh message: nothing is lost,
            # and the original may go.
            counts["new_poison"] -= 1
            counts["poison_left"] += 1
            self._found(function, "poison", message, subject, f"still poison: {poison.reason}")
        else:
            counts["redriven"] += 1
        return True

    def _replay(self, function: str, records: list[dict[str, Any]], counts: Counter) -> str | None:
        """Replay records, in order, a batch at a time; what went wrong, if anything."""
        handler = self.function(function)
        for start in range(0, len(records), REPLAY_BATCH):
            chunk = records[start : start + REPLAY_BATCH]
            try:
                result = handler.process(chunk)
            except Exception as exc:  # the function raised: Lambda would retry the batch
                return f"the {function} failed the replayed records: {_one_line(exc)}"
            failed = result.failed_ids
            counts["records_replayed"] += len(chunk) - len(failed)
            # The function sent these to its queue afresh: nothing is lost, but they need a look.
            counts["new_poison"] += result.counts.get("poison", 0)
            if failed:
                why = ": " + " ".join(result.errors[0].split()) if result.errors else ""
                return f"the {function} failed {len(failed)} of {len(chunk)} replayed records{why}"
        return None

    def _repair(self, batch: FailedBatch) -> str:
        """Where to look instead: the table whose stream it was, or every table the
        replication stream feeds."""
        if batch.function == "sender" and batch.service == "dynamodb":
            tables = [table_of_stream(batch.stream_arn)]
        elif batch.function == "sender":  # a capture stream: any table captured into it
            tables = list(self.here.names.tables)
        else:
            tables = sorted(set(self.here.names.table_map.values()))
        commands = (
            f"`python tools/ops.py verify --region {self.here.region} --table {table} --repair`"
            for table in tables
        )
        return f"run {' and '.join(commands)}"

    def _found(self, function, status, message, subject, reason, repair=None) -> None:
        finding = Finding(function, status, subject, reason, message.message_id, repair)
        self.report.findings.append(finding)
        self.log(f"{function}: {status}: {subject}: {reason} (message {message.message_id})")


def _one_line(exc: Exception) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def _in_stream_order(received: list[Received], function: str) -> list[tuple[Received, Any]]:
    """Each shard's failed batches oldest first, so a key's changes replay in order; then
    the poison records and anything else, as received."""
    classified = [(m, classify(m.body, function)) for m in received]
    batches = sorted(
        (pair for pair in classified if isinstance(pair[1], FailedBatch)),
        key=lambda pair: (pair[1].stream_arn, pair[1].shard_id, pair[1].start),
    )
    return batches + [pair for pair in classified if not isinstance(pair[1], FailedBatch)]


# -- the command line ------------------------------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--function",
        choices=(*FUNCTIONS, "both"),
        default="both",
        help="whose failure queue to redrive (default: both)",
    )
    parser.add_argument(
        "--max-messages",
        type=cli.int_in(1),
        metavar="N",
        help="take at most N messages from each queue (default: all)",
    )
    parser.add_argument(
        "--peer-proxy-url",
        metavar="URL",
        help="replay the sender's records through this proxy, as its PEER_PROXY_URL does",
    )
    parser.add_argument(
        "--retry-poison",
        action="store_true",
        help="replay poison records too (once their cause is fixed); by default they are "
        "reported and left in the queue",
    )


def main(args: argparse.Namespace, ctx: Context) -> int:
    functions = FUNCTIONS if args.function == "both" else (args.function,)
    redrive = Redrive(
        ctx.here,
        peer_endpoint_url=ctx.peer.endpoint_url,
        peer_proxy_url=args.peer_proxy_url,
        dry_run=ctx.dry_run,
        retry_poison=args.retry_poison,
        log=ctx.log,
    )
    with ctx.progress() as progress:
        for function in functions:
            task = progress.add_task(f"{function} messages", total=None, note="")
            redrive.run(
                function,
                args.max_messages,
                lambda done, total, task=task: progress.update(task, completed=done, total=total),
            )
    ctx.emit(redrive.report.summary(), redrive.report.lines())
    return 0 if redrive.report.complete else 1
