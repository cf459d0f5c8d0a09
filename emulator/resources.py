"""Create in one region what the Terraform creates there, including the two functions'
registration in Lambda with their configuration (what the operator tools read the deployment
from; the emulator runs their code in its own processes), and the functions' settings."""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field, replace
from typing import Any

import boto3

from deployment import functions
from deployment.names import RegionNames, lambda_runtime
from emulator import moto_fidelity  # noqa: F401  (moto's streams as AWS's)
from emulator.capture import (
    DYNAMODB_STREAMS,
    KINESIS,
    NO_FAULTS,
    CaptureFaults,
    CapturePump,
    capture_mapping,
    check_capture,
)
from emulator.esm import MappingConfig
from emulator.stream_sources import DynamoDBStreamSource, KinesisSource, StreamSource
from replication.settings import ReplicatorSettings, SenderSettings
from replication.signing import SigningKeys
from replication.tombstones import EXPIRY_ATTR
from replication.tombstones import KEY_ATTR as TOMBSTONE_KEY
from replication.versions import MILLISECONDS, now_ms

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
    # Each function's environment, by functions.SENDER and REPLICATOR, as Terraform sets it.
    environments: dict[str, dict[str, str]] = field(default_factory=dict)
    endpoint_url: str | None = None  # the moto server, when not mocking in-process
    # How the sender reads the tables' changes: their DynamoDB streams, or (kinesis) the
    # capture stream their Kinesis streaming destination writes into.
    capture: str = DYNAMODB_STREAMS
    capture_stream: str | None = None
    capture_stream_arn: str | None = None

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
    peer_endpoint_url: str | None = None,
    version_unit: str = MILLISECONDS,
    capture: str = DYNAMODB_STREAMS,
) -> Region:
    """The region's resources; its sender reaches the peer at `peer_endpoint_url` (the link
    into the peer, in the emulator). `version_unit`: the deployment's VERSION_UNIT.
    `capture`: dynamodb_streams, or kinesis (a capture stream too; moto has no streaming
    destination, so emulator/capture.py's pump fills it)."""
    check_capture(capture)
    session = session or boto3.Session()
    region = names.region

    def client(service: str) -> Any:
        return session.client(service, region_name=region, endpoint_url=endpoint_url)

    dynamodb = client("dynamodb")
    # Tables that already exist (an application's, or the original sample's) are replicated
    # where they are, as Terraform's existing_tables does; the others are created.
    stream_arns = {}
    for table in names.tables:
        stream_arns[table] = (
            _existing_stream(dynamodb, table)
            or dynamodb.create_table(
                TableName=table,
                KeySchema=[{"AttributeName": n, "KeyType": k} for n, _, k in key_schema],
                AttributeDefinitions=[
                    {"AttributeName": n, "AttributeType": t} for n, t, _ in key_schema
                ],
                BillingMode="PAY_PER_REQUEST",
                StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
            )["TableDescription"]["LatestStreamArn"]
        )
    for table, key in ((names.stats_table, "PK"), (names.tombstone_table, TOMBSTONE_KEY)):
        if _exists(dynamodb, table):
            continue  # the sample's replicator_stats: kept, as an import keeps it
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
    # Over the sample's own, if it ran here (peer_keys.py create --replace, on AWS).
    ssm.put_parameter(Name=f"{prefix}AccessKey", Value=DUMMY_KEYS[0], Type="String", Overwrite=True)
    ssm.put_parameter(
        Name=f"{prefix}SecretKey", Value=DUMMY_KEYS[1], Type="SecureString", Overwrite=True
    )
    ssm.put_parameter(
        Name=names.signing_keys_parameter, Value=SIGNING_KEYS.to_json(), Type="SecureString"
    )
    environments = functions.function_environments(
        names, *queues, peer_endpoint_url=peer_endpoint_url, version_unit=version_unit
    )
    register_functions(client("iam"), client("lambda"), names, environments)
    created = Region(
        names, session, stream_arns, stream_arn, *queues, environments, endpoint_url=endpoint_url
    )
    set_capture(created, capture, shards)
    return created


def set_capture(region: Region, capture: str, shards: int = 1) -> None:
    """The region's tables are captured as `capture` says: the capture stream is created when
    the first table needs it, and deleted when the last one stops (as the module does)."""
    region.capture = check_capture(capture)
    kinesis = region.client("kinesis")
    if capture != DYNAMODB_STREAMS and region.capture_stream is None:
        region.capture_stream = region.names.capture_stream
        kinesis.create_stream(StreamName=region.capture_stream, ShardCount=shards)
        region.capture_stream_arn = kinesis.describe_stream_summary(
            StreamName=region.capture_stream
        )["StreamDescriptionSummary"]["StreamARN"]
    elif capture == DYNAMODB_STREAMS and region.capture_stream is not None:
        kinesis.delete_stream(StreamName=region.capture_stream)
        region.capture_stream = region.capture_stream_arn = None


def sender_sources(region: Region) -> dict[str, StreamSource]:
    """What the region's sender mappings read, by a label for each: every table's DynamoDB
    stream; or, with kinesis capture, the one capture stream all the tables write into; or,
    with both, all of them."""
    name = region.names.region
    sources: dict[str, StreamSource] = {}
    if region.capture != KINESIS:
        streams = region.client("dynamodbstreams")
        for table, arn in region.stream_arns.items():
            sources[table] = DynamoDBStreamSource(streams, arn, name)
    if region.capture != DYNAMODB_STREAMS:
        sources[region.capture_stream] = KinesisSource(
            region.client("kinesis"), region.capture_stream, region.capture_stream_arn, name
        )
    return sources


def sender_config(source: StreamSource, config: MappingConfig) -> MappingConfig:
    """A sender mapping's settings: as given on a table's stream; on the capture stream,
    retried until the stream's retention runs out, as the module sets it."""
    return capture_mapping(config) if isinstance(source, KinesisSource) else config


def capture_pump(
    region: Region, faults: CaptureFaults = NO_FAULTS, clock=now_ms
) -> CapturePump | None:
    """The tables' Kinesis streaming destination (emulator/capture.py); None without one."""
    if region.capture == DYNAMODB_STREAMS:
        return None
    return CapturePump(
        region.client("dynamodbstreams"),
        region.client("kinesis"),
        region.stream_arns,
        region.capture_stream,
        region.names.region,
        faults,
        clock,
    )


def _exists(dynamodb: Any, table: str) -> bool:
    try:
        dynamodb.describe_table(TableName=table)
    except dynamodb.exceptions.ResourceNotFoundException:
        return False
    return True


def _existing_stream(dynamodb: Any, table: str) -> str | None:
    """An existing table's stream ARN; None if there's no such table. A table without a
    NEW_AND_OLD_IMAGES stream is refused, as the module's postcondition refuses it."""
    try:
        description = dynamodb.describe_table(TableName=table)["Table"]
    except dynamodb.exceptions.ResourceNotFoundException:
        return None
    view = description.get("StreamSpecification", {}).get("StreamViewType")
    if view != "NEW_AND_OLD_IMAGES":
        raise ValueError(f"{table} exists without a NEW_AND_OLD_IMAGES stream (it has {view})")
    return description["LatestStreamArn"]


def register_functions(
    iam: Any, lambda_client: Any, names: RegionNames, environments: dict[str, dict[str, str]]
) -> None:
    """The two functions in the region's Lambda, configured as Terraform configures them. Their
    code is a placeholder: nothing invokes them there, and no event source mapping is created
    (moto would run one through Docker, and read the stream empty); the emulator's own
    mappings drive its processes instead."""
    role = "replication-functions"
    try:
        arn = iam.get_role(RoleName=role)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "lambda.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
        arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))["Role"][
            "Arn"
        ]
    function_names = {
        functions.SENDER: names.sender_function,
        functions.REPLICATOR: names.replicator_function,
    }
    for role_name, function in function_names.items():
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr(f"{role_name}.py", "# runs in the emulator's own processes\n")
        lambda_client.create_function(
            FunctionName=function,
            Runtime=lambda_runtime(),
            Role=arn,
            Handler=f"{role_name}.lambda_handler",
            Code={"ZipFile": code.getvalue()},
            Environment={"Variables": environments[role_name]},
        )


def map_tables(region: Region, more: dict[str, str]) -> None:
    """Replicate more of the peer's tables into tables here (peer table -> table here), as a
    `terraform apply` with more `tables` does: the replicator's registered configuration
    changes. Processes the emulator already runs keep the map they started with."""
    environment = region.environments[functions.REPLICATOR]
    table_map = {**json.loads(environment["TABLE_MAP"]), **more}
    environment["TABLE_MAP"] = functions.table_map_variable(table_map)
    region.client("lambda").update_function_configuration(
        FunctionName=region.names.replicator_function, Environment={"Variables": environment}
    )


def sender_settings(region: Region, **overrides: Any) -> SenderSettings:
    """The settings the region's sender runs with, as configured, with `overrides`."""
    environment = region.environments[functions.SENDER]
    return replace(functions.sender_settings(region.names.region, environment), **overrides)


def replicator_settings(region: Region, **overrides: Any) -> ReplicatorSettings:
    """The settings the region's replicator runs with, as configured, with `overrides`."""
    environment = region.environments[functions.REPLICATOR]
    return replace(functions.replicator_settings(region.names.region, environment), **overrides)


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
