"""envs/cn-north-1 and envs/ap-southeast-1, planned offline from a copy of the repository whose
dist/ is freshly built, as a user has it after `python tools/build_lambdas.py`.

Each environment is planned with each of its scenarios (scenarios/<region>-<scenario>.tfvars: its
defaults, the proxy and VPC options, two tables, every setting, ...), and each plan matches the
scenario's inventory. A scenario with a <region>-<scenario>.account.json plans against that
simulated account (the tables an application's own Terraform created). Policies that name
resources are only rendered at apply time, so the IAM tests apply (the stand-in fakes it against
local state) and read the policies from the state.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import tftest
import yaml

from tests.terraform import inventory, module_docs
from tests.terraform.harness import HERE, REAL_PROVIDER_ENV, REPO, Terraform
from tests.terraform.stub_aws_provider import ACCOUNT_STATE_ENV
from tools.build_lambdas import LOCAL_WHEELHOUSE

ENVS = {"cn-north-1": "aws-cn", "ap-southeast-1": "aws"}
SCENARIO_DIR = HERE / "scenarios"
# (environment, scenario) for each scenarios/<environment>-<scenario>.tfvars.
SCENARIOS = sorted(
    (name, path.name.removeprefix(f"{name}-").removesuffix(".tfvars"))
    for name in ENVS
    for path in SCENARIO_DIR.glob(f"{name}-*.tfvars")
)
REAL_PROVIDER = os.environ.get(REAL_PROVIDER_ENV, "") not in ("", "0", "false")


def account_file(name: str, scenario: str) -> Path | None:
    """The simulated account a scenario plans against, if it has one."""
    path = SCENARIO_DIR / f"{name}-{scenario}.account.json"
    return path if path.exists() else None


def scenario_cases() -> list:
    """Every scenario; those needing the stand-in's simulated account are skipped against the
    real provider, whose account holds no such tables."""
    return [
        pytest.param(
            name,
            scenario,
            marks=pytest.mark.skipif(
                REAL_PROVIDER and account_file(name, scenario) is not None,
                reason="plans against tables of the stand-in's simulated account",
            ),
        )
        for name, scenario in SCENARIOS
    ]


@pytest.fixture(scope="module")
def env(terraform: Terraform, repository: Path) -> Callable[[str], tftest.TerraformTest]:
    """An environment's directory in the copy, initialized once."""
    initialized: dict[str, tftest.TerraformTest] = {}

    def get(name: str) -> tftest.TerraformTest:
        if name not in initialized:
            tf = terraform.test(repository / "envs" / name)
            tf.setup()
            initialized[name] = tf
        return initialized[name]

    return get


@pytest.fixture(scope="module")
def plan(
    terraform: Terraform, env, tmp_path_factory
) -> Callable[[str, str], tftest.TerraformPlanOutput]:
    """A scenario's plan, made once (against its simulated account, if it has one)."""
    plans: dict[tuple[str, str], tftest.TerraformPlanOutput] = {}

    def get(name: str, scenario: str) -> tftest.TerraformPlanOutput:
        if (name, scenario) not in plans:
            tfvars = SCENARIO_DIR / f"{name}-{scenario}.tfvars"
            tf = env(name)
            account = account_file(name, scenario)
            if account is not None:
                copy = tmp_path_factory.mktemp("account") / account.name
                shutil.copy(account, copy)
                environment = {**terraform.env, ACCOUNT_STATE_ENV: str(copy)}
                tf = tftest.TerraformTest(tf.tfdir, binary=terraform.binary, env=environment)
            plans[name, scenario] = tf.plan(output=True, tf_var_file=str(tfvars))
        return plans[name, scenario]

    return get


@pytest.fixture(scope="module")
def applied(terraform: Terraform, repository: Path) -> Callable[[str], dict]:
    """An environment applied with its defaults (against the stand-in, into local state in a
    separate copy), as `terraform show -json` describes the state."""
    states: dict[str, dict] = {}

    def get(name: str) -> dict:
        if name not in states:
            workdir = repository.parent / f"applied-{name}"
            shutil.copytree(repository, workdir)
            directory = workdir / "envs" / name
            for command in (("init",), ("apply", "-auto-approve")):
                result = terraform.run(*command, "-no-color", cwd=directory)
                assert result.returncode == 0, result.stderr
            shown = terraform.run("show", "-json", cwd=directory)
            states[name] = {"directory": directory, **json.loads(shown.stdout)}
        return states[name]

    return get


def resources(planned) -> dict[str, dict]:
    return inventory.planned_resources(planned)


def state_resources(state: dict) -> dict[str, dict]:
    found = {}
    modules = [state["values"]["root_module"]]
    while modules:
        module = modules.pop()
        modules.extend(module.get("child_modules", []))
        found.update({r["address"]: r["values"] for r in module.get("resources", [])})
    return found


def policy_actions(policy_json: str) -> dict[str, list[str]]:
    """Statement Sid -> its actions, sorted."""
    statements = json.loads(policy_json)["Statement"]
    return {
        s["Sid"]: sorted([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
        for s in statements
    }


# ------------------------------------------------------------------------------- every scenario


@pytest.mark.parametrize("name", ENVS)
def test_each_environment_validates(terraform, env, name):
    directory = Path(env(name).tfdir)
    result = terraform.run("validate", "-no-color", cwd=directory)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("name", "scenario"), scenario_cases())
def test_each_scenario_plans_what_its_inventory_says(plan, name, scenario):
    expected = yaml.safe_load((SCENARIO_DIR / f"{name}-{scenario}.yaml").read_text())
    assert inventory.check(plan(name, scenario), expected) == []


@pytest.mark.parametrize(("name", "scenario"), scenario_cases())
def test_no_plan_holds_a_secret(plan, name, scenario):
    planned = plan(name, scenario)
    types = {inventory.resource_type(address) for address in resources(planned)}
    # Access keys are created outside Terraform; the stand-in does not even serve the type,
    # so a configuration that declared one would fail to plan.
    assert "aws_iam_access_key" not in types
    # Nor does Terraform create the parameters the keys are stored in: the provider would read
    # their values back into state (test_secrets_in_state.py).
    assert "aws_ssm_parameter" not in types
    text = json.dumps(planned.planned_values)
    assert not re.search(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b", text), "an access key ID in the plan"


# ------------------------------------------------------------------------------- what is planned


@pytest.mark.parametrize("name", ENVS)
def test_mappings_have_the_seeds_settings_and_report_item_failures(plan, name):
    planned = resources(plan(name, "defaults"))
    sender = planned[f'module.node.aws_lambda_event_source_mapping.stream["sender/{table(name)}"]']
    replicator = planned['module.node.aws_lambda_event_source_mapping.stream["replicator"]']
    for mapping, retries in ((sender, 300), (replicator, 100)):
        assert mapping["batch_size"] == 500
        assert mapping["parallelization_factor"] == 10
        assert mapping["maximum_retry_attempts"] == retries
        assert mapping["maximum_record_age_in_seconds"] == 86400
        assert mapping["bisect_batch_on_function_error"] is True
        assert mapping["function_response_types"] == ["ReportBatchItemFailures"]
        assert mapping["starting_position"] == "TRIM_HORIZON"


# ------------------------------------------------------------------------------- every setting

# Inputs of modules/replication_node the environments set themselves, and why a deployment
# doesn't choose them in tfvars.
NODE_INTERNAL = {
    # Names from defaults.json, the one source of a deployment's names, which the tools and the
    # emulator read too: set here alone, they would part from what the tools look for.
    "peer_region": "defaults.json",
    "peer_replication_stream": "defaults.json",
    "peer_credentials_prefix": "defaults.json",
    "replication_stream_name": "defaults.json",
    "capture_stream_name": "defaults.json",
    "stats_table_name": "defaults.json",
    "tombstone_table_name": "defaults.json",
    "sender_failure_queue_name": "defaults.json",
    "replicator_failure_queue_name": "defaults.json",
    "lambda_runtime": "defaults.json: the runtime the zips are built for",
    # Names the tools' defaults and the runbook's commands use (tools/operations/status.py,
    # tools/peer_keys.py, README "Deploy order").
    "sender_function_name": "the tools' and the runbook's name",
    "replicator_function_name": "the tools' and the runbook's name",
    "peer_writer_name": "the tools' and the runbook's name",
    # The repository's lambda/, so that a stale zip fails the plan.
    "lambda_source_dir": "the repository's lambda/",
}
# Inputs of modules/proxy_host the environments wire from the node rather than from `proxy`.
PROXY_INTERNAL = {
    "kinesis_region": "this environment's region",
    "kms_key_arn": "the node's key",
    "alarm_actions": "the node's topic and alarm_actions",
}


def configuration(planned) -> dict:
    return planned.configuration["root_module"]


@pytest.mark.parametrize("name", ENVS)
def test_every_module_setting_is_a_variable_of_the_environments(plan, name):
    """A module input a deployment may choose is passed from the environment's variable of the
    same name, so setting it in tfvars can't be ignored."""
    root = configuration(plan(name, "defaults"))
    node = root["module_calls"]["node"]
    module_inputs = set(node["module"]["variables"])
    assert set(NODE_INTERNAL) <= module_inputs, "NODE_INTERNAL names an input the module lacks"
    for variable in sorted(module_inputs - set(NODE_INTERNAL)):
        assert variable in root["variables"], f"the environments have no variable {variable}"
        passed = node["expressions"].get(variable, {}).get("references", [])
        assert f"var.{variable}" in passed, f"module.node's {variable} isn't var.{variable}"
    for variable in NODE_INTERNAL:
        passed = node["expressions"].get(variable, {}).get("references", [])
        assert not [r for r in passed if r.startswith("var.")], f"{variable} is internal"
    # The proxy's inputs come from the environment's `proxy` object, attribute by attribute.
    proxy = root["module_calls"]["proxy"]
    proxy_inputs = set(proxy["module"]["variables"])
    assert set(PROXY_INTERNAL) <= proxy_inputs
    for variable in sorted(proxy_inputs - set(PROXY_INTERNAL)):
        passed = proxy["expressions"].get(variable, {}).get("references", [])
        assert f"var.proxy.{variable}" in passed, f"module.proxy's {variable} isn't var.proxy's"


TERRAFORM_DIRECTORIES = ("modules/replication_node", "modules/proxy_host", "envs/shared")


@pytest.mark.parametrize("directory", TERRAFORM_DIRECTORIES)
def test_every_variable_has_a_description_and_a_type(directory):
    found = module_docs.variables(REPO / directory)
    assert found
    for variable in found:
        assert variable.description, f"{directory}: variable {variable.name} has no description"
        assert variable.type, f"{directory}: variable {variable.name} has no type"
        assert "any" not in re.findall(r"\w+", variable.type), (
            f"{directory}: variable {variable.name} is typed `any`: give it an object type"
        )


def test_the_settings_scenario_sets_every_variable():
    """cn-north-1-settings.tfvars gives each variable a value other than its default, and its
    inventory shows where each lands: a variable the scenario leaves out could be ignored."""
    tfvars = (SCENARIO_DIR / "cn-north-1-settings.tfvars").read_text()
    given = set(re.findall(r"^([a-z_0-9]+)\s*=", tfvars, re.MULTILINE))
    declared = {v.name for v in module_docs.variables(REPO / "envs" / "shared")}
    # profile picks credentials, dist_dir the zips; neither reaches a plan. existing_tables
    # (and their capture) have scenarios of their own, against a simulated account (the real
    # provider's has no tables).
    assert declared - given == {"profile", "dist_dir", "existing_tables", "existing_tables_capture"}
    assert given <= declared


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("timeout_seconds=15", "timeout_seconds must exceed peer_connect_timeout_seconds"),
        ("timeout_seconds=901", "timeout_seconds must be a whole number of seconds from 1"),
        ("memory_size=64", "memory_size must be a whole number of MB from 128 to 10240"),
        ("log_retention_days=10", "log_retention_days must be one of CloudWatch Logs'"),
        ("ttl_deletes=drop", 'ttl_deletes must be "replicate" or "skip"'),
        ('version_unit="ms"', 'version_unit must be "milliseconds" or "seconds"'),
        ("sender_mapping={batch_size=0}", "sender_mapping.batch_size must be a whole number"),
        (
            'replicator_mapping={starting_position="AT_TIMESTAMP"}',
            "replicator_mapping.starting_position must be TRIM_HORIZON or LATEST",
        ),
        ("sender_concurrency=0", "sender_concurrency must be a whole number of at least 1"),
        ("kms_deletion_window_days=3", "kms_deletion_window_days must be a whole number from 7"),
        ('alarm_actions=["pager"]', "alarm_actions must be ARNs"),
        ("heartbeat_alarm_ms=1000", "heartbeat_alarm_ms must be at least 60000"),
    ],
)
def test_settings_outside_what_aws_or_the_functions_accept_are_refused(
    terraform, scratch_env, setting, message
):
    assert message in plan_error(terraform, scratch_env, f"-var={setting}")


def test_the_peer_timeouts_count_against_the_function_timeout(terraform, scratch_env):
    # 60 s is plenty for the defaults (3 + 10 + 2), not for a 58 s read (3 + 58 + 2).
    message = plan_error(terraform, scratch_env, "-var=peer_read_timeout_seconds=58")
    assert "timeout_seconds must exceed peer_connect_timeout_seconds" in message


# A scratch apply against the stand-in fakes everything into local state; against the real
# provider it would create, and here even destroy, resources in a real account.
stand_in_only = pytest.mark.skipif(
    os.environ.get(REAL_PROVIDER_ENV, "") not in ("", "0", "false"),
    reason="applies a scratch copy, which the stand-in fakes and the real provider would not",
)


def table(name: str) -> str:
    return {"cn-north-1": "user-cn", "ap-southeast-1": "user-sg"}[name]


@pytest.mark.parametrize("name", ENVS)
def test_functions_get_the_environment_their_settings_read(applied, name):
    defaults = json.loads((REPO / "defaults.json").read_text())
    names = defaults["regions"][name]
    state = state_resources(applied(name))
    sender = state['module.node.aws_lambda_function.function["sender"]']
    replicator = state['module.node.aws_lambda_function.function["replicator"]']

    assert sender["runtime"] == replicator["runtime"] == defaults["lambda_runtime"]
    assert sender["handler"] == "sender.lambda_handler"
    assert replicator["handler"] == "replicator.lambda_handler"
    [sender_env] = sender["environment"]
    assert set(sender_env["variables"]) == {
        "PEER_REGION",
        "PEER_STREAM_NAME",
        "PEER_CREDENTIALS_PREFIX",
        "TOMBSTONE_TABLE",
        "FAILURE_QUEUE_URL",
        "TTL_DELETES",
        "SIGNING_KEYS_PARAMETER",
        "MAX_CLOCK_SKEW_SECONDS",
        "VERSION_UNIT",
    }
    assert sender_env["variables"]["PEER_REGION"] == names["peer_region"]
    assert sender_env["variables"]["PEER_STREAM_NAME"] == names["peer_replication_stream"]
    assert sender_env["variables"]["PEER_CREDENTIALS_PREFIX"] == names["peer_credentials_prefix"]
    [replicator_env] = replicator["environment"]
    assert json.loads(replicator_env["variables"]["TABLE_MAP"]) == names["table_map"]
    assert replicator_env["variables"]["STATS_TABLE"] == names["stats_table"]
    assert set(replicator_env["variables"]) == {
        "PEER_REGION",
        "TABLE_MAP",
        "STATS_TABLE",
        "TOMBSTONE_TABLE",
        "FAILURE_QUEUE_URL",
        "SIGNING_KEYS_PARAMETER",
        "MAX_CLOCK_SKEW_SECONDS",
        "ACCEPT_UNSIGNED_CHANGES",
        "VERSION_UNIT",
    }
    # The replicator accepts changes from the peer only; both sign and verify with one ring.
    assert replicator_env["variables"]["PEER_REGION"] == names["peer_region"]
    for variables in (sender_env["variables"], replicator_env["variables"]):
        assert variables["SIGNING_KEYS_PARAMETER"] == defaults["signing_keys_parameter"]
        assert variables["MAX_CLOCK_SKEW_SECONDS"] == "300"
        assert variables["VERSION_UNIT"] == "milliseconds"
    assert replicator_env["variables"]["ACCEPT_UNSIGNED_CHANGES"] == "false"
    assert sender["tracing_config"] == [{"mode": "PassThrough"}]
    assert sender.get("vpc_config") in (None, [])


@pytest.mark.parametrize("name", ENVS)
def test_failure_queues_take_the_largest_report_the_functions_send(plan, name):
    # The engine sizes each failure report, in UTF-8 bytes, to fit this limit exactly.
    from replication.failures import QUEUE_MAX_MESSAGE_BYTES

    planned = resources(plan(name, "defaults"))
    for function in ("sender", "replicator"):
        queue = planned[f'module.node.aws_sqs_queue.failures["{function}"]']
        assert queue["max_message_size"] == QUEUE_MAX_MESSAGE_BYTES


@pytest.mark.parametrize("name", ENVS)
def test_the_replication_stream_outlasts_a_long_weekend(plan, name):
    stream = resources(plan(name, "defaults"))["module.node.aws_kinesis_stream.replication"]
    assert stream["retention_period"] == 72
    assert stream["encryption_type"] == "KMS"


@pytest.mark.parametrize("hours", ["23", "8761", "48.5"])
def test_stream_retention_outside_what_kinesis_keeps_is_refused(terraform, scratch_env, hours):
    message = plan_error(terraform, scratch_env, f"-var=replication_stream_retention_hours={hours}")
    assert "replication_stream_retention_hours must be a whole number from 24 to 8760" in message


# Alarm name -> (namespace, dimensions, metric, statistic, period, periods, threshold).
def expected_alarms(name: str) -> dict[str, tuple]:
    names = json.loads((REPO / "defaults.json").read_text())["regions"][name]
    sender, replicator = "ddb_send_to_kinesis", "replicator_ddb"
    alarms = {}
    for function in (sender, replicator):
        lambda_ = ("AWS/Lambda", {"FunctionName": function})
        alarms[f"{function}-iterator-age"] = (*lambda_, "IteratorAge", "Maximum", 60, 5, 120000)
        alarms[f"{function}-errors"] = (*lambda_, "Errors", "Sum", 300, 1, 0)
        alarms[f"{function}-destination-delivery-failures"] = (
            *lambda_,
            "DestinationDeliveryFailures",
            "Sum",
            300,
            1,
            0,
        )
        alarms[f"{function}-throttles"] = (*lambda_, "Throttles", "Sum", 300, 1, 0)
    for queue in (names["sender_failure_queue"], names["replicator_failure_queue"]):
        sqs = ("AWS/SQS", {"QueueName": queue})
        visible = "ApproximateNumberOfMessagesVisible"
        alarms[f"{queue}-not-empty"] = (*sqs, visible, "Maximum", 300, 1, 0)
        oldest = "ApproximateAgeOfOldestMessage"
        alarms[f"{queue}-oldest-message-age"] = (*sqs, oldest, "Maximum", 300, 1, 7 * 86400)
    emf = "DynamoDBReplication"
    by_replicator = (emf, {"service": "replicator"})
    alarms[f"{replicator}-replication-lag"] = (
        *by_replicator,
        "ReplicationLag",
        "Maximum",
        60,
        5,
        60000,
    )
    alarms[f"{replicator}-heartbeat"] = (*by_replicator, "HeartbeatAge", "Maximum", 60, 5, 180000)
    for metric, suffix in (
        ("RejectedUnsigned", "rejected-unsigned"),
        ("RejectedSignature", "rejected-signature"),
        ("RejectedOrigin", "rejected-origin"),
        ("RejectedVersion", "rejected-version"),
        ("RejectedFutureVersion", "rejected-future-version"),
    ):
        alarms[f"{replicator}-{suffix}"] = (*by_replicator, metric, "Sum", 300, 1, 0)
    alarms[f"{sender}-future-versions-clamped"] = (
        emf,
        {"service": "sender"},
        "FutureVersionsClamped",
        "Sum",
        300,
        1,
        0,
    )
    return alarms


@pytest.mark.parametrize("name", ENVS)
def test_alarms_watch_what_says_replication_is_failing(plan, name):
    planned = resources(plan(name, "defaults"))
    alarms = {
        values["alarm_name"]: values
        for address, values in planned.items()
        if inventory.resource_type(address) == "aws_cloudwatch_metric_alarm"
    }
    expected = expected_alarms(name)
    assert sorted(alarms) == sorted(expected)
    for alarm_name, (
        namespace,
        dimensions,
        metric,
        statistic,
        period,
        periods,
        threshold,
    ) in expected.items():
        alarm = alarms[alarm_name]
        assert (alarm["namespace"], alarm["dimensions"], alarm["metric_name"]) == (
            namespace,
            dimensions,
            metric,
        ), alarm_name
        assert (alarm["statistic"], alarm["period"], alarm["evaluation_periods"]) == (
            statistic,
            period,
            periods,
        ), alarm_name
        assert (alarm["threshold"], alarm["comparison_operator"]) == (
            threshold,
            "GreaterThanThreshold",
        ), alarm_name
        # A silent pipeline must fire: only the heartbeat treats no data as breaching.
        missing = "breaching" if alarm_name.endswith("-heartbeat") else "notBreaching"
        assert alarm["treat_missing_data"] == missing, alarm_name


@pytest.mark.parametrize("name", ENVS)
def test_the_dashboard_shows_the_heartbeat_and_refusals(applied, name):
    state = state_resources(applied(name))
    body = json.loads(state["module.node.aws_cloudwatch_dashboard.replication"]["dashboard_body"])
    metrics = {
        widget["properties"]["title"]: [tuple(m[:4]) for m in widget["properties"]["metrics"]]
        for widget in body["widgets"]
    }
    peer = json.loads((REPO / "defaults.json").read_text())["regions"][name]["peer_region"]
    heartbeat = metrics[f"Heartbeat age (ms), {peer} -> {name}"]
    assert heartbeat == [("DynamoDBReplication", "HeartbeatAge", "service", "replicator")]
    refused = {metric for _, metric, _, _ in metrics["Refused and clamped changes"]}
    assert refused == {
        "RejectedUnsigned",
        "RejectedSignature",
        "RejectedOrigin",
        "RejectedVersion",
        "RejectedFutureVersion",
        "FutureVersionsClamped",
    }


@pytest.mark.parametrize("name", ENVS)
def test_a_schedule_sends_the_heartbeat_every_minute(applied, name):
    from replication.outbound import HEARTBEAT_EVENT

    state = state_resources(applied(name))
    rule = state["module.node.aws_cloudwatch_event_rule.heartbeat"]
    target = state["module.node.aws_cloudwatch_event_target.heartbeat"]
    permission = state["module.node.aws_lambda_permission.heartbeat"]
    sender = state['module.node.aws_lambda_function.function["sender"]']
    assert rule["schedule_expression"] == "rate(1 minute)"
    assert target["rule"] == rule["name"]
    assert target["arn"] == sender["arn"]
    assert json.loads(target["input"]) == HEARTBEAT_EVENT
    assert permission["action"] == "lambda:InvokeFunction"
    assert permission["function_name"] == sender["function_name"]
    assert permission["source_arn"] == rule["arn"]
    # events.amazonaws.com in aws-cn too (the provider's aws_service_principal rule).
    assert permission["principal"] == "events.amazonaws.com"


@pytest.mark.parametrize("name", ENVS)
def test_proxy_and_vpc_options(plan, name):
    planned = resources(plan(name, "proxy-vpc"))
    for function in ("sender", "replicator"):
        [vpc] = planned[f'module.node.aws_lambda_function.function["{function}"]']["vpc_config"]
        assert vpc["subnet_ids"] == ["subnet-0a1b2c3d4e5f60001", "subnet-0a1b2c3d4e5f60002"]
        assert vpc["security_group_ids"] == ["sg-0a1b2c3d4e5f60001"]
        attachment = planned[f'module.node.aws_iam_role_policy_attachment.vpc_access["{function}"]']
        assert attachment["policy_arn"] == (
            f"arn:{ENVS[name]}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
        )
    [sender_env] = planned['module.node.aws_lambda_function.function["sender"]']["environment"]
    assert sender_env["variables"]["PEER_PROXY_URL"].startswith("http://")
    assert "module.proxy[0].aws_instance.proxy" in planned
    # An override changes only what it names.
    mapping = planned[f'module.node.aws_lambda_event_source_mapping.stream["sender/{table(name)}"]']
    assert (mapping["batch_size"], mapping["parallelization_factor"]) == (100, 10)


@pytest.mark.parametrize("name", ENVS)
def test_two_tables_share_one_sender_stream_and_replicator(plan, name):
    planned = resources(plan(name, "two-tables"))
    orders = "orders-cn" if name == "cn-north-1" else "orders-sg"
    table_ = planned[f'module.node.aws_dynamodb_table.replicated["{orders}"]']
    assert (table_["hash_key"], table_["range_key"]) == ("customer_id", "order_no")
    assert sorted((a["name"], a["type"]) for a in table_["attribute"]) == [
        ("customer_id", "S"),
        ("order_no", "N"),
    ]
    mappings = [a for a in planned if '.aws_lambda_event_source_mapping.stream["sender/' in a]
    assert len(mappings) == 2
    assert len([a for a in planned if a.startswith("module.node.aws_kinesis_stream.")]) == 1
    [env_] = planned['module.node.aws_lambda_function.function["replicator"]']["environment"]
    assert len(json.loads(env_["variables"]["TABLE_MAP"])) == 2


# ------------------------------------------------------------------------------- IAM, applied


SENDER_ACTIONS = {
    "ReadTheSigningKeys": ["ssm:GetParameter"],
    "ReadTheTablesStreams": [
        "dynamodb:DescribeStream",
        "dynamodb:GetRecords",
        "dynamodb:GetShardIterator",
        "dynamodb:ListStreams",
    ],
    "StampLocalWrites": [
        "dynamodb:DeleteItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
    ],
    "Tombstones": ["dynamodb:BatchGetItem", "dynamodb:PutItem"],
    "ReadThePeersKeys": ["ssm:GetParameters"],
    "ReportFailures": ["sqs:SendMessage"],
    "UseTheNodesKey": ["kms:Decrypt", "kms:GenerateDataKey"],
    "WriteLogs": ["logs:CreateLogStream", "logs:PutLogEvents"],
}
REPLICATOR_ACTIONS = {
    "ReadTheReplicationStream": [
        "kinesis:DescribeStream",
        "kinesis:DescribeStreamSummary",
        "kinesis:GetRecords",
        "kinesis:GetShardIterator",
        "kinesis:ListShards",
        "kinesis:SubscribeToShard",
    ],
    "ApplyChanges": ["dynamodb:DeleteItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
    "CountProgress": ["dynamodb:UpdateItem"],
    "ReadTheSigningKeys": ["ssm:GetParameter"],
    "Tombstones": ["dynamodb:BatchGetItem", "dynamodb:PutItem"],
    "ReportFailures": ["sqs:SendMessage"],
    "UseTheNodesKey": ["kms:Decrypt", "kms:GenerateDataKey"],
    "WriteLogs": ["logs:CreateLogStream", "logs:PutLogEvents"],
}


@pytest.mark.parametrize("name", ENVS)
def test_each_function_may_do_exactly_what_its_code_does(applied, name):
    state = state_resources(applied(name))
    policies = {
        function: state[f'module.node.aws_iam_role_policy.function["{function}"]']["policy"]
        for function in ("sender", "replicator")
    }
    assert policy_actions(policies["sender"]) == SENDER_ACTIONS
    assert policy_actions(policies["replicator"]) == REPLICATOR_ACTIONS
    for policy in policies.values():
        for statement in json.loads(policy)["Statement"]:
            resources_ = statement["Resource"]
            for resource in [resources_] if isinstance(resources_, str) else resources_:
                assert resource != "*"
                assert resource.startswith(f"arn:{ENVS[name]}:")
    sender = json.loads(policies["sender"])["Statement"]
    [keys] = [s for s in sender if s["Sid"] == "ReadThePeersKeys"]
    prefix = json.loads((REPO / "defaults.json").read_text())["regions"][name][
        "peer_credentials_prefix"
    ]
    assert keys["Resource"].endswith(f":parameter{prefix}*")
    # Both read the one parameter holding the signing keys, and no other with GetParameter.
    signing = json.loads((REPO / "defaults.json").read_text())["signing_keys_parameter"]
    for policy in policies.values():
        [ring] = [s for s in json.loads(policy)["Statement"] if s["Sid"] == "ReadTheSigningKeys"]
        assert ring["Resource"] == (f"arn:{ENVS[name]}:ssm:{name}:123456789012:parameter{signing}")


@pytest.mark.parametrize("name", ENVS)
def test_the_peer_writer_may_only_put_records_into_this_stream(applied, name):
    state = state_resources(applied(name))
    policy = state["module.node.aws_iam_group_policy.peer_writer"]["policy"]
    assert policy_actions(policy) == {
        "PutRecordsIntoTheReplicationStream": ["kinesis:PutRecord", "kinesis:PutRecords"],
        "EncryptRecords": ["kms:GenerateDataKey"],
    }
    statements = {s["Sid"]: s for s in json.loads(policy)["Statement"]}
    # The data key only through Kinesis in this region; from any address unless told.
    suffix = "amazonaws.com.cn" if ENVS[name] == "aws-cn" else "amazonaws.com"
    assert statements["EncryptRecords"]["Condition"] == {
        "StringEquals": {"kms:ViaService": f"kinesis.{name}.{suffix}"}
    }
    assert "Condition" not in statements["PutRecordsIntoTheReplicationStream"]
    membership = state["module.node.aws_iam_user_group_membership.peer_writer"]
    assert membership["groups"] == ["ddb-replication-peer-writer"]
    assert not [a for a in state if a.startswith("module.node.aws_iam_user_policy")]


@pytest.mark.parametrize("name", ENVS)
def test_service_principals_are_the_partitions(applied, name):
    state = state_resources(applied(name))
    trust = json.loads(state['module.node.aws_iam_role.function["sender"]']["assume_role_policy"])
    assert trust["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}
    key_policy = json.loads(state["module.node.aws_kms_key.node"]["policy"])
    principals = {s["Sid"]: s["Principal"] for s in key_policy["Statement"]}
    suffix = "amazonaws.com.cn" if ENVS[name] == "aws-cn" else "amazonaws.com"
    assert principals["CloudWatchLogsEncryptsTheFunctionsLogs"] == {
        "Service": f"logs.{name}.{suffix}"
    }
    assert principals["AccountAdministersTheKeyThroughIam"] == {
        "AWS": f"arn:{ENVS[name]}:iam::123456789012:root"
    }


KEY_USE = {
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:GenerateDataKey",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
}


@stand_in_only
def test_named_key_administrators_cannot_use_the_key(terraform, scratch_env):
    admins = '["arn:aws-cn:iam::123456789012:role/KeyAdmins"]'
    result = terraform.run(
        "apply",
        "-auto-approve",
        "-no-color",
        f"-var=kms_key_administrators={admins}",
        cwd=scratch_env,
    )
    assert result.returncode == 0, result.stderr
    state = state_resources(json.loads(terraform.run("show", "-json", cwd=scratch_env).stdout))
    policy = json.loads(state["module.node.aws_kms_key.node"]["policy"])
    statements = {s["Sid"]: s for s in policy["Statement"]}
    actions = {sid: set(policy_actions(json.dumps(policy))[sid]) for sid in statements}
    root = "arn:aws-cn:iam::123456789012:root"
    role_names = [
        state[f'module.node.aws_iam_role.function["{function}"]']["name"]
        for function in ("sender", "replicator")
    ]
    roles = sorted(f"arn:aws-cn:iam::123456789012:role/{role}" for role in role_names)
    writer_user = state["module.node.aws_iam_user.peer_writer"]["name"]

    assert sorted(statements) == [
        "AccountCanRestoreTheKeyPolicy",
        "AccountLetsTheNodesServicesHoldGrants",
        "AccountUsesTheKeyThroughTheNodesServices",
        "CloudWatchAlarmsPublishToTheTopic",
        "CloudWatchLogsEncryptsTheFunctionsLogs",
        "FunctionsUseTheKey",
        "KeyAdministrators",
        "PeerWriterEncryptsRecordsThroughKinesis",
    ]
    # The administrators administer, and use nothing.
    assert statements["KeyAdministrators"]["Principal"] == {
        "AWS": "arn:aws-cn:iam::123456789012:role/KeyAdmins"
    }
    assert {"kms:PutKeyPolicy", "kms:ScheduleKeyDeletion"} <= actions["KeyAdministrators"]
    assert not actions["KeyAdministrators"] & (KEY_USE | {"kms:CreateGrant"})
    assert not [a for a in actions["KeyAdministrators"] if a.endswith("*")]
    # The account keeps only the way back in: reading and replacing the policy.
    assert statements["AccountCanRestoreTheKeyPolicy"]["Principal"] == {"AWS": root}
    assert actions["AccountCanRestoreTheKeyPolicy"] == {
        "kms:DescribeKey",
        "kms:GetKeyPolicy",
        "kms:PutKeyPolicy",
    }
    # Use: the functions by name; the peer writer and the account only through services.
    assert sorted(statements["FunctionsUseTheKey"]["Principal"]["AWS"]) == roles
    writer = statements["PeerWriterEncryptsRecordsThroughKinesis"]
    assert writer["Principal"] == {"AWS": f"arn:aws-cn:iam::123456789012:user/{writer_user}"}
    assert writer["Condition"] == {
        "StringEquals": {"kms:ViaService": "kinesis.cn-north-1.amazonaws.com.cn"}
    }
    through = statements["AccountUsesTheKeyThroughTheNodesServices"]
    assert sorted(through["Condition"]["StringEquals"]["kms:ViaService"]) == sorted(
        f"{service}.cn-north-1.amazonaws.com.cn"
        for service in ("dynamodb", "sqs", "kinesis", "ssm", "ec2")
    )
    grants = statements["AccountLetsTheNodesServicesHoldGrants"]["Condition"]
    assert grants["Bool"] == {"kms:GrantIsForAWSResource": "true"}
    for sid, statement in statements.items():
        if statement["Principal"] == {"AWS": root} and sid != "AccountCanRestoreTheKeyPolicy":
            assert "kms:ViaService" in statement["Condition"]["StringEquals"], sid


@pytest.mark.parametrize(
    "admins",
    ['["KeyAdmins"]', '["arn:aws-cn:iam::123456789012:group/Admins"]', '["arn:aws-cn:s3:::x"]'],
)
def test_key_administrators_must_be_roles_or_users(terraform, scratch_env, admins):
    message = plan_error(terraform, scratch_env, f"-var=kms_key_administrators={admins}")
    assert "kms_key_administrators must be IAM role or user ARNs" in message


@stand_in_only
def test_the_key_survives_a_destroy_unless_removed_on_purpose(terraform, scratch_env):
    applied_ = terraform.run("apply", "-auto-approve", "-no-color", cwd=scratch_env)
    assert applied_.returncode == 0, applied_.stderr
    refused = terraform.run("destroy", "-auto-approve", "-no-color", cwd=scratch_env)
    assert refused.returncode != 0
    message = " ".join(refused.stderr.replace("│", " ").split())
    assert "Instance cannot be destroyed" in message
    assert "module.node.aws_kms_key.node has lifecycle.prevent_destroy set" in message
    # The README's way to uninstall and keep the key: forget it, then destroy the rest.
    forgotten = terraform.run("state", "rm", "module.node.aws_kms_key.node", cwd=scratch_env)
    assert forgotten.returncode == 0, forgotten.stderr
    destroyed = terraform.run("destroy", "-auto-approve", "-no-color", cwd=scratch_env)
    assert destroyed.returncode == 0, destroyed.stderr
    listed = terraform.run("state", "list", cwd=scratch_env)
    assert listed.stdout.strip() == ""


@pytest.mark.parametrize("name", ENVS)
def test_an_unchanged_build_plans_no_change(terraform, applied, name):
    directory = applied(name)["directory"]
    repository = directory.parent.parent
    # Rebuild from the same sources: byte-identical zips, so nothing to do.
    subprocess.run(
        [
            sys.executable,
            str(REPO / "tools" / "build_lambdas.py"),
            "--quiet",
            "--out",
            str(repository / "dist"),
            "--source",
            str(repository / "lambda"),
            "--wheelhouse",
            str(LOCAL_WHEELHOUSE),
        ],
        check=True,
        capture_output=True,
    )
    result = terraform.run("plan", "-detailed-exitcode", "-no-color", cwd=directory)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr


# ------------------------------------------------------------------------------- clear errors


@pytest.fixture
def scratch_env(terraform: Terraform, repository: Path, tmp_path) -> Path:
    """A copy of the repository one test may break, with envs/cn-north-1 initialized."""
    copy = shutil.copytree(repository, tmp_path / "repository")
    directory = copy / "envs" / "cn-north-1"
    result = terraform.run("init", "-no-color", cwd=directory)
    assert result.returncode == 0, result.stderr
    return directory


def plan_error(terraform: Terraform, directory: Path, *args: str) -> str:
    result = terraform.run("plan", "-no-color", *args, cwd=directory)
    assert result.returncode != 0, "the plan should have failed"
    return " ".join(result.stderr.replace("│", " ").split())


def test_a_missing_zip_says_how_to_build_it(terraform, scratch_env):
    (scratch_env.parent.parent / "dist" / "replicator.zip").unlink()
    message = plan_error(terraform, scratch_env)
    assert "../../dist/replicator.zip is missing: run `python tools/build_lambdas.py`." in message


def test_a_stale_zip_names_the_source_that_changed(terraform, scratch_env):
    source = scratch_env.parent.parent / "lambda" / "replication" / "outbound.py"
    source.write_text(source.read_text() + "\n# changed\n")
    message = plan_error(terraform, scratch_env)
    assert (
        "../../dist/sender.zip is stale: replication/outbound.py changed since it was built;"
        " run `python tools/build_lambdas.py`." in message
    )


def test_a_zip_built_for_another_architecture_is_refused(terraform, scratch_env):
    message = plan_error(terraform, scratch_env, "-var", "lambda_architecture=arm64")
    assert "was built for x86_64, not arm64" in message


def test_a_table_map_naming_an_unknown_table_is_refused(terraform, scratch_env):
    message = plan_error(terraform, scratch_env, "-var", 'table_map={"user-sg" = "users"}')
    assert "Every table_map value must be one of this node's tables (user-cn)." in message


def test_signing_settings_can_be_set_from_tfvars(terraform, scratch_env):
    result = terraform.run(
        "plan",
        "-no-color",
        "-out=tfplan",
        "-var=max_clock_skew_seconds=60",
        "-var=accept_unsigned_changes=true",
        "-var=signing_keys_parameter=/Other/Ring",
        cwd=scratch_env,
    )
    assert result.returncode == 0, result.stderr
    planned = json.loads(terraform.run("show", "-json", "tfplan", cwd=scratch_env).stdout)
    functions = {
        r["index"]: r["values"]["environment"][0]["variables"]
        for r in planned["planned_values"]["root_module"]["child_modules"][0]["resources"]
        if r["type"] == "aws_lambda_function"
    }
    for variables in functions.values():
        assert variables["MAX_CLOCK_SKEW_SECONDS"] == "60"
        assert variables["SIGNING_KEYS_PARAMETER"] == "/Other/Ring"
    assert functions["replicator"]["ACCEPT_UNSIGNED_CHANGES"] == "true"


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("max_clock_skew_seconds=0", "max_clock_skew_seconds must be a whole number of seconds"),
        ("max_clock_skew_seconds=1.5", "max_clock_skew_seconds must be a whole number of seconds"),
        ("signing_keys_parameter=SigningKeys", "signing_keys_parameter must be a Parameter Store"),
        ("signing_keys_parameter=/Ring/", "signing_keys_parameter must be a Parameter Store"),
    ],
)
def test_signing_settings_are_validated(terraform, scratch_env, setting, message):
    assert message in plan_error(terraform, scratch_env, f"-var={setting}")


def test_a_failure_age_alarm_after_the_queue_drops_the_message_is_refused(terraform, scratch_env):
    module = scratch_env.parent.parent / "modules" / "replication_node" / "variables.tf"
    text = module.read_text().replace("default     = 604800", "default     = 1209600")
    module.write_text(text)
    message = plan_error(terraform, scratch_env)
    assert "failure_message_age_alarm_seconds must be positive and below" in message


@stand_in_only
def test_the_peer_writer_puts_records_only_from_the_senders_addresses(terraform, scratch_env):
    cidrs = '["54.222.1.2/32", "54.222.3.0/28"]'
    result = terraform.run(
        "apply",
        "-auto-approve",
        "-no-color",
        f"-var=peer_writer_source_cidrs={cidrs}",
        cwd=scratch_env,
    )
    assert result.returncode == 0, result.stderr
    shown = json.loads(terraform.run("show", "-json", cwd=scratch_env).stdout)
    policy = state_resources(shown)["module.node.aws_iam_group_policy.peer_writer"]["policy"]
    statements = {s["Sid"]: s for s in json.loads(policy)["Statement"]}
    assert statements["PutRecordsIntoTheReplicationStream"]["Condition"] == {
        "IpAddress": {"aws:SourceIp": ["54.222.1.2/32", "54.222.3.0/28"]}
    }


@pytest.mark.parametrize(
    ("cidrs", "message"),
    [
        ('["0.0.0.0/0"]', "peer_writer_source_cidrs must not hold 0.0.0.0/0 or ::/0"),
        ('["::/0"]', "peer_writer_source_cidrs must not hold 0.0.0.0/0 or ::/0"),
        ('["54.222.1.2"]', "peer_writer_source_cidrs must be CIDRs"),
    ],
)
def test_pointless_or_malformed_writer_cidrs_are_refused(terraform, scratch_env, cidrs, message):
    assert message in plan_error(terraform, scratch_env, f"-var=peer_writer_source_cidrs={cidrs}")


def test_a_peer_proxy_without_vpc_subnets_is_refused(terraform, scratch_env):
    message = plan_error(terraform, scratch_env, "-var=peer_proxy_url=http://54.222.3.4:3128")
    assert "peer_proxy_url needs vpc_subnet_ids (and vpc_security_group_ids)" in message


def test_a_proxy_open_to_everyone_is_refused_here_too(terraform, scratch_env):
    proxy = (
        '{vpc_id = "vpc-0a1b2c3d4e5f60001", subnet_id = "subnet-0a1b2c3d4e5f60003",'
        ' allowed_source_cidrs = ["0.0.0.0/0"]}'
    )
    message = plan_error(terraform, scratch_env, f"-var=proxy={proxy}")
    assert "allowed_source_cidrs must not include 0.0.0.0/0 or ::/0" in message


def test_vpc_subnets_without_security_groups_are_refused(terraform, scratch_env):
    message = plan_error(terraform, scratch_env, "-var", 'vpc_subnet_ids=["subnet-1"]')
    assert "Set vpc_subnet_ids and vpc_security_group_ids together" in message


# ------------------------------------------------------------------------------- the sources


def test_no_terraform_file_names_a_partition_literally():
    offenders = [
        f"{path.relative_to(REPO)}:{number}"
        for root in ("modules", "envs", "examples")
        for path in sorted((REPO / root).rglob("*.tf"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "arn:aws:" in line
    ]
    assert offenders == [], "build ARNs from data.aws_partition instead"


@pytest.mark.parametrize("name", ENVS)
def test_the_tfvars_example_plans(terraform, env, name):
    example = REPO / "envs" / name / "terraform.tfvars.example"
    directory = Path(env(name).tfdir)
    result = terraform.run(
        "plan", "-no-color", "-var-file", str(example), "-lock=false", cwd=directory
    )
    assert result.returncode == 0, result.stderr


# ------------------------------------------------------------------------------- existing tables


def with_account(terraform: Terraform, directory: Path, tables: dict[str, dict]) -> Terraform:
    """Terraform whose stand-in reads a simulated account holding `tables` in cn-north-1."""
    from tests.terraform.stub_aws_provider import AccountStore

    store = AccountStore(directory.parent.parent / "account.json")
    for name, attributes in tables.items():
        store.put_table("cn-north-1", name, **attributes)
    return dataclasses.replace(terraform, env={**terraform.env, ACCOUNT_STATE_ENV: str(store.path)})


def existing_table(**overrides) -> dict:
    """orders-cn as cn-north-1-existing-tables.account.json has it, with overrides."""
    account = json.loads((SCENARIO_DIR / "cn-north-1-existing-tables.account.json").read_text())
    table = account["dynamodb_tables"]["cn-north-1"]["orders-cn"]
    return {**{k: v for k, v in table.items() if k != "name"}, **overrides}


EXISTING = ('-var=existing_tables=["orders-cn"]', '-var=table_map={"orders-sg" = "orders-cn"}')


@pytest.mark.parametrize("name", ENVS)
def test_existing_tables_are_read_not_managed(plan, name):
    orders = "orders-cn" if name == "cn-north-1" else "orders-sg"
    planned = plan(name, "existing-tables")
    assert f'module.node.aws_dynamodb_table.replicated["{orders}"]' not in resources(planned)
    [read] = [
        r
        for r in planned.prior_state["values"]["root_module"]["child_modules"][0]["resources"]
        if r["address"] == f'module.node.data.aws_dynamodb_table.existing["{orders}"]'
    ]
    mapping = resources(planned)[
        f'module.node.aws_lambda_event_source_mapping.stream["sender/{orders}"]'
    ]
    assert mapping["event_source_arn"] == read["values"]["stream_arn"]
    [env_] = resources(planned)['module.node.aws_lambda_function.function["replicator"]'][
        "environment"
    ]
    assert orders in json.loads(env_["variables"]["TABLE_MAP"]).values()


@pytest.mark.parametrize(
    ("stream", "message"),
    [
        (
            {"stream_enabled": False},
            "Table orders-cn has no stream, and replication reads one with both images: run "
            "`aws dynamodb update-table --table-name orders-cn --stream-specification "
            "StreamEnabled=true,StreamViewType=NEW_AND_OLD_IMAGES`",
        ),
        (
            {"stream_view_type": "KEYS_ONLY"},
            "Table orders-cn's stream is KEYS_ONLY, and replication needs NEW_AND_OLD_IMAGES. A "
            "stream's view type can't change in place: run `aws dynamodb update-table "
            "--table-name orders-cn --stream-specification StreamEnabled=false`",
        ),
        (
            {"stream_view_type": "NEW_IMAGE"},
            "Table orders-cn's stream is NEW_IMAGE, and replication needs NEW_AND_OLD_IMAGES.",
        ),
    ],
)
def test_an_existing_table_without_both_images_fails_the_plan_saying_what_to_run(
    terraform, scratch_env, stream, message
):
    account = with_account(terraform, scratch_env, {"orders-cn": existing_table(**stream)})
    refused = plan_error(account, scratch_env, *EXISTING)
    assert message in refused
    assert "Resource postcondition failed" in refused


def test_an_existing_table_the_account_lacks_fails_the_plan(terraform, scratch_env):
    account = with_account(terraform, scratch_env, {})
    message = plan_error(account, scratch_env, *EXISTING)
    assert "reading Dynamodb Table (orders-cn): couldn't find resource" in message


def test_a_table_both_created_and_existing_is_refused(terraform, scratch_env):
    account = with_account(terraform, scratch_env, {"user-cn": existing_table()})
    message = plan_error(
        account,
        scratch_env,
        '-var=existing_tables=["user-cn"]',
        '-var=tables={"user-cn"={hash_key="PK"}}',
    )
    assert "A table is either created here (tables) or managed elsewhere" in message


@stand_in_only
def test_the_functions_may_use_existing_tables_and_their_key(terraform, scratch_env):
    account = with_account(terraform, scratch_env, {"orders-cn": existing_table()})
    applied_ = account.run("apply", "-auto-approve", "-no-color", *EXISTING, cwd=scratch_env)
    assert applied_.returncode == 0, applied_.stderr
    state = state_resources(json.loads(account.run("show", "-json", cwd=scratch_env).stdout))
    orders = "arn:aws-cn:dynamodb:cn-north-1:123456789012:table/orders-cn"
    [key] = [e["kms_key_arn"] for e in existing_table()["server_side_encryption"]]
    for function, sids in (
        ("sender", ("ReadTheTablesStreams", "StampLocalWrites")),
        ("replicator", ("ApplyChanges",)),
    ):
        policy = state[f'module.node.aws_iam_role_policy.function["{function}"]']["policy"]
        statements = {s["Sid"]: s for s in json.loads(policy)["Statement"]}
        for sid in sids:
            named = statements[sid]["Resource"]
            named = [named] if isinstance(named, str) else named
            wanted = f"{orders}/stream/*" if sid == "ReadTheTablesStreams" else orders
            assert wanted in named, (function, sid)
        assert statements["UseTheExistingTablesKeys"]["Resource"] == key
        assert policy_actions(policy)["UseTheExistingTablesKeys"] == [
            "kms:Decrypt",
            "kms:DescribeKey",
        ]
    # Nothing of the existing table is in the state: Terraform doesn't manage it.
    assert 'module.node.aws_dynamodb_table.replicated["orders-cn"]' not in state


# ------------------------------------------------------------------------------- indexes, imported


def indexed_orders_table() -> dict:
    """orders-cn as it exists in AWS, with the indexes cn-north-1-indexes.tfvars declares, in the
    provider's attribute names: what `terraform import` reads."""
    return {
        "hash_key": "customer_id",
        "range_key": "order_no",
        "attribute": [
            {"name": "customer_id", "type": "S"},
            {"name": "order_no", "type": "N"},
            {"name": "placed_at", "type": "N"},
            {"name": "sku", "type": "S"},
            {"name": "status", "type": "S"},
        ],
        "billing_mode": "PROVISIONED",
        "read_capacity": 10,
        "write_capacity": 5,
        "stream_enabled": True,
        "stream_view_type": "NEW_AND_OLD_IMAGES",
        "global_secondary_index": [
            {
                "name": "by-status",
                "hash_key": "status",
                "range_key": "placed_at",
                "projection_type": "KEYS_ONLY",
                "read_capacity": 5,
                "write_capacity": 2,
            },
            {
                "name": "by-sku",
                "hash_key": "sku",
                "projection_type": "INCLUDE",
                "non_key_attributes": ["quantity", "total"],
                "read_capacity": 5,
                "write_capacity": 2,
            },
        ],
        "local_secondary_index": [
            {"name": "by-placed-at", "range_key": "placed_at", "projection_type": "ALL"}
        ],
    }


ORDERS = 'module.node.aws_dynamodb_table.replicated["orders-cn"]'


def import_and_plan(terraform: Terraform, directory: Path, tfvars: Path) -> dict:
    """README's adoption of an existing table: terraform import, then the plan, as JSON."""
    account = with_account(terraform, directory, {"orders-cn": indexed_orders_table()})
    imported = account.run(
        "import", "-no-color", f"-var-file={tfvars}", ORDERS, "orders-cn", cwd=directory
    )
    assert imported.returncode == 0, imported.stderr
    planned = account.run("plan", "-no-color", f"-var-file={tfvars}", "-out=tfplan", cwd=directory)
    assert planned.returncode == 0, planned.stderr
    shown = json.loads(account.run("show", "-json", "tfplan", cwd=directory).stdout)
    [change] = [c for c in shown["resource_changes"] if c["address"] == ORDERS]
    return change


@stand_in_only
def test_importing_a_table_with_indexes_keeps_every_index(terraform, scratch_env):
    change = import_and_plan(terraform, scratch_env, SCENARIO_DIR / "cn-north-1-indexes.tfvars")
    # Updated in place (the node's encryption key, point-in-time recovery, tags), never replaced,
    # and every index planned exactly as it is.
    assert change["change"]["actions"] == ["update"]
    for index in ("global_secondary_index", "local_secondary_index"):
        assert canonical(change["change"]["before"][index]) == canonical(
            change["change"]["after"][index]
        ), index


@stand_in_only
def test_importing_without_declaring_the_indexes_would_drop_or_replace(terraform, scratch_env):
    """What the indexes in `tables` prevent: the same import with the table declared bare."""
    bare = scratch_env / "bare.tfvars"
    bare.write_text(
        (SCENARIO_DIR / "cn-north-1-indexes.tfvars")
        .read_text()
        .split("    global_secondary_indexes = {")[0]
        + "  }\n}\n"
        + 'table_map = { "user-sg" = "user-cn", "orders-sg" = "orders-cn" }\n'
    )
    change = import_and_plan(terraform, scratch_env, bare)
    assert change["change"]["actions"] == ["delete", "create"]
    assert ["local_secondary_index"] in change["change"]["replace_paths"]
    assert change["change"]["after"]["global_secondary_index"] == []


def canonical(elements: list[dict]) -> list[str]:
    return sorted(json.dumps(e, sort_keys=True) for e in elements)


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        (
            '{t={hash_key="a",local_secondary_indexes={i={range_key="b"}}}}',
            "Local secondary indexes need the table to have a range_key",
        ),
        (
            '{t={hash_key="a",global_secondary_indexes={i={hash_key="a",hash_key_type="N"}}}}',
            "An attribute that keys a table and its indexes has one type",
        ),
        (
            '{t={hash_key="a",global_secondary_indexes={i={hash_key="b",projection_type="INCLUDE"}}}}',
            "non_key_attributes (at least one) go with INCLUDE only",
        ),
        (
            '{t={hash_key="a",billing_mode="PROVISIONED",read_capacity=1,write_capacity=1,'
            'global_secondary_indexes={i={hash_key="b"}}}}',
            "A global secondary index of a PROVISIONED table needs read_capacity",
        ),
    ],
)
def test_indexes_dynamodb_would_refuse_fail_the_plan(terraform, scratch_env, tables, message):
    refused = plan_error(
        terraform, scratch_env, f"-var=tables={tables}", '-var=table_map={"x"="t"}'
    )
    assert message in refused


DOCUMENTED_ADDRESS = re.compile(r"terraform (?:import|state rm) '([^']+)'")
INDEX = re.compile(r'\["([^"]*)"\]$')


def test_every_address_the_docs_import_or_remove_is_one_the_environment_has(applied):
    """A `terraform import` or `state rm` in the pages names a resource the environment
    declares, with a key it uses (a replicated table's key is the user's table name)."""
    held = set(state_resources(applied("cn-north-1")))
    pages = sorted((REPO / "docs").glob("*.md"))
    documented = {a for page in pages for a in DOCUMENTED_ADDRESS.findall(page.read_text())}
    assert documented, "no terraform import or state rm found in docs/"
    for address in sorted(documented):
        key = INDEX.search(address)
        base = address[: key.start()] if key else address
        instances = {a for a in held if a == base or a.startswith(base + "[")}
        assert instances, f"{address}: the environment has no {base}"
        if key and not base.endswith("aws_dynamodb_table.replicated"):
            assert address in held, f"{address}: {base} has no such key ({sorted(instances)})"
