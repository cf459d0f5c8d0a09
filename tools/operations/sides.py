"""One region as an operator tool sees it: its account (profile), endpoint, clients, and the
names defaults.json gives its resources."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ProfileNotFound

from emulator import topology
from emulator.topology import RegionNames
from replication.clients import Clients


class OperationError(Exception):
    """An operation could not be carried out; the message says why (exit 1, one line)."""


@dataclass
class Side:
    region: str
    names: RegionNames
    session: boto3.Session
    endpoint_url: str | None = None
    pool_size: int = 32
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def client(self, service: str) -> Any:
        """One shared client per service (boto3 clients are thread-safe), with standard retries."""
        with self._lock:
            if service not in self._clients:
                config = Config(
                    region_name=self.region,
                    max_pool_connections=self.pool_size,
                    retries={"mode": "standard", "max_attempts": 8},
                )
                self._clients[service] = self.session.client(
                    service, config=config, endpoint_url=self.endpoint_url
                )
            return self._clients[service]

    def function_clients(self, pool_size: int = 36) -> Clients:
        """Clients shaped as the functions' own, for running their code here."""
        return Clients(
            self.region, pool_size=pool_size, session=self.session, endpoint_url=self.endpoint_url
        )

    def queue_url(self, name: str) -> str:
        sqs = self.client("sqs")
        try:
            return sqs.get_queue_url(QueueName=name)["QueueUrl"]
        except sqs.exceptions.QueueDoesNotExist:
            raise OperationError(f"{self.region} has no queue {name}") from None

    def queue_urls(self) -> dict[str, str]:
        """The failure queues, by function."""
        return {
            "sender": self.queue_url(self.names.sender_failure_queue),
            "replicator": self.queue_url(self.names.replicator_failure_queue),
        }

    def describe_table(self, table: str) -> dict[str, Any]:
        ddb = self.client("dynamodb")
        try:
            return ddb.describe_table(TableName=table)["Table"]
        except ddb.exceptions.ResourceNotFoundException:
            raise OperationError(f"{self.region} has no table {table}") from None

    def key_names(self, table: str) -> tuple[str, ...]:
        """The table's key attributes, hash key first."""
        schema = self.describe_table(table)["KeySchema"]
        return tuple(k["AttributeName"] for k in sorted(schema, key=lambda k: k["KeyType"]))


def open_side(
    region: str,
    profile: str | None = None,
    endpoint_url: str | None = None,
    names: Mapping[str, RegionNames] | None = None,
) -> Side:
    names = topology.load() if names is None else names
    if region not in names:
        raise OperationError(
            f"defaults.json has no region {region!r} (it has {', '.join(sorted(names))})"
        )
    try:
        session = boto3.Session(profile_name=profile, region_name=region)
    except ProfileNotFound:
        raise OperationError(f"AWS profile {profile!r} not found") from None
    return Side(region, names[region], session, endpoint_url)


def peer_table(here: RegionNames, peer: RegionNames, table: str | None) -> tuple[str, str]:
    """A replicated table here (default: the first) and the peer's table that mirrors it,
    from the table maps both replicators use."""
    table = table or here.tables[0]
    mirrored = [theirs for theirs, ours in here.table_map.items() if ours == table]
    if not mirrored:
        raise OperationError(
            f"no table in {peer.region} replicates into {table} in {here.region} "
            f"(table_map: {dict(here.table_map)})"
        )
    theirs = mirrored[0]
    if peer.table_map.get(table) != theirs:
        raise OperationError(
            f"{peer.region}'s table_map does not send {table} to {theirs}: the maps disagree"
        )
    return table, theirs
