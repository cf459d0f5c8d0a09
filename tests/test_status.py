"""ops.py status beyond the counters: what keeps alarms from reaching anyone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from deployment import names as topology
from deployment.names import CHINA
from emulator import resources
from tools.operations import status
from tools.operations.sides import open_side

ROOT = Path(__file__).resolve().parent.parent


class PendingEmails:
    """The SNS client, except that e-mail subscriptions in `pending` list as AWS lists them
    until their link is opened: SubscriptionArn "PendingConfirmation" (moto confirms every
    subscription at once)."""

    def __init__(self, sns, pending: set[str]):
        self._sns, self._pending = sns, pending

    def get_paginator(self, name: str):
        real = self._sns.get_paginator(name)
        if name != "list_subscriptions_by_topic":
            return real
        pending = self._pending

        class Paginator:
            def paginate(self, **kwargs):
                for page in real.paginate(**kwargs):
                    for subscription in page.get("Subscriptions", []):
                        if subscription["Endpoint"] in pending:
                            subscription["SubscriptionArn"] = "PendingConfirmation"
                    yield page

        return Paginator()

    def __getattr__(self, name: str):
        return getattr(self._sns, name)


@pytest.fixture
def side(aws):
    resources.create_region(topology.region_names()[CHINA])
    return open_side(CHINA)


def test_alarm_emails_nobody_confirmed_need_attention(side):
    sns = side.client("sns")
    topic = sns.create_topic(Name=status.ALARM_TOPIC)["TopicArn"]
    for address in ("oncall@example.com", "lead@example.com"):
        sns.subscribe(TopicArn=topic, Protocol="email", Endpoint=address)
    side._clients["sns"] = PendingEmails(sns, {"oncall@example.com"})

    result = status.region_status(side, heartbeat_threshold_s=300)
    assert not result.keeping_up
    [problem] = result.problems
    assert problem.startswith("no alarm reaches oncall@example.com until confirmed")

    side._clients["sns"] = sns  # confirmed
    assert status.region_status(side, heartbeat_threshold_s=300).keeping_up


def test_the_topic_status_looks_for_is_the_one_the_module_creates():
    monitoring = (ROOT / "modules" / "replication_node" / "monitoring.tf").read_text()
    topic = re.search(r'resource "aws_sns_topic" "alarms" \{\s*name\s*=\s*"([^"]+)"', monitoring)
    assert topic and topic.group(1) == status.ALARM_TOPIC
