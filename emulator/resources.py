"""Create in one region what the Terraform creates there, and the functions' settings."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3

from deployment.names import RegionNames
from replication.settings import ReplicatorSettings, SenderSettings
from replication.signing import SigningKeys
from replication.tombstones import EXPIRY_ATTR
from replication.tombstones import KEY_ATTR as TOMBSTONE_KEY

# The seed's key schema; any other is given as [(name, "S"|"N"|"B", "HASH"|"RANGE"), ...].
DEFAULT_KEY_SCHEMA = (("PK", "S", "HASH"),)
# The peer's dummy access keys that each region keeps in Parameter Store.
DUMMY_KEYS = ("AKIAPEERDUMMYKEY0000", "peer-dummy-secret-key")
# The change-signing key ring both regions share (tools/signing_keys.py init, on AWS); made
# afresh for each process, so nothing signed here is valid anywhere else.
SIGNING_KEYS = SigningKeys.generate("emulator")


@dataclass
class Region:
    names: RegionNames
    session: boto3.Session
    stream_arns: dict[str, str]  # table -> its DynamoDB stream ARN
    replication_stream_arn: str
    sender_queue_url: str
    replicator_queue_url: str
    endpoint_url: str | None = None  # the moto server, when not mocking in-process

    def client(self, service: str) -> Any:
        return self.session.client(
            service, region_name=self.names.region, endpoint_url=self.endpoint_url
        )


def create_region(
    names: RegionNames,
    session: boto3.Session | None = None,
    key_schema=DEFAULT_KEY_SCHEMA,
    shards: int = 1,
    endpoint_url: str | None = None,
) -> Region:
    session = session or boto3.Session()
    region = names.region

    def client(service: str) -> Any:
        return session.client(service, region_name=region, endpoint_url=endpoint_url)

    dynamodb = client("dynamodb")
    stream_arns = {}
    for table in names.tables:
        response = dynamodb.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": n, "KeyType": k} for n, _, k in key_schema],
            AttributeDefinitions=[
                {"AttributeName": n, "AttributeType": t} for n, t, _ in key_schema
            ],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        stream_arns[table] = response["TableDescription"]["LatestStreamArn"]
    for table, key in ((names.stats_table, "PK"), (names.tombstone_table, TOMBSTONE_KEY)):
        dynamodb.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    dynamodb.update_time_to_live(
        TableName=names.tombstone_table,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": EXPIRY_ATTR},
    )
    kinesis = client("kinesis")
    kinesis.create_stream(StreamName=names.replication_stream, ShardCount=shards)
    stream_arn = kinesis.describe_stream_summary(StreamName=names.replication_stream)[
        "StreamDescriptionSummary"
    ]["StreamARN"]
    sqs = client("sqs")
    queues = [
        sqs.create_queue(QueueName=name)["QueueUrl"]
        for name in (names.sender_failure_queue, names.replicator_failure_queue)
    ]
    ssm = client("ssm")
    prefix = names.peer_credentials_prefix
    ssm.put_parameter(Name=f"{prefix}AccessKey", Value=DUMMY_KEYS[0], Type="String")
    ssm.put_parameter(Name=f"{prefix}SecretKey", Value=DUMMY_KEYS[1], Type="SecureString")
    ssm.put_parameter(
        Name=names.signing_keys_parameter, Value=SIGNING_KEYS.to_json(), Type="SecureString"
    )
    return Region(names, session, stream_arns, stream_arn, *queues, endpoint_url=endpoint_url)


def sender_settings(region: Region, **overrides: Any) -> SenderSettings:
    n = region.names
    return SenderSettings(
        region=n.region,
        peer_region=n.peer_region,
        peer_stream=n.peer_replication_stream,
        peer_credentials_prefix=n.peer_credentials_prefix,
        tombstone_table=n.tombstone_table,
        failure_queue_url=region.sender_queue_url,
        **overrides,
    )


def replicator_settings(region: Region, **overrides: Any) -> ReplicatorSettings:
    n = region.names
    return ReplicatorSettings(
        region=n.region,
        peer_region=n.peer_region,
        table_map=dict(n.table_map),
        stats_table=n.stats_table,
        tombstone_table=n.tombstone_table,
        failure_queue_url=region.replicator_queue_url,
        **overrides,
    )


def function_arn(function: str, region: str) -> str:
    """The ARN a function's on-failure messages name (an emulated account's)."""
    return f"arn:emulated:lambda:{region}:000000000000:function:{function}"


def drain_queue(sqs: Any, url: str) -> list[dict[str, Any]]:
    """Receive, delete and return every message body (JSON) waiting on a queue."""
    bodies = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return bodies
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
