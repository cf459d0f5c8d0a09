"""A deployed region, read from the deployment itself: what Terraform deployed is the truth. The
two functions' configuration holds every name the tools need (the table map, the stats and
tombstone tables, the failure queues, the peer's stream and the key parameters), and their event
source mappings name the streams they read. Tables set in terraform.tfvars are seen as deployed,
whatever defaults.json says.

    deployed = discover(lambda_client, "cn-north-1", function_names())
    deployed.names                        # RegionNames, as defaults.json would give them
    deployed.replicator                   # the settings the replicator runs with
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from botocore.exceptions import ClientError

from deployment.functions import REPLICATOR, SENDER, replicator_settings, sender_settings
from deployment.names import FunctionNames, RegionNames
from replication.settings import ConfigError, ReplicatorSettings, SenderSettings


class NotDeployed(Exception):
    """The region's functions can't be found or read; the message says what to check."""


@dataclass(frozen=True)
class DeployedRegion:
    region: str
    functions: FunctionNames
    environments: dict[str, dict[str, str]] = field(hash=False)  # by SENDER, REPLICATOR
    sources: dict[str, tuple[str, ...]] = field(hash=False)  # event source ARNs, by function
    # What each function runs with, read from its environment by the engine's own reader.
    sender: SenderSettings = field(hash=False, compare=False)
    replicator: ReplicatorSettings = field(hash=False, compare=False)

    @cached_property
    def names(self) -> RegionNames:
        """The region's names. Its replication stream is the one its replicator's mapping
        reads, and its capture stream the Kinesis stream its sender's mapping reads (tables
        with kinesis or both capture write into it); each is empty when no such mapping is
        listed (none exists, or the mappings can't be listed)."""
        sender, replicator = self.environments[SENDER], self.environments[REPLICATOR]
        table_map = json.loads(replicator["TABLE_MAP"])
        streamed = [table_of_stream(arn) for arn in self.sources[SENDER] if ":dynamodb:" in arn]
        tables = tuple(dict.fromkeys([*table_map.values(), *streamed]))
        replication_stream = _kinesis_stream(self.sources[REPLICATOR])
        capture_stream = _kinesis_stream(self.sources[SENDER])
        return RegionNames(
            region=self.region,
            peer_region=sender["PEER_REGION"],
            tables=tables,
            table_map=table_map,
            stats_table=replicator["STATS_TABLE"],
            tombstone_table=replicator["TOMBSTONE_TABLE"],
            replication_stream=replication_stream,
            peer_replication_stream=sender["PEER_STREAM_NAME"],
            sender_failure_queue=_queue_name(sender["FAILURE_QUEUE_URL"]),
            replicator_failure_queue=_queue_name(replicator["FAILURE_QUEUE_URL"]),
            peer_credentials_prefix=sender["PEER_CREDENTIALS_PREFIX"],
            signing_keys_parameter=replicator["SIGNING_KEYS_PARAMETER"],
            sender_function=self.functions.sender,
            replicator_function=self.functions.replicator,
            capture_stream=capture_stream,
        )

    def queue_urls(self) -> dict[str, str]:
        """Each failure queue's URL, by queue name."""
        urls = (self.environments[f]["FAILURE_QUEUE_URL"] for f in (SENDER, REPLICATOR))
        return {_queue_name(url): url for url in urls}


def discover(lambda_client: Any, region: str, functions: FunctionNames) -> DeployedRegion:
    """Read both functions' configuration and mappings in `region`; NotDeployed, naming the
    function and what to do, when one is missing or its configuration is incomplete."""
    by_role = {SENDER: functions.sender, REPLICATOR: functions.replicator}
    environments, sources = {}, {}
    for role, name in by_role.items():
        try:
            configuration = lambda_client.get_function_configuration(FunctionName=name)
        except lambda_client.exceptions.ResourceNotFoundException:
            raise NotDeployed(
                f"{region} has no function {name}: deploy the region, or pass "
                f"--{role}-function with the name Terraform's function_names output gives"
            ) from None
        environments[role] = dict(configuration.get("Environment", {}).get("Variables", {}))
        sources[role] = tuple(_event_sources(lambda_client, name))
    readers = {SENDER: sender_settings, REPLICATOR: replicator_settings}
    settings = {}
    for role, read in readers.items():
        try:
            settings[role] = read(region, environments[role])
        except ConfigError as error:
            raise NotDeployed(f"{region}'s {by_role[role]} is not configured: {error}") from None
    return DeployedRegion(
        region, functions, environments, sources, settings[SENDER], settings[REPLICATOR]
    )


def _event_sources(lambda_client: Any, function: str) -> list[str]:
    """The function's event sources; none when the caller may not list them (the names then
    come from the configuration alone)."""
    arns, marker = [], {}
    while True:
        try:
            page = lambda_client.list_event_source_mappings(FunctionName=function, **marker)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "AccessDeniedException":
                return []
            raise
        arns.extend(m["EventSourceArn"] for m in page.get("EventSourceMappings", []))
        if not page.get("NextMarker"):
            return arns
        marker = {"Marker": page["NextMarker"]}


def _kinesis_stream(sources: tuple[str, ...]) -> str:
    """The name of the first Kinesis stream among event source ARNs
    (arn:<partition>:kinesis:<region>:<account>:stream/<name>), empty when there is none."""
    kinesis = [arn for arn in sources if ":kinesis:" in arn]
    return kinesis[0].rsplit("/", 1)[-1] if kinesis else ""


def _queue_name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def table_of_stream(arn: str) -> str:
    """arn:<partition>:dynamodb:<region>:<account>:table/<name>/stream/<label> -> <name>
    (anything else comes back as it is)."""
    resource = arn.split(":", 5)[-1]
    return resource.split("/")[1] if resource.startswith("table/") else arn
