"""tools/peer_keys.py against moto: Terraform's placeholder in, the peer's keys stored where the
sender reads them, nothing secret printed."""

from __future__ import annotations

import io
import json

import boto3
import pytest

from replication.peer import PeerCredentials
from tools import peer_keys

REGION = "cn-north-1"
PREFIX = "/DDBReplication/TableSG/"  # defaults.json's peer_credentials_prefix for cn-north-1
KEYS = {"AccessKey": {"AccessKeyId": "AKIAPEERWRITER000001", "SecretAccessKey": "s3cr3t/" * 6}}


class Stdin(io.StringIO):
    def isatty(self) -> bool:
        return False


@pytest.fixture
def ssm(aws):
    """Cn-north-1 as `terraform apply` leaves it: the node's key and the placeholders."""
    kms = boto3.client("kms", region_name=REGION)
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/ddb-replication", TargetKeyId=key)
    client = boto3.client("ssm", region_name=REGION)
    for part in ("AccessKey", "SecretKey"):
        client.put_parameter(
            Name=f"{PREFIX}{part}",
            Value="unset: run tools/peer_keys.py",
            Type="SecureString",
            KeyId="alias/ddb-replication",
        )
    return client


def run(capsys, *args: str, stdin: str = "") -> tuple[int, str, str]:
    code = peer_keys.main(["--region", REGION, *args], stdin=Stdin(stdin))
    out, err = capsys.readouterr()
    return code, out, err


def test_check_reports_terraforms_placeholder_until_keys_are_stored(ssm, capsys):
    code, out, _ = run(capsys, "--check")
    assert code == 1
    assert out.splitlines() == [
        f"{PREFIX}AccessKey: placeholder",
        f"{PREFIX}SecretKey: placeholder",
    ]


def test_the_create_access_key_json_is_stored_where_the_sender_reads_it(ssm, capsys):
    code, out, _ = run(capsys, stdin=json.dumps(KEYS))
    assert code == 0
    assert "AKIA…0001" in out and "version 2" in out
    assert KEYS["AccessKey"]["SecretAccessKey"] not in out

    credentials = PeerCredentials(ssm, PREFIX, ttl_seconds=300)
    assert credentials.get() == ("AKIAPEERWRITER000001", "s3cr3t/" * 6)
    parameter = ssm.get_parameter(Name=f"{PREFIX}SecretKey")["Parameter"]
    assert parameter["Type"] == "SecureString"

    code, out, _ = run(capsys, "--check")
    assert code == 0
    assert out.splitlines() == [f"{PREFIX}AccessKey: AKIA…0001", f"{PREFIX}SecretKey: set"]


def test_dry_run_validates_and_stores_nothing(ssm, capsys):
    code, out, _ = run(capsys, "--dry-run", stdin=json.dumps(KEYS))
    assert (code, out.strip()) == (0, f"would store AKIA…0001 under {PREFIX} in {REGION}")
    assert ssm.get_parameter(Name=f"{PREFIX}AccessKey")["Parameter"]["Version"] == 1


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        ("not json", "stdin is not the JSON `aws iam create-access-key` prints"),
        ('{"AccessKey": {"AccessKeyId": "x"}}', "stdin has no AccessKey.AccessKeyId"),
        (
            '{"AccessKeyId": "not-a-key", "SecretAccessKey": "0123456789abcdefXYZ"}',
            "is not an access key ID",
        ),
        ('{"AccessKeyId": "AKIAPEERWRITER000001", "SecretAccessKey": "short"}', "too short"),
    ],
)
def test_bad_input_is_one_clear_line_and_stores_nothing(ssm, capsys, stdin, message):
    code, out, err = run(capsys, stdin=stdin)
    assert code == 1
    assert err.startswith("peer_keys.py: error: ") and message in err
    assert len(err.strip().splitlines()) == 1
    assert ssm.get_parameter(Name=f"{PREFIX}AccessKey")["Parameter"]["Version"] == 1


def test_a_region_defaults_json_does_not_know_needs_a_prefix(aws, capsys):
    code = peer_keys.main(["--region", "eu-west-1", "--check"], stdin=Stdin())
    assert code == 2
    assert "pass --prefix" in capsys.readouterr().err


def test_a_missing_parameter_is_reported(aws, capsys):
    code, out, _ = run(capsys, "--check")
    assert code == 1
    assert f"{PREFIX}AccessKey: missing" in out
