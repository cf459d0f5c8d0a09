"""The names of everything in each region, from defaults.json: the file the Terraform
environments take their defaults from. It ships inside this package (a link to the repository's
copy), so an installed operator tool reads the same file."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULTS_FILE = Path(__file__).resolve().parent / "defaults.json"
CHINA, GLOBAL = "cn-north-1", "ap-southeast-1"


@dataclass(frozen=True)
class RegionNames:
    region: str
    peer_region: str
    tables: tuple[str, ...]
    table_map: dict[str, str] = field(hash=False)  # peer table -> table here
    stats_table: str
    tombstone_table: str
    replication_stream: str
    peer_replication_stream: str
    sender_failure_queue: str
    replicator_failure_queue: str
    peer_credentials_prefix: str
    # The same in both regions:
    signing_keys_parameter: str
    sender_function: str
    replicator_function: str
    # The stream a table with kinesis capture writes its changes into (Kinesis Data Streams for
    # DynamoDB), which the sender reads. Empty where it isn't known: a region read back from its
    # functions (deployment/discovery.py) names it only when its sender has a mapping on it.
    capture_stream: str = ""


@dataclass(frozen=True)
class FunctionNames:
    """The two functions' names in a region (Terraform's sender_function_name and
    replicator_function_name; defaults.json holds their defaults)."""

    sender: str
    replicator: str


def _raw(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def region_names(path: Path = DEFAULTS_FILE) -> dict[str, RegionNames]:
    """Each region's names, by region."""
    raw = _raw(path)
    shared = {
        key: raw[key]
        for key in ("signing_keys_parameter", "sender_function", "replicator_function")
    }
    return {
        region: RegionNames(region=region, **shared, **{**names, "tables": tuple(names["tables"])})
        for region, names in raw["regions"].items()
    }


def function_names(path: Path = DEFAULTS_FILE) -> FunctionNames:
    raw = _raw(path)
    return FunctionNames(raw["sender_function"], raw["replicator_function"])


def lambda_runtime(path: Path = DEFAULTS_FILE) -> str:
    return _raw(path)["lambda_runtime"]
