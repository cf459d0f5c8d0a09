"""How the sender and the replicator are configured: their environment variables, exactly as
modules/replication_node/functions.tf sets them from a region's names, and the settings the
engine reads from those variables. The emulator configures its functions with this, and the
operator tools read the same variables back from the deployed functions.

    environments = function_environments(names, sender_queue_url, replicator_queue_url)
    settings = sender_settings(names.region, environments[SENDER])
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from deployment.names import RegionNames
from replication.settings import DEFAULT_MAX_CLOCK_SKEW_SECONDS, ReplicatorSettings, SenderSettings
from replication.versions import MILLISECONDS

SENDER, REPLICATOR = "sender", "replicator"
FUNCTIONS = (SENDER, REPLICATOR)  # each one's handler is <name>.lambda_handler
# functions.tf's local.tuning: the functions' own settings, each set only when given (else the
# function's default), to every function that reads it.
TUNING = {
    SENDER: (
        "PEER_CREDENTIALS_TTL_SECONDS",
        "PEER_CONNECT_TIMEOUT_SECONDS",
        "PEER_READ_TIMEOUT_SECONDS",
        "TOMBSTONE_TTL_SECONDS",
        "SENDER_CONCURRENCY",
        "SIGNING_KEYS_TTL_SECONDS",
    ),
    REPLICATOR: ("TOMBSTONE_TTL_SECONDS", "REPLICATOR_CONCURRENCY", "SIGNING_KEYS_TTL_SECONDS"),
}


def function_environments(
    names: RegionNames,
    sender_queue_url: str,
    replicator_queue_url: str,
    *,
    peer_endpoint_url: str | None = None,
    peer_proxy_url: str | None = None,
    ttl_deletes: str = "replicate",
    max_clock_skew_seconds: int = DEFAULT_MAX_CLOCK_SKEW_SECONDS,
    accept_unsigned_changes: bool = False,
    version_unit: str = MILLISECONDS,
    tuning: Mapping[str, int] | None = None,
) -> dict[str, dict[str, str]]:
    """Each function's variables (by SENDER and REPLICATOR), as functions.tf's
    local.environment has them for the same inputs; the options default as the module's
    variables do, and `tuning` sets any of TUNING's variables. Lambda adds AWS_REGION."""
    tuning = dict(tuning or {})
    unknown = set(tuning) - {name for names in TUNING.values() for name in names}
    if unknown:
        raise ValueError(f"not a tuning variable: {', '.join(sorted(unknown))}")
    sender = {
        "PEER_REGION": names.peer_region,
        "PEER_STREAM_NAME": names.peer_replication_stream,
        "PEER_CREDENTIALS_PREFIX": names.peer_credentials_prefix,
        "TOMBSTONE_TABLE": names.tombstone_table,
        "FAILURE_QUEUE_URL": sender_queue_url,
        "TTL_DELETES": ttl_deletes,
        "SIGNING_KEYS_PARAMETER": names.signing_keys_parameter,
        "MAX_CLOCK_SKEW_SECONDS": str(max_clock_skew_seconds),
        "VERSION_UNIT": version_unit,
    }
    if peer_endpoint_url is not None:
        sender["PEER_ENDPOINT_URL"] = peer_endpoint_url
    if peer_proxy_url is not None:
        sender["PEER_PROXY_URL"] = peer_proxy_url
    replicator = {
        "PEER_REGION": names.peer_region,
        "TABLE_MAP": table_map_variable(names.table_map),
        "STATS_TABLE": names.stats_table,
        "TOMBSTONE_TABLE": names.tombstone_table,
        "FAILURE_QUEUE_URL": replicator_queue_url,
        "SIGNING_KEYS_PARAMETER": names.signing_keys_parameter,
        "MAX_CLOCK_SKEW_SECONDS": str(max_clock_skew_seconds),
        "ACCEPT_UNSIGNED_CHANGES": "true" if accept_unsigned_changes else "false",
        "VERSION_UNIT": version_unit,
    }
    environments = {SENDER: sender, REPLICATOR: replicator}
    for function, environment in environments.items():
        environment.update(
            {name: str(value) for name, value in tuning.items() if name in TUNING[function]}
        )
    return environments


def table_map_variable(table_map: Mapping[str, str]) -> str:
    """TABLE_MAP's value, in jsonencode's form: keys sorted, no spaces."""
    return json.dumps(dict(table_map), sort_keys=True, separators=(",", ":"))


def sender_settings(region: str, environment: Mapping[str, str]) -> SenderSettings:
    """What a sender in `region` with these variables runs with (a ConfigError names what is
    missing or wrong)."""
    return SenderSettings.from_env({**environment, "AWS_REGION": region})


def replicator_settings(region: str, environment: Mapping[str, str]) -> ReplicatorSettings:
    """What a replicator in `region` with these variables runs with."""
    return ReplicatorSettings.from_env({**environment, "AWS_REGION": region})
