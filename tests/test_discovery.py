"""A deployed region read back from its functions (deployment/discovery.py): what the operator
tools work from, so that tables set in terraform.tfvars are as visible as defaults.json's."""

from __future__ import annotations

from dataclasses import replace

import boto3
import pytest
from botocore.exceptions import ClientError

from deployment.discovery import NotDeployed, discover, table_of_stream
from deployment.functions import REPLICATOR
from deployment.names import CHINA, GLOBAL, FunctionNames, function_names, region_names
from emulator import resources

STREAM = "arn:aws-cn:dynamodb:cn-north-1:111122223333:table/orders/stream/2026-01-01T00:00:00.000"
KINESIS = "arn:aws-cn:kinesis:cn-north-1:111122223333:stream/ddb_replication_stream_cn"
CAPTURE = "arn:aws-cn:kinesis:cn-north-1:111122223333:stream/my_capture_stream"


def lambda_client(region: str = CHINA):
    return boto3.client("lambda", region_name=region)


def test_a_region_reads_back_as_defaults_json_names_it(aws):
    for region in (CHINA, GLOBAL):
        names = region_names()[region]
        resources.create_region(names)
        deployed = discover(lambda_client(region), region, function_names())
        # moto runs no mapping (the emulator drives its own), so the replication stream and the
        # capture stream, which only the functions' mappings name, are unknown.
        assert deployed.names == replace(names, replication_stream="", capture_stream="")


def test_tables_deployed_beyond_the_defaults_are_seen(aws):
    region = resources.create_region(region_names()[CHINA])
    resources.map_tables(region, {"orders-sg": "orders-cn"})
    names = discover(lambda_client(), CHINA, function_names()).names
    assert names.tables == ("orders-cn", "user-cn")
    assert names.table_map == {"orders-sg": "orders-cn", "user-sg": "user-cn"}


def test_a_missing_or_misconfigured_function_is_one_clear_line(aws):
    region = resources.create_region(region_names()[CHINA])
    renamed = FunctionNames("ddb_send_to_kinesis", "my_replicator")
    with pytest.raises(NotDeployed) as missing:
        discover(lambda_client(), CHINA, renamed)
    assert str(missing.value) == (
        "cn-north-1 has no function my_replicator: deploy the region, or pass "
        "--replicator-function with the name Terraform's function_names output gives"
    )
    environment = dict(region.environments[REPLICATOR])
    del environment["TABLE_MAP"]
    lambda_client().update_function_configuration(
        FunctionName="replicator_ddb", Environment={"Variables": environment}
    )
    with pytest.raises(NotDeployed, match=r"^cn-north-1's replicator_ddb is not configured: .*"):
        discover(lambda_client(), CHINA, function_names())


class MappingsOf:
    """A Lambda client whose functions are configured as moto has them, and whose event source
    mappings come in pages (moto's Lambda would run real mappings through Docker)."""

    def __init__(self, real, pages: dict[str, list[list[str]]], denied: bool = False):
        self.real, self.pages, self.denied = real, pages, denied
        self.exceptions = real.exceptions

    def get_function_configuration(self, **kwargs):
        return self.real.get_function_configuration(**kwargs)

    def list_event_source_mappings(self, FunctionName, Marker="0"):  # noqa: N803 - boto's
        if self.denied:
            error = {"Error": {"Code": "AccessDeniedException", "Message": "no"}}
            raise ClientError(error, "ListEventSourceMappings")
        pages = self.pages.get(FunctionName, [[]])
        page = int(Marker)
        answer = {"EventSourceMappings": [{"EventSourceArn": a} for a in pages[page]]}
        if page + 1 < len(pages):
            answer["NextMarker"] = str(page + 1)
        return answer


def test_mappings_name_the_streamed_tables_and_the_replication_stream(aws):
    resources.create_region(region_names()[CHINA])
    pages = {"ddb_send_to_kinesis": [[], [STREAM]], "replicator_ddb": [[KINESIS]]}
    names = discover(MappingsOf(lambda_client(), pages), CHINA, function_names()).names
    assert names.tables == ("user-cn", "orders")
    assert names.replication_stream == "ddb_replication_stream_cn"
    # Without leave to list mappings, the configuration alone answers.
    denied = discover(MappingsOf(lambda_client(), pages, denied=True), CHINA, function_names())
    assert denied.names.tables == ("user-cn",) and denied.names.replication_stream == ""
    # No table has kinesis capture: the sender reads no Kinesis stream.
    assert names.capture_stream == ""


def test_the_senders_kinesis_mapping_names_the_capture_stream(aws):
    resources.create_region(region_names()[CHINA])
    # A table with capture "both" (mid-switch): the sender reads its DynamoDB stream and the
    # capture stream; a name other than defaults.json's, as a tfvars override would give.
    pages = {"ddb_send_to_kinesis": [[STREAM], [CAPTURE]], "replicator_ddb": [[KINESIS]]}
    names = discover(MappingsOf(lambda_client(), pages), CHINA, function_names()).names
    assert names.capture_stream == "my_capture_stream"
    assert names.replication_stream == "ddb_replication_stream_cn"
    assert names.tables == ("user-cn", "orders")
    # With every table captured through Kinesis, the capture stream is the sender's only source.
    pages = {"ddb_send_to_kinesis": [[CAPTURE]], "replicator_ddb": [[KINESIS]]}
    names = discover(MappingsOf(lambda_client(), pages), CHINA, function_names()).names
    assert names.capture_stream == "my_capture_stream" and names.tables == ("user-cn",)
    # A region read back compares with defaults.json's names, capture stream included.
    assert names != replace(names, capture_stream="ddb_capture_stream_cn")


def test_a_stream_arn_names_its_table():
    assert table_of_stream(STREAM) == "orders"
    assert table_of_stream(KINESIS) == KINESIS
