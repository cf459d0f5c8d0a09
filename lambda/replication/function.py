"""What the sender and the replicator share: their region's clients, clock, logging,
metrics, tombstones, failure queue and signing keys, all created lazily."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from replication import versions
from replication.clients import Clients
from replication.failures import FailureQueue, ReportLedger
from replication.settings import ReplicatorSettings, SenderSettings
from replication.signing import KeyRing
from replication.tombstones import EXPIRY_ATTR, KEY_ATTR, Tombstones

METRICS_NAMESPACE = "DynamoDBReplication"
# What DynamoDB says about a write to a replicated table that can never succeed as sent (item
# too large, a key of the wrong type, no such table...): retrying would only block the shard.
PERMANENT_ERRORS = frozenset(
    {
        "ValidationException",
        "SerializationException",
        "ResourceNotFoundException",
        "ItemCollectionSizeLimitExceededException",
    }
)


@dataclass(frozen=True)
class BatchResult:
    """What one batch came to: the response Lambda takes, and how each record ended, counted
    by outcome (the figures the function also publishes as metrics)."""

    response: dict[str, Any]
    counts: Mapping[str, int] = field(default_factory=dict)
    all_failed: bool = False
    errors: tuple[str, ...] = ()  # why records failed, each reason once

    @classmethod
    def of(cls, outcome: Any, counts: Mapping[str, int]) -> BatchResult:
        """From the batch adapter's outcome (replication.batch.BatchOutcome)."""
        reasons = dict.fromkeys(f"{type(e).__name__}: {e}" for e in outcome.errors)
        return cls(outcome.response, counts, outcome.all_failed, tuple(reasons))

    @property
    def failed_ids(self) -> list[str]:
        return [f["itemIdentifier"] for f in self.response.get("batchItemFailures", [])]


class ReplicationFunction:
    service = ""  # "sender" or "replicator": names the logger, metrics and failure reports

    def __init__(
        self,
        settings: SenderSettings | ReplicatorSettings,
        clients: Clients | None = None,
        clock: Callable[[], int] = versions.now_ms,
        logger: Logger | None = None,
        metrics: EphemeralMetrics | None = None,
        report_poison_once: bool = True,
    ):
        """`report_poison_once=False`: report a poison record however often it comes (an
        operator's replay, whose queue message goes once the record is queued anew)."""
        self.clients = clients or Clients(settings.region, pool_size=settings.concurrency + 4)
        self.clock = clock
        self.logger = logger or Logger(service=self.service)
        # Ephemeral: this function's own metric set, not one shared by every instance in the
        # process (the emulator runs several functions in one process).
        self.metrics = metrics or EphemeralMetrics(
            namespace=METRICS_NAMESPACE, service=self.service
        )
        self.tombstones = Tombstones(
            self.clients.lazy("dynamodb"),
            settings.tombstone_table,
            settings.tombstone_ttl_seconds,
            clock=lambda: self.clock() / 1000,
        )
        self.failures = FailureQueue(
            self.clients.lazy("sqs"),
            settings.failure_queue_url,
            self.service,
            ReportLedger(
                self.clients.lazy("dynamodb"),
                settings.tombstone_table,
                KEY_ATTR,
                EXPIRY_ATTR,
                clock=lambda: self.clock() / 1000,
            )
            if report_poison_once
            else None,
        )
        self.signing = KeyRing(
            self.clients.lazy("ssm"),
            settings.signing_keys_parameter,
            settings.signing_keys_ttl_seconds,
        )
        self.max_skew_ms = settings.max_clock_skew_seconds * 1000

    def publish(self, counts: Mapping[str, int], names: Mapping[str, str], **timings: int) -> None:
        """One Embedded Metric Format line for the batch: the outcome counts named in `names`
        (zero counts left out), plus millisecond timings; then remember the counts."""
        added = False
        for outcome, metric in names.items():
            if counts.get(outcome):
                self.metrics.add_metric(metric, MetricUnit.Count, counts[outcome])
                added = True
        for metric, value in timings.items():
            self.metrics.add_metric(metric, MetricUnit.Milliseconds, value)
            added = True
        if added:
            self.metrics.flush_metrics()
            # With POWERTOOLS_METRICS_DISABLED, flushing keeps the values; never let them pile up.
            self.metrics.clear_metrics()
        # The last batch's counts, for tests and for a look in a debugger; callers of the API
        # take them from the BatchResult they get back.
        self.last_counts = dict(counts)
