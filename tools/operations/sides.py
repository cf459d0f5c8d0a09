"""One region as an operator tool sees it: its account (profile), endpoint, clients, and the
names and settings of its deployment, read from its deployed functions."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ProfileNotFound

from deployment.discovery import DeployedRegion, NotDeployed, discover
from deployment.names import FunctionNames, RegionNames, function_names
from replication.clients import Clients


class OperationError(Exception):
    """An operation could not be carried out; the message says why (exit 1, one line)."""


@dataclass
class Side:
    region: str
    session: boto3.Session
    functions: FunctionNames  # the deployed functions' names, read for everything else
    endpoint_url: str | None = None
    pool_size: int = 32
    _deployed: DeployedRegion | None = field(default=None, repr=False)
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)
    _queue_urls: dict[str, str] = field(default_factory=dict, repr=False)
    _tables: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def deployed(self) -> DeployedRegion:
        """The region's deployment, read from its functions when first needed (a command that
        needs nothing of the peer's works while the peer is unreachable)."""
        if self._deployed is None:
            try:
                deployed = discover(self.client("lambda"), self.region, self.functions)
            except NotDeployed as error:
                raise OperationError(str(error)) from None
            with self._lock:
                self._deployed = deployed
                self._queue_urls.update(deployed.queue_urls())
        return self._deployed

    @property
    def names(self) -> RegionNames:
        return self.deployed.names

    @property
    def version_unit(self) -> str:
        """The unit the region's stored versions are in (its functions' VERSION_UNIT)."""
        return self.deployed.sender.version_unit

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
        """A queue's URL, looked up once."""
        if name not in self._queue_urls:
            sqs = self.client("sqs")
            try:
                self._queue_urls[name] = sqs.get_queue_url(QueueName=name)["QueueUrl"]
            except sqs.exceptions.QueueDoesNotExist:
                raise OperationError(f"{self.region} has no queue {name}") from None
        return self._queue_urls[name]

    def describe_table(self, table: str) -> dict[str, Any]:
        """DescribeTable's answer, asked once per command (ItemCount is an estimate anyway)."""
        if table not in self._tables:
            ddb = self.client("dynamodb")
            try:
                self._tables[table] = ddb.describe_table(TableName=table)["Table"]
            except ddb.exceptions.ResourceNotFoundException:
                raise OperationError(f"{self.region} has no table {table}") from None
        return self._tables[table]

    def key_schema(self, table: str) -> tuple[tuple[str, str, str], ...]:
        """(name, type, HASH|RANGE) of each key attribute, hash key first."""
        description = self.describe_table(table)
        types = {
            a["AttributeName"]: a["AttributeType"] for a in description["AttributeDefinitions"]
        }
        schema = sorted(description["KeySchema"], key=lambda k: k["KeyType"])
        return tuple((k["AttributeName"], types[k["AttributeName"]], k["KeyType"]) for k in schema)

    def key_names(self, table: str) -> tuple[str, ...]:
        """The table's key attributes, hash key first."""
        return tuple(name for name, _, _ in self.key_schema(table))


def mirror_keys(here: Side, table: str, peer: Side, theirs: str) -> tuple[str, ...]:
    """The key attributes of two tables that mirror each other; an error unless both are
    keyed alike (names, types and roles), since no item of one would fit the other."""
    ours, other = here.key_schema(table), peer.key_schema(theirs)
    if ours != other:
        raise OperationError(
            f"{table} in {here.region} is keyed by {_keys_text(ours)} but {theirs} in "
            f"{peer.region} by {_keys_text(other)}: they can't mirror each other"
        )
    return here.key_names(table)


def _keys_text(schema: tuple[tuple[str, str, str], ...]) -> str:
    return ", ".join(f"{name} ({type_}, {role.lower()})" for name, type_, role in schema)


def open_side(
    region: str,
    profile: str | None = None,
    endpoint_url: str | None = None,
    functions: FunctionNames | None = None,
) -> Side:
    """The region as deployed: its names and settings are read from its functions (named as
    defaults.json names them unless `functions` is given)."""
    try:
        session = boto3.Session(profile_name=profile, region_name=region)
    except ProfileNotFound:
        raise OperationError(f"AWS profile {profile!r} not found") from None
    return Side(region, session, functions or function_names(), endpoint_url)


def peer_table(here: RegionNames, peer: RegionNames, table: str | None) -> tuple[str, str]:
    """A replicated table here (by default the only one) and the peer's table that mirrors it,
    from the table maps both replicators use."""
    if table is None:
        if len(here.tables) != 1:
            listed = ", ".join(here.tables) or "none"
            raise OperationError(
                f"{here.region} replicates {len(here.tables)} tables ({listed}): "
                "choose one with --table"
            )
        table = here.tables[0]
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
