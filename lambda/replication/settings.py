"""Each function's configuration, read once from its environment and checked up front."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass

from replication.versions import MILLISECONDS, VERSION_UNITS

TTL_DELETE_POLICIES = ("replicate", "skip")
# The same name in both regions; defaults.json's signing_keys_parameter.
DEFAULT_SIGNING_KEYS_PARAMETER = "/DDBReplication/SigningKeys"
DEFAULT_MAX_CLOCK_SKEW_SECONDS = 300


class ConfigError(RuntimeError):
    """The function's environment is incomplete or wrong; the message says what to set."""


class _Env:
    def __init__(self, env: Mapping[str, str]):
        self.env = env

    def required(self, name: str) -> str:
        value = self.env.get(name, "").strip()
        if not value:
            raise ConfigError(f"environment variable {name} must be set")
        return value

    def optional(self, name: str) -> str | None:
        return self.env.get(name, "").strip() or None

    def integer(self, name: str, default: int, minimum: int = 1) -> int:
        raw = self.optional(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
        if value < minimum:
            raise ConfigError(f"{name} must be at least {minimum}, not {value}")
        return value

    def flag(self, name: str, default: bool) -> bool:
        raw = (self.optional(name) or str(default)).lower()
        if raw not in ("true", "false"):
            raise ConfigError(f"{name} must be true or false, not {raw!r}")
        return raw == "true"

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = (self.optional(name) or default).lower()
        if value not in choices:
            raise ConfigError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
        return value


@dataclass(frozen=True)
class SenderSettings:
    region: str  # this region: what local writes are stamped with
    peer_region: str
    peer_stream: str
    peer_credentials_prefix: str  # SSM path holding <prefix>AccessKey and <prefix>SecretKey
    tombstone_table: str
    failure_queue_url: str
    peer_endpoint_url: str | None = None
    peer_proxy_url: str | None = None
    credentials_ttl_seconds: int = 300
    tombstone_ttl_seconds: int = 14 * 86400
    ttl_deletes: str = "replicate"
    concurrency: int = 16
    connect_timeout_seconds: int = 3
    read_timeout_seconds: int = 10
    signing_keys_parameter: str = DEFAULT_SIGNING_KEYS_PARAMETER
    signing_keys_ttl_seconds: int = 300
    # A local write stamped further ahead of this function's clock is shipped at a clamped
    # version (the peer would reject it, and it would freeze the item in both regions).
    max_clock_skew_seconds: int = DEFAULT_MAX_CLOCK_SKEW_SECONDS
    version_unit: str = MILLISECONDS  # of last_update_timestamp (see versions)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> SenderSettings:
        e = _Env(env)
        return cls(
            region=e.required("AWS_REGION"),
            peer_region=e.required("PEER_REGION"),
            peer_stream=e.required("PEER_STREAM_NAME"),
            peer_credentials_prefix=e.required("PEER_CREDENTIALS_PREFIX"),
            tombstone_table=e.required("TOMBSTONE_TABLE"),
            failure_queue_url=e.required("FAILURE_QUEUE_URL"),
            peer_endpoint_url=e.optional("PEER_ENDPOINT_URL"),
            peer_proxy_url=e.optional("PEER_PROXY_URL"),
            credentials_ttl_seconds=e.integer("PEER_CREDENTIALS_TTL_SECONDS", 300, minimum=0),
            tombstone_ttl_seconds=e.integer("TOMBSTONE_TTL_SECONDS", 14 * 86400),
            ttl_deletes=e.choice("TTL_DELETES", TTL_DELETE_POLICIES, "replicate"),
            concurrency=e.integer("SENDER_CONCURRENCY", 16),
            connect_timeout_seconds=e.integer("PEER_CONNECT_TIMEOUT_SECONDS", 3),
            read_timeout_seconds=e.integer("PEER_READ_TIMEOUT_SECONDS", 10),
            **_signing_env(e),
        )


@dataclass(frozen=True)
class ReplicatorSettings:
    region: str
    peer_region: str  # the only origin a change may come from
    table_map: dict[str, str]  # source table (in the peer region) -> local table
    stats_table: str
    tombstone_table: str
    failure_queue_url: str
    tombstone_ttl_seconds: int = 14 * 86400
    concurrency: int = 32
    signing_keys_parameter: str = DEFAULT_SIGNING_KEYS_PARAMETER
    signing_keys_ttl_seconds: int = 300
    # A change whose version is further ahead of this function's clock is rejected.
    max_clock_skew_seconds: int = DEFAULT_MAX_CLOCK_SKEW_SECONDS
    # Only while upgrading from a release whose senders did not sign: counted, not rejected.
    accept_unsigned_changes: bool = False
    version_unit: str = MILLISECONDS  # of last_update_timestamp (see versions)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> ReplicatorSettings:
        e = _Env(env)
        return cls(
            region=e.required("AWS_REGION"),
            peer_region=e.required("PEER_REGION"),
            table_map=parse_table_map(e.required("TABLE_MAP")),
            stats_table=e.required("STATS_TABLE"),
            tombstone_table=e.required("TOMBSTONE_TABLE"),
            failure_queue_url=e.required("FAILURE_QUEUE_URL"),
            tombstone_ttl_seconds=e.integer("TOMBSTONE_TTL_SECONDS", 14 * 86400),
            concurrency=e.integer("REPLICATOR_CONCURRENCY", 32),
            accept_unsigned_changes=e.flag("ACCEPT_UNSIGNED_CHANGES", False),
            **_signing_env(e),
        )


def _signing_env(e: _Env) -> dict[str, object]:
    return {
        "signing_keys_parameter": e.optional("SIGNING_KEYS_PARAMETER")
        or DEFAULT_SIGNING_KEYS_PARAMETER,
        "signing_keys_ttl_seconds": e.integer("SIGNING_KEYS_TTL_SECONDS", 300, minimum=0),
        "max_clock_skew_seconds": e.integer(
            "MAX_CLOCK_SKEW_SECONDS", DEFAULT_MAX_CLOCK_SKEW_SECONDS
        ),
        # Both functions of both regions must read the stored times in the same unit.
        "version_unit": e.choice("VERSION_UNIT", VERSION_UNITS, MILLISECONDS),
    }


def parse_table_map(raw: str) -> dict[str, str]:
    """TABLE_MAP is a JSON object: {"<table in the peer region>": "<table here>", ...}."""
    try:
        mapping = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"TABLE_MAP must be a JSON object: {exc}") from None
    if (
        not isinstance(mapping, dict)
        or not mapping
        or not all(
            isinstance(k, str) and isinstance(v, str) and k and v for k, v in mapping.items()
        )
    ):
        raise ConfigError(
            'TABLE_MAP must map table names to table names, e.g. {"user-cn": "user-sg"}'
        )
    return mapping
