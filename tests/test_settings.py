"""Each function's settings: read from its environment, checked before any work is done."""

from __future__ import annotations

import pytest

from replication.settings import ConfigError, ReplicatorSettings, SenderSettings

SENDER_ENV = {
    "AWS_REGION": "cn-north-1",
    "PEER_REGION": "ap-southeast-1",
    "PEER_STREAM_NAME": "ddb_replication_stream_sg",
    "PEER_CREDENTIALS_PREFIX": "/DDBReplication/TableSG/",
    "TOMBSTONE_TABLE": "replication_tombstones",
    "FAILURE_QUEUE_URL": "https://sqs.cn-north-1.amazonaws.com.cn/123456789012/ddbstreamcn",
}
REPLICATOR_ENV = {
    "AWS_REGION": "ap-southeast-1",
    "PEER_REGION": "cn-north-1",
    "TABLE_MAP": '{"user-cn": "user-sg"}',
    "STATS_TABLE": "replicator_stats",
    "TOMBSTONE_TABLE": "replication_tombstones",
    "FAILURE_QUEUE_URL": "https://sqs.ap-southeast-1.amazonaws.com/123456789012/ddbreplicatorsg",
}


def sender_env(**changes: str | None) -> dict[str, str]:
    """SENDER_ENV with some variables set, or removed when given None."""
    env = {**SENDER_ENV, **changes}
    return {k: v for k, v in env.items() if v is not None}


def replicator_env(**changes: str | None) -> dict[str, str]:
    env = {**REPLICATOR_ENV, **changes}
    return {k: v for k, v in env.items() if v is not None}


# -- complete environments ---------------------------------------------------------------


def test_sender_settings_from_a_complete_env_with_defaults():
    # Only the required variables: everything else takes its documented default.
    assert SenderSettings.from_env(SENDER_ENV) == SenderSettings(
        region="cn-north-1",
        peer_region="ap-southeast-1",
        peer_stream="ddb_replication_stream_sg",
        peer_credentials_prefix="/DDBReplication/TableSG/",
        tombstone_table="replication_tombstones",
        failure_queue_url=SENDER_ENV["FAILURE_QUEUE_URL"],
        peer_endpoint_url=None,
        peer_proxy_url=None,
        credentials_ttl_seconds=300,
        tombstone_ttl_seconds=14 * 86400,
        ttl_deletes="replicate",
        concurrency=16,
        connect_timeout_seconds=3,
        read_timeout_seconds=10,
        signing_keys_parameter="/DDBReplication/SigningKeys",
        signing_keys_ttl_seconds=300,
        max_clock_skew_seconds=300,
    )


def test_sender_settings_read_every_optional_variable():
    env = sender_env(
        PEER_ENDPOINT_URL="https://kinesis.example",
        PEER_PROXY_URL="http://proxy:3128",
        PEER_CREDENTIALS_TTL_SECONDS="0",  # 0 is allowed: re-read the keys every time
        TOMBSTONE_TTL_SECONDS="3600",
        TTL_DELETES="SKIP",  # case does not matter
        SENDER_CONCURRENCY="4",
        PEER_CONNECT_TIMEOUT_SECONDS="2",
        PEER_READ_TIMEOUT_SECONDS="7",
    )
    settings = SenderSettings.from_env(env)

    assert settings.peer_endpoint_url == "https://kinesis.example"
    assert settings.peer_proxy_url == "http://proxy:3128"
    assert settings.credentials_ttl_seconds == 0
    assert settings.tombstone_ttl_seconds == 3600
    assert settings.ttl_deletes == "skip"
    assert settings.concurrency == 4
    assert settings.connect_timeout_seconds == 2
    assert settings.read_timeout_seconds == 7


def test_replicator_settings_from_a_complete_env_with_defaults():
    assert ReplicatorSettings.from_env(REPLICATOR_ENV) == ReplicatorSettings(
        region="ap-southeast-1",
        peer_region="cn-north-1",
        table_map={"user-cn": "user-sg"},
        stats_table="replicator_stats",
        tombstone_table="replication_tombstones",
        failure_queue_url=REPLICATOR_ENV["FAILURE_QUEUE_URL"],
        tombstone_ttl_seconds=14 * 86400,
        concurrency=32,
        signing_keys_parameter="/DDBReplication/SigningKeys",
        signing_keys_ttl_seconds=300,
        max_clock_skew_seconds=300,
        accept_unsigned_changes=False,
    )


def test_the_trust_settings_are_read():
    env = replicator_env(
        SIGNING_KEYS_PARAMETER="/Elsewhere/Keys",
        SIGNING_KEYS_TTL_SECONDS="0",
        MAX_CLOCK_SKEW_SECONDS="60",
        ACCEPT_UNSIGNED_CHANGES="TRUE",
    )
    settings = ReplicatorSettings.from_env(env)
    assert (settings.signing_keys_parameter, settings.signing_keys_ttl_seconds) == (
        "/Elsewhere/Keys",
        0,
    )
    assert (settings.max_clock_skew_seconds, settings.accept_unsigned_changes) == (60, True)
    sender_settings = SenderSettings.from_env(sender_env(MAX_CLOCK_SKEW_SECONDS="120"))
    assert sender_settings.max_clock_skew_seconds == 120


@pytest.mark.parametrize("raw", ["yes", "1", "maybe"])
def test_accept_unsigned_changes_must_be_true_or_false(raw):
    with pytest.raises(ConfigError, match="ACCEPT_UNSIGNED_CHANGES must be true or false"):
        ReplicatorSettings.from_env(replicator_env(ACCEPT_UNSIGNED_CHANGES=raw))


def test_replicator_concurrency_is_read():
    assert ReplicatorSettings.from_env(replicator_env(REPLICATOR_CONCURRENCY="8")).concurrency == 8


# -- missing required variables ----------------------------------------------------------


@pytest.mark.parametrize("blank", [None, "", "   "], ids=["absent", "empty", "spaces"])
@pytest.mark.parametrize("name", sorted(SENDER_ENV))
def test_sender_names_the_missing_variable(name, blank):
    # Absent, empty and whitespace-only all count as unset (Terraform may render "").
    with pytest.raises(ConfigError, match=rf"\b{name}\b"):
        SenderSettings.from_env(sender_env(**{name: blank}))


@pytest.mark.parametrize("blank", [None, "", "   "], ids=["absent", "empty", "spaces"])
@pytest.mark.parametrize("name", sorted(REPLICATOR_ENV))
def test_replicator_names_the_missing_variable(name, blank):
    with pytest.raises(ConfigError, match=rf"\b{name}\b"):
        ReplicatorSettings.from_env(replicator_env(**{name: blank}))


# -- bad values --------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["abc", "1.5", "10s"])
@pytest.mark.parametrize(
    "name",
    [
        "PEER_CREDENTIALS_TTL_SECONDS",
        "TOMBSTONE_TTL_SECONDS",
        "SENDER_CONCURRENCY",
        "PEER_CONNECT_TIMEOUT_SECONDS",
        "PEER_READ_TIMEOUT_SECONDS",
    ],
)
def test_sender_rejects_a_non_integer(name, raw):
    # The message names the variable and echoes the bad value, so the fix is obvious.
    with pytest.raises(ConfigError, match=rf"{name} must be a whole number, not '{raw}'"):
        SenderSettings.from_env(sender_env(**{name: raw}))


@pytest.mark.parametrize("name", ["TOMBSTONE_TTL_SECONDS", "REPLICATOR_CONCURRENCY"])
def test_replicator_rejects_a_non_integer(name):
    with pytest.raises(ConfigError, match=rf"{name} must be a whole number, not 'many'"):
        ReplicatorSettings.from_env(replicator_env(**{name: "many"}))


@pytest.mark.parametrize(
    ("name", "raw", "minimum"),
    [
        ("SENDER_CONCURRENCY", "0", 1),
        ("TOMBSTONE_TTL_SECONDS", "-5", 1),
        ("PEER_CONNECT_TIMEOUT_SECONDS", "0", 1),
        ("PEER_READ_TIMEOUT_SECONDS", "0", 1),
        ("PEER_CREDENTIALS_TTL_SECONDS", "-1", 0),
    ],
)
def test_sender_rejects_an_out_of_range_integer(name, raw, minimum):
    with pytest.raises(ConfigError, match=rf"{name} must be at least {minimum}, not {raw}"):
        SenderSettings.from_env(sender_env(**{name: raw}))


@pytest.mark.parametrize("name", ["TOMBSTONE_TTL_SECONDS", "REPLICATOR_CONCURRENCY"])
def test_replicator_rejects_an_out_of_range_integer(name):
    with pytest.raises(ConfigError, match=rf"{name} must be at least 1, not 0"):
        ReplicatorSettings.from_env(replicator_env(**{name: "0"}))


def test_an_unknown_ttl_deletes_policy_lists_the_choices():
    with pytest.raises(
        ConfigError, match=r"TTL_DELETES must be one of replicate, skip, not 'drop'"
    ):
        SenderSettings.from_env(sender_env(TTL_DELETES="drop"))


def test_table_map_that_is_not_json():
    with pytest.raises(ConfigError, match=r"TABLE_MAP must be a JSON object: "):
        ReplicatorSettings.from_env(replicator_env(TABLE_MAP="user-cn=user-sg"))


@pytest.mark.parametrize(
    "raw",
    [
        '["user-cn", "user-sg"]',  # a list
        "{}",  # empty: nothing would be replicated
        '{"user-cn": 1}',  # non-string value
        '{"user-cn": ["user-sg"]}',
        '{"user-cn": null}',
        '{"user-cn": ""}',  # empty table name
        '"user-sg"',  # a bare string
    ],
)
def test_table_map_of_the_wrong_shape_shows_an_example(raw):
    with pytest.raises(ConfigError, match=r'TABLE_MAP must map table names .*"user-cn"'):
        ReplicatorSettings.from_env(replicator_env(TABLE_MAP=raw))
