"""The sender's and the replicator's own code, run here by an operator tool against a region, so
that a repair, a backfill or a redrive follows exactly the rules live replication follows."""

from __future__ import annotations

import logging
import sys
from dataclasses import replace
from typing import Any

from aws_lambda_powertools import Logger

from replication import versions, wire
from replication.inbound import Replicator
from replication.outbound import Sender
from tools.operations.sides import Side


class QuietMetrics:
    """The functions publish EMF lines for CloudWatch; a tool's run is not the deployment's
    traffic, so its metrics go nowhere."""

    def add_metric(self, *args: Any, **kwargs: Any) -> None:
        pass

    def flush_metrics(self, *args: Any, **kwargs: Any) -> None:
        pass

    def clear_metrics(self) -> None:
        pass


def _logger(service: str) -> Logger:
    """The function's JSON logs, warnings and errors only, on stderr (stdout is the tool's)."""
    return Logger(
        service=service, level=logging.WARNING, logger_handler=logging.StreamHandler(sys.stderr)
    )


def replicator_for(side: Side, concurrency: int = 32) -> Replicator:
    """The region's replicator with the settings the deployed function runs with, except that
    it leaves the stats table alone. One instance handles one batch at a time: give each
    thread its own."""
    deployed = side.deployed.replicator
    settings = replace(deployed, concurrency=concurrency)
    # The stats table counts live replication; a tool reports its own work instead, and the
    # versions it carries (a backfill's may be years old) would read as lag. A replay by
    # redrive must queue a record that is still poison anew (the message it came from goes).
    return Replicator(
        settings,
        record_stats=False,
        report_poison_once=False,
        clients=side.function_clients(concurrency + 4),
        logger=_logger("replicator"),
        metrics=QuietMetrics(),
    )


def sender_for(
    side: Side,
    peer_endpoint_url: str | None = None,
    concurrency: int = 16,
    peer_proxy_url: str | None = None,
) -> Sender:
    """The region's sender, with the deployed function's settings: it reads the peer's keys
    from this region's Parameter Store and writes to the peer's stream. It reaches the peer as
    the tool is told to (directly, at `peer_endpoint_url`, or through a proxy), not through the
    function's own proxy, which is usually reachable only from inside its VPC."""
    deployed = side.deployed.sender
    settings = replace(
        deployed,
        peer_endpoint_url=peer_endpoint_url,
        peer_proxy_url=peer_proxy_url,
        concurrency=concurrency,
    )
    return Sender(
        settings,
        report_poison_once=False,
        clients=side.function_clients(concurrency + 4),
        logger=_logger("sender"),
        metrics=QuietMetrics(),
    )


def put_change(
    origin: str,
    table: str,
    item: dict[str, Any],
    keys: tuple[str, ...],
    unit: str = versions.MILLISECONDS,
) -> wire.Change:
    """A PUT of a whole item (as the DynamoDB client returns it) from `origin`'s `table`,
    carrying the item's own version (stored in `unit`)."""
    typed = wire.item_from_client(item)
    key = {name: typed[name] for name in keys}
    version = versions.of_image(item, unit)
    if version is None:
        raise ValueError(f"item {key} carries no version: stamp it before replicating it")
    return wire.Change(
        table=table,
        op=wire.PUT,
        keys=key,
        version=version,
        origin=origin,
        stream_ts_ms=version.timestamp,
        item=typed,
        event_id="operator",
    )


def delete_change(
    origin: str, table: str, key: dict[str, Any], version: versions.Version
) -> wire.Change:
    """A DELETE of the item with `key` (client form) from `origin`'s `table`, at `version`
    (its tombstone's)."""
    return wire.Change(
        table=table,
        op=wire.DELETE,
        keys=wire.item_from_client(key),
        version=version,
        origin=origin,
        stream_ts_ms=version.timestamp,
        event_id="operator",
    )


def apply_changes(replicator: Replicator, changes: list[wire.Change]) -> dict[str, int]:
    """Apply changes through the replicator's own checks and writes; the counts of its
    outcomes (replicated, stale, failed, poison), also when every change failed."""
    if not changes:
        return {}
    return dict(replicator.apply(changes).counts)
