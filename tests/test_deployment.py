"""The shared deployment package: the names from defaults.json, and the one wiring of names into
the functions' environment, which must be the one modules/replication_node/functions.tf renders
(tests/terraform/test_environments.py compares it with an applied environment too)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from deployment import functions
from deployment.functions import REPLICATOR, SENDER, TUNING, function_environments
from deployment.names import CHINA, DEFAULTS_FILE, GLOBAL, function_names, region_names
from replication.settings import ConfigError

ROOT = Path(__file__).resolve().parent.parent
MODULE = ROOT / "modules" / "replication_node"
SENDER_URL = "https://sqs.cn-north-1.amazonaws.com.cn/111122223333/ddbstreamcn"
REPLICATOR_URL = "https://sqs.cn-north-1.amazonaws.com.cn/111122223333/ddbreplicatorcn"


VARIABLE = r"\b([A-Z][A-Z0-9_]+)\s*="
OPTIONAL = r"\?\s*\{\}\s*:\s*\{\s*([A-Z][A-Z0-9_]+)\s*="  # var.x == null ? {} : { NAME = x }


def function_block(text: str, name: str) -> str:
    """The body of `name = {` or `name = merge(` in `text`, up to its closing bracket."""
    start = re.search(rf"\b{name}\s*=\s*(merge\(|\{{)", text)
    assert start, name
    depth, end = 0, start.end() - 1  # the opening bracket
    for end in range(start.end() - 1, len(text)):
        depth += text[end] in "({"
        depth -= text[end] in ")}"
        if depth == 0:
            break
    return text[start.end() : end]


def terraform_environment() -> dict[str, tuple[set[str], set[str], set[str]]]:
    """functions.tf's local.environment: per function, the variables it always sets, those it
    sets only when an option is given (`var.x == null ? {} : { NAME = ... }`), and the tuning
    ones it merges from local.tuned (each set when given)."""
    text = (MODULE / "functions.tf").read_text()
    environment = function_block(text, "environment")
    tuning = function_block(text, "tuning")
    found = {}
    for function in (SENDER, REPLICATOR):
        block = function_block(environment, function)
        names = set(re.findall(VARIABLE, block))
        optional = set(re.findall(OPTIONAL, block))
        tuned = (
            set(re.findall(VARIABLE, function_block(tuning, function)))
            if f"local.tuned.{function}" in block
            else set()
        )
        found[function] = (names - optional, optional, tuned)
    return found


def test_the_wiring_sets_the_variables_terraform_sets():
    rendered = terraform_environment()
    names = region_names()[CHINA]
    plain = function_environments(names, SENDER_URL, REPLICATOR_URL)
    optional = function_environments(
        names,
        SENDER_URL,
        REPLICATOR_URL,
        peer_endpoint_url="https://kinesis.example",
        peer_proxy_url="http://10.0.1.5:3128",
    )
    every_tuning = {name: 7 for names in TUNING.values() for name in names}
    tuned = function_environments(names, SENDER_URL, REPLICATOR_URL, tuning=every_tuning)
    for function in (SENDER, REPLICATOR):
        always, conditional, tuning = rendered[function]
        assert len(always) >= 8, always  # the parse found the block
        assert set(plain[function]) == always
        assert set(optional[function]) == always | conditional
        assert set(tuned[function]) == always | set(TUNING[function])
        assert set(TUNING[function]) == tuning
    assert rendered[SENDER][1] == {"PEER_ENDPOINT_URL", "PEER_PROXY_URL"}
    assert all(tuned[SENDER][name] == "7" for name in TUNING[SENDER])


def test_the_wiring_gives_each_function_its_regions_names():
    names = region_names()[GLOBAL]
    environments = function_environments(
        names, "sender-queue", "replicator-queue", max_clock_skew_seconds=60
    )
    sender = functions.sender_settings(GLOBAL, environments[SENDER])
    replicator = functions.replicator_settings(GLOBAL, environments[REPLICATOR])

    assert (sender.region, sender.peer_region) == (GLOBAL, CHINA)
    assert sender.peer_stream == names.peer_replication_stream == "ddb_replication_stream_cn"
    assert sender.peer_credentials_prefix == names.peer_credentials_prefix
    assert sender.tombstone_table == replicator.tombstone_table == names.tombstone_table
    assert sender.failure_queue_url == "sender-queue"
    assert sender.peer_endpoint_url is None and sender.peer_proxy_url is None
    assert replicator.failure_queue_url == "replicator-queue"
    assert replicator.table_map == {"user-cn": "user-sg"}
    assert replicator.stats_table == names.stats_table
    assert sender.max_clock_skew_seconds == replicator.max_clock_skew_seconds == 60
    assert sender.signing_keys_parameter == replicator.signing_keys_parameter
    assert replicator.accept_unsigned_changes is False
    # jsonencode's form, byte for byte.
    assert environments[REPLICATOR]["TABLE_MAP"] == '{"user-cn":"user-sg"}'


def test_settings_from_a_broken_environment_name_the_variable():
    environments = function_environments(region_names()[CHINA], "q", "q")
    del environments[REPLICATOR]["STATS_TABLE"]
    with pytest.raises(ConfigError, match="STATS_TABLE"):
        functions.replicator_settings(CHINA, environments[REPLICATOR])


def test_defaults_name_the_functions_as_the_module_does():
    variables = (MODULE / "variables.tf").read_text()

    def default(variable: str) -> str:
        block = variables[variables.index(f'variable "{variable}"') :]
        return re.search(r'default\s*=\s*"([^"]+)"', block).group(1)

    names = function_names()
    assert names.sender == default("sender_function_name") == "ddb_send_to_kinesis"
    assert names.replicator == default("replicator_function_name") == "replicator_ddb"
    for region in region_names().values():
        assert (region.sender_function, region.replicator_function) == (
            names.sender,
            names.replicator,
        )


def test_the_package_reads_the_repositorys_defaults():
    # deployment/defaults.json is a link, so an installed package carries the same file.
    assert DEFAULTS_FILE.resolve() == (ROOT / "defaults.json").resolve()
    assert json.loads(DEFAULTS_FILE.read_text()) == json.loads((ROOT / "defaults.json").read_text())
