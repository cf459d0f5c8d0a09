"""Hermetic AWS for every test: fake credentials, moto, nothing leaves the machine."""

from __future__ import annotations

import pytest
from moto import mock_aws

from emulator.stepped import TwoRegions
from tests.helpers import emulator_running


@pytest.fixture(autouse=True)
def hermetic_aws(monkeypatch):
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-southeast-1")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # New botocore sends DynamoDB Streams calls to account-based hosts that moto does not serve.
    monkeypatch.setenv("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "DynamoDBReplication")


@pytest.fixture
def aws():
    with mock_aws():
        yield


@pytest.fixture
def regions(aws):
    return TwoRegions()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    """The emulator with its defaults, shared by one test module's tests."""
    with emulator_running(tmp_path_factory.mktemp("emulator")) as running:
        yield running
