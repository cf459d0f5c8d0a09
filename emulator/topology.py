"""The names of everything in each region, from defaults.json (shared with the Terraform envs)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULTS_FILE = Path(__file__).resolve().parent.parent / "defaults.json"
CHINA, GLOBAL = "cn-north-1", "ap-southeast-1"


@dataclass(frozen=True)
class RegionNames:
    region: str
    peer_region: str
    tables: tuple[str, ...]
    table_map: dict[str, str] = field(hash=False)
    stats_table: str
    tombstone_table: str
    replication_stream: str
    peer_replication_stream: str
    sender_failure_queue: str
    replicator_failure_queue: str
    peer_credentials_prefix: str
    signing_keys_parameter: str  # the same in both regions


def load(path: Path = DEFAULTS_FILE) -> dict[str, RegionNames]:
    raw: dict[str, Any] = json.loads(path.read_text())
    return {
        region: RegionNames(
            region=region,
            signing_keys_parameter=raw["signing_keys_parameter"],
            **{**names, "tables": tuple(names["tables"])},
        )
        for region, names in raw["regions"].items()
    }


def lambda_runtime(path: Path = DEFAULTS_FILE) -> str:
    return json.loads(path.read_text())["lambda_runtime"]
