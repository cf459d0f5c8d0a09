"""What the sender and the replicator share: their region's clients, clock, logging,
metrics, tombstones and failure queue, all created lazily."""

from __future__ import annotations

from collections.abc import Callable

from aws_lambda_powertools import Logger, Metrics

from replication import versions
from replication.clients import Clients
from replication.failures import FailureQueue
from replication.settings import ReplicatorSettings, SenderSettings
from replication.tombstones import Tombstones

METRICS_NAMESPACE = "DynamoDBReplication"


class ReplicationFunction:
    service = ""  # "sender" or "replicator": names the logger, metrics and failure reports

    def __init__(
        self,
        settings: SenderSettings | ReplicatorSettings,
        clients: Clients | None = None,
        clock: Callable[[], int] = versions.now_ms,
        logger: Logger | None = None,
        metrics: Metrics | None = None,
    ):
        self.clients = clients or Clients(settings.region, pool_size=settings.concurrency + 4)
        self.clock = clock
        self.logger = logger or Logger(service=self.service)
        self.metrics = metrics or Metrics(namespace=METRICS_NAMESPACE, service=self.service)
        self.tombstones = Tombstones(
            self.clients.lazy("dynamodb"),
            settings.tombstone_table,
            settings.tombstone_ttl_seconds,
            clock=lambda: self.clock() / 1000,
        )
        self.failures = FailureQueue(
            self.clients.lazy("sqs"), settings.failure_queue_url, self.service
        )
