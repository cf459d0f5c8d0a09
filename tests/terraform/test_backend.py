"""Where the environments keep their state: an S3 backend whose settings come from an
uncommitted file at init (backend.tf holds an empty block), in a bucket tools/state_bucket.py
makes. The plan tests override it with a local backend; here the real S3 backend is run
against a moto server, the bucket made by the tool, with S3's own state locking."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import boto3
import hcl2
import pytest

from tests.helpers import moto_server as own_moto_server
from tests.terraform.harness import BACKEND_OVERRIDE_NAME, REPO, Terraform
from tools import state_bucket

ENVS = ("cn-north-1", "ap-southeast-1")
REQUIRED_KEYS = {"bucket", "key", "region", "use_lockfile", "encrypt"}
SETTING = re.compile(r'^(\w+)\s*=\s*("[^"]*"|true|false)$')
# Terraform's S3 backend pointed at moto: no STS, no instance metadata, path-style URLs.
MOTO_BACKEND = """endpoints = {{ s3 = "{url}", sts = "{url}" }}
use_path_style              = true
skip_credentials_validation = true
skip_requesting_account_id  = true
skip_metadata_api_check     = true
skip_region_validation      = true
"""


def backend_settings(text: str) -> dict[str, str]:
    """A .tfbackend file's key = value lines (comments and blank lines skipped); any other
    line fails the test."""
    settings = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = SETTING.match(line)
        assert match, f"not a key = value line: {line!r}"
        settings[match[1]] = json.loads(match[2])
    return settings


def backends(directory: Path) -> dict[str, list[dict]]:
    """File name -> the backend blocks its terraform blocks declare."""
    found = {}
    for path in sorted(directory.glob("*.tf")):
        parsed = hcl2.loads(path.read_text())
        blocks = [b for t in parsed.get("terraform", []) for b in t.get("backend", [])]
        if blocks:
            found[path.name] = blocks
    return found


def test_every_configuration_needs_terraform_1_11():
    declared = {
        str(path.relative_to(REPO)): re.findall(
            r'required_version\s*=\s*"([^"]*)"', path.read_text()
        )
        for root in ("envs", "modules", "examples")
        for path in sorted((REPO / root).rglob("*.tf"))
        if "required_version" in path.read_text()
    }
    assert len(declared) >= 6  # both environments, both modules, both examples
    assert {path: versions for path, versions in declared.items() if versions != [">= 1.11"]} == {}


@pytest.mark.parametrize("name", ENVS)
def test_the_environment_declares_exactly_an_empty_s3_backend(name):
    assert backends(REPO / "envs" / name) == {"backend.tf": [{"s3": {}}]}


@pytest.mark.parametrize("name", ENVS)
def test_the_example_backend_file_has_every_setting(name):
    example = REPO / "envs" / name / "backend.s3.tfbackend.example"
    settings = backend_settings(example.read_text())
    assert set(settings) == REQUIRED_KEYS
    assert settings["key"] == f"ddb-replication/{name}.tfstate"
    assert settings["region"] == name
    assert settings["use_lockfile"] is True and settings["encrypt"] is True
    assert re.fullmatch(rf"ddb-replication-tfstate-\d{{12}}-{name}", settings["bucket"])


@pytest.mark.parametrize("name", ENVS)
def test_the_tool_writes_what_the_example_shows(name):
    written = backend_settings(state_bucket.backend_settings("bucket-of-mine", name))
    example = backend_settings((REPO / "envs" / name / "backend.s3.tfbackend.example").read_text())
    assert written == {**example, "bucket": "bucket-of-mine"}


def test_git_ignores_the_real_backend_file():
    for name in ENVS:
        path = f"envs/{name}/backend.s3.tfbackend"
        ignored = subprocess.run(["git", "check-ignore", "-q", path], cwd=REPO)
        assert ignored.returncode == 0, f"{path} would be committed"
        example = subprocess.run(["git", "check-ignore", "-q", f"{path}.example"], cwd=REPO)
        assert example.returncode == 1, f"{path}.example is ignored"


def test_the_plan_copies_keep_their_state_locally(terraform: Terraform, repository, tmp_path):
    directory = shutil.copytree(repository, tmp_path / "repository") / "envs" / "cn-north-1"
    assert backends(directory) == {
        "backend.tf": [{"s3": {}}],
        BACKEND_OVERRIDE_NAME: [{"local": {}}],
    }
    result = terraform.run("init", "-no-color", cwd=directory)
    assert result.returncode == 0, result.stderr
    initialized = json.loads((directory / ".terraform" / "terraform.tfstate").read_text())
    assert initialized["backend"]["type"] == "local"


@pytest.fixture(scope="module")
def moto_server():
    with own_moto_server() as url:
        yield url


@pytest.mark.parametrize("name", ENVS)
def test_terraform_keeps_state_in_the_bucket_the_tool_made(
    terraform: Terraform, moto_server, tmp_path, name
):
    # The environment's own backend.tf, with one output instead of the whole configuration:
    # what is tested is the backend, initialized the way the docs say.
    directory = tmp_path / name
    directory.mkdir()
    shutil.copy(REPO / "envs" / name / "backend.tf", directory)
    (directory / "main.tf").write_text('output "region" { value = "' + name + '" }\n')
    assert state_bucket.main(
        ["create", "--region", name, "--endpoint-url", moto_server, "--quiet",
         "--output", str(directory / "backend.s3.tfbackend")]
    ) == 0  # fmt: skip
    (directory / "moto.s3.tfbackend").write_text(MOTO_BACKEND.format(url=moto_server))
    settings = backend_settings((directory / "backend.s3.tfbackend").read_text())
    s3 = boto3.client(
        "s3", region_name=name, endpoint_url=moto_server,
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )  # fmt: skip
    # moto applies the TLS-only Deny without reading its condition (this server speaks plain
    # HTTP anyway), so it would refuse Terraform everything; AWS lets TLS requests through.
    assert "aws:SecureTransport" in s3.get_bucket_policy(Bucket=settings["bucket"])["Policy"]
    s3.delete_bucket_policy(Bucket=settings["bucket"])
    env = {**terraform.env, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    env.pop("AWS_PROFILE", None)
    for command in (
        ("init", "-backend-config=backend.s3.tfbackend", "-backend-config=moto.s3.tfbackend"),
        ("apply", "-auto-approve"),
    ):
        result = subprocess.run(
            [terraform.binary, *command, "-no-color"],
            cwd=directory,
            env=env,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr
    assert (
        'Successfully configured the backend "s3"' in result.stdout
        or "Apply complete" in result.stdout
    )

    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=settings["bucket"])["Contents"]]
    # The state is there, and the lock file apply took (key.tflock) is released again.
    assert keys == [f"ddb-replication/{name}.tfstate"]
    state = json.loads(s3.get_object(Bucket=settings["bucket"], Key=keys[0])["Body"].read())
    assert state["outputs"]["region"]["value"] == name
    assert not (directory / "terraform.tfstate").exists()
