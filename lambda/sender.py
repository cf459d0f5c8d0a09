"""Lambda entry point: this region's DynamoDB stream -> the peer region's Kinesis stream."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from replication.outbound import Sender
from replication.settings import SenderSettings

logger = Logger(service="sender")
_sender: Sender | None = None


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global _sender
    if _sender is None:
        _sender = Sender(SenderSettings.from_env(), logger=logger)
    return _sender.handle(event, context)
