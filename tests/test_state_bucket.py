"""tools/state_bucket.py on moto, in both partitions: the bucket and its settings, a second run
that changes nothing, and the backend file it writes or refuses to overwrite."""

from __future__ import annotations

import json

import boto3
import pytest

from tools import state_bucket

ACCOUNT = "123456789012"  # moto's
REGIONS = {"cn-north-1": "aws-cn", "ap-southeast-1": "aws"}


@pytest.fixture
def output(tmp_path):
    """Where the backend file goes: an environment directory of its own per test."""

    def path(region: str):
        directory = tmp_path / "envs" / region
        directory.mkdir(parents=True, exist_ok=True)
        return directory / "backend.s3.tfbackend"

    return path


def create(region: str, output, *extra: str) -> int:
    return state_bucket.main(["create", "--region", region, "--output", str(output), *extra])


@pytest.mark.parametrize("region", REGIONS)
def test_the_bucket_is_private_versioned_encrypted_and_tls_only(aws, output, region, capsys):
    assert create(region, output(region)) == 0
    name = f"ddb-replication-tfstate-{ACCOUNT}-{region}"
    s3 = boto3.client("s3", region_name=region)
    assert (
        s3.head_bucket(Bucket=name)["ResponseMetadata"]["HTTPHeaders"]["x-amz-bucket-region"]
        == region
    )
    assert s3.get_bucket_versioning(Bucket=name)["Status"] == "Enabled"
    [rule] = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    block = s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
    assert block == dict.fromkeys(
        ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True
    )
    [statement] = json.loads(s3.get_bucket_policy(Bucket=name)["Policy"])["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    partition = REGIONS[region]
    assert statement["Resource"] == [
        f"arn:{partition}:s3:::{name}",
        f"arn:{partition}:s3:::{name}/*",
    ]
    assert f"s3://{name}: created" in capsys.readouterr().out


@pytest.mark.parametrize("region", REGIONS)
def test_the_backend_file_names_the_bucket_key_and_region(aws, output, region):
    path = output(region)
    assert create(region, path) == 0
    settings = dict(
        (part.strip() for part in line.split("=", 1))
        for line in path.read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert settings == {
        "bucket": f'"ddb-replication-tfstate-{ACCOUNT}-{region}"',
        "key": f'"ddb-replication/{region}.tfstate"',
        "region": f'"{region}"',
        "use_lockfile": "true",
        "encrypt": "true",
    }


def test_a_second_run_changes_nothing_and_keeps_the_state(aws, output, capsys):
    name = f"ddb-replication-tfstate-{ACCOUNT}-cn-north-1"
    s3 = boto3.client("s3", region_name="cn-north-1")
    # A bucket made by hand, already holding a state: the tool brings it to its settings.
    # (The object goes in first: moto applies a bucket policy's Deny without reading its
    # condition, so after the first run it would refuse this client's put, TLS or not.)
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "cn-north-1"})
    s3.put_object(Bucket=name, Key="ddb-replication/cn-north-1.tfstate", Body=b"{}")
    path = output("cn-north-1")
    assert create("cn-north-1", path) == 0
    written = path.read_text()
    policy = s3.get_bucket_policy(Bucket=name)["Policy"]
    assert f"s3://{name}: exists" in capsys.readouterr().out

    assert create("cn-north-1", path) == 0
    out = capsys.readouterr().out
    assert f"s3://{name}: exists" in out
    assert "already holds these settings" in out
    assert path.read_text() == written
    assert s3.get_bucket_policy(Bucket=name)["Policy"] == policy
    assert s3.get_bucket_versioning(Bucket=name)["Status"] == "Enabled"
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == [name]
    [kept] = s3.list_objects_v2(Bucket=name)["Contents"]
    assert kept["Key"] == "ddb-replication/cn-north-1.tfstate"


def test_a_backend_file_with_other_settings_is_refused_and_nothing_is_created(aws, output, capsys):
    path = output("cn-north-1")
    path.write_text('bucket = "someone-elses"\n')
    assert create("cn-north-1", path) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "exists with other settings" in err and "--force" in err
    assert path.read_text() == 'bucket = "someone-elses"\n'
    assert boto3.client("s3", region_name="cn-north-1").list_buckets()["Buckets"] == []


def test_force_overwrites_a_backend_file_with_other_settings(aws, output):
    path = output("ap-southeast-1")
    path.write_text('bucket = "someone-elses"\n')
    assert create("ap-southeast-1", path, "--force") == 0
    assert f'bucket       = "ddb-replication-tfstate-{ACCOUNT}-ap-southeast-1"' in path.read_text()


def test_dry_run_creates_and_writes_nothing(aws, output, capsys):
    path = output("cn-north-1")
    assert create("cn-north-1", path, "--dry-run") == 0
    assert "would create" in capsys.readouterr().out
    assert not path.exists()
    assert boto3.client("s3", region_name="cn-north-1").list_buckets()["Buckets"] == []


def test_a_bucket_in_another_region_is_refused(aws, output, capsys):
    name = f"ddb-replication-tfstate-{ACCOUNT}-ap-southeast-1"
    boto3.client("s3", region_name="eu-west-1").create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    assert create("ap-southeast-1", output("ap-southeast-1")) == 1
    assert f"bucket {name} exists in eu-west-1, not ap-southeast-1" in capsys.readouterr().err


def test_a_missing_environment_directory_is_one_line(aws, tmp_path, capsys):
    assert create("cn-north-1", tmp_path / "nowhere" / "backend.s3.tfbackend") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist" in err


def test_the_default_file_is_the_environments(monkeypatch, tmp_path):
    assert state_bucket.default_output("cn-north-1") == (
        state_bucket.CHECKOUT_ENVS / "cn-north-1" / "backend.s3.tfbackend"
    )
    monkeypatch.setattr(state_bucket, "CHECKOUT_ENVS", tmp_path / "not-a-checkout")
    assert str(state_bucket.default_output("cn-north-1")) == "envs/cn-north-1/backend.s3.tfbackend"


def test_a_profile_of_the_other_partition_is_refused():
    class Sts:
        def get_caller_identity(self):
            return {"Account": ACCOUNT, "Arn": f"arn:aws:iam::{ACCOUNT}:user/deployer"}

    with pytest.raises(state_bucket.StateBucketError, match="partition aws, and cn-north-1"):
        state_bucket.account_of(Sts(), "cn-north-1")
