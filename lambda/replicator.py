"""Lambda entry point: this region's replication stream -> this region's tables."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from replication.inbound import Replicator
from replication.settings import ReplicatorSettings

logger = Logger(service="replicator")
_replicator: Replicator | None = None


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global _replicator
    if _replicator is None:
        _replicator = Replicator(ReplicatorSettings.from_env(), logger=logger)
    return _replicator.handle(event, context)
