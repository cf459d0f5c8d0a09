"""tools/peer_keys.py against moto: the peer's keys stored where the sender reads them (the
parameters created by the tool, or over an old deployment's placeholder), rotated in one
command, and nothing secret printed."""

from __future__ import annotations

import io
import json
import shlex

import boto3
import pytest
from botocore.exceptions import ClientError

from replication.peer import PeerCredentials, PeerStream
from replication.settings import SenderSettings
from tools import peer_keys

REGION, PEER = "cn-north-1", "ap-southeast-1"
PREFIX = "/DDBReplication/TableSG/"  # defaults.json's peer_credentials_prefix for cn-north-1
PEER_STREAM = "ddb_replication_stream_sg"
USER = "ddb-replication-peer-writer"
KEYS = {"AccessKey": {"AccessKeyId": "AKIAPEERWRITER000001", "SecretAccessKey": "s3cr3t/" * 6}}


class Stdin(io.StringIO):
    def isatty(self) -> bool:
        return False


@pytest.fixture
def ssm(aws):
    """Cn-north-1 as `terraform apply` leaves it: the node's key, and no parameters."""
    kms = boto3.client("kms", region_name=REGION)
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/ddb-replication", TargetKeyId=key)
    return boto3.client("ssm", region_name=REGION)


@pytest.fixture
def placeholders(ssm):
    """What an older release's Terraform left: placeholders the tool overwrites."""
    for part in ("AccessKey", "SecretKey"):
        ssm.put_parameter(
            Name=f"{PREFIX}{part}",
            Value="unset: run tools/peer_keys.py",
            Type="SecureString",
            KeyId="alias/ddb-replication",
        )
    return ssm


def run(capsys, *args: str, stdin: str = "") -> tuple[int, str, str]:
    code = peer_keys.main(["--region", REGION, *args], stdin=Stdin(stdin))
    out, err = capsys.readouterr()
    return code, out, err


def test_check_reports_an_old_deployments_placeholder_until_keys_are_stored(placeholders, capsys):
    code, out, _ = run(capsys, "--check")
    assert code == 1
    assert out.splitlines() == [
        f"{PREFIX}AccessKey: placeholder",
        f"{PREFIX}SecretKey: placeholder",
    ]


def test_the_create_access_key_json_is_stored_where_the_sender_reads_it(placeholders, capsys):
    ssm = placeholders
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


def test_the_tool_creates_the_parameters_terraform_no_longer_does(ssm, capsys):
    code, out, _ = run(capsys, stdin=json.dumps(KEYS))
    assert code == 0 and "version 1" in out
    for part in ("AccessKey", "SecretKey"):
        assert ssm.get_parameter(Name=f"{PREFIX}{part}")["Parameter"]["Type"] == "SecureString"
    assert PeerCredentials(ssm, PREFIX, ttl_seconds=300).get()[0] == "AKIAPEERWRITER000001"


def test_dry_run_validates_and_stores_nothing(placeholders, capsys):
    code, out, _ = run(capsys, "--dry-run", stdin=json.dumps(KEYS))
    assert (code, out.strip()) == (0, f"would store AKIA…0001 under {PREFIX} in {REGION}")
    assert placeholders.get_parameter(Name=f"{PREFIX}AccessKey")["Parameter"]["Version"] == 1


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
def test_bad_input_is_one_clear_line_and_stores_nothing(placeholders, capsys, stdin, message):
    code, out, err = run(capsys, stdin=stdin)
    assert code == 1
    assert err.startswith("peer_keys.py: error: ") and message in err
    assert len(err.strip().splitlines()) == 1
    assert placeholders.get_parameter(Name=f"{PREFIX}AccessKey")["Parameter"]["Version"] == 1


def test_a_region_defaults_json_does_not_know_needs_a_prefix(aws, capsys):
    code = peer_keys.main(["--region", "eu-west-1", "--check"], stdin=Stdin())
    assert code == 2
    assert "pass --prefix" in capsys.readouterr().err


def test_a_missing_parameter_is_reported(aws, capsys):
    code, out, _ = run(capsys, "--check")
    assert code == 1
    assert f"{PREFIX}AccessKey: missing" in out


# -- rotate ---------------------------------------------------------------------------------------
#
# IAM's record of a key's last use is what proves the sender has moved to the new key. moto keeps
# that record itself: every request it serves marks the signing key as used (its
# mark_account_as_visited), as IAM does. So the sender below is the real sender's code for
# reaching the peer (PeerCredentials re-reading the parameters when their TTL runs out,
# PeerStream signing PutRecords with whatever they hold), against a Kinesis stream in moto;
# nothing writes LastUsedDate by hand. Time is simulated: the rotation's waits advance a clock
# that both the sender's key cache and its minutely heartbeat follow.


class SimulatedTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.ticks: list = []  # called with the time after each advance

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        end = self.now + seconds
        while self.now < end:  # in steps of at most a minute, so the sender ships each one
            self.now = min(end, self.now + 60)
            for tick in self.ticks:
                tick(self.now)


class Sender:
    """Cn-north-1's sender as far as the peer's keys go: it ships a heartbeat every minute with
    the keys it has cached (re-read every 300 s), as the deployed function does."""

    def __init__(self, ssm, time: SimulatedTime):
        settings = SenderSettings(
            region=REGION,
            peer_region=PEER,
            peer_stream=PEER_STREAM,
            peer_credentials_prefix=PREFIX,
            tombstone_table="replication_tombstones",
            failure_queue_url="unused",
        )
        self.credentials = PeerCredentials(ssm, PREFIX, ttl_seconds=300, clock=time.clock)
        self.stream = PeerStream(settings, self.credentials)
        self.running = True
        self.shipped_with: list[str] = []
        self.ship()

    def ship(self, now: float = 0.0) -> None:
        if self.running:
            self.stream.put_records([{"Data": b"heartbeat", "PartitionKey": "heartbeat"}])
            self.shipped_with.append(self.credentials.get()[0])


@pytest.fixture
def accounts(ssm):
    """Both accounts after the first key exchange: the writer user in ap-southeast-1's account
    with one key, stored in cn-north-1, and cn-north-1's sender using it."""
    iam = boto3.client("iam", region_name=PEER)
    iam.create_user(UserName=USER)
    boto3.client("kinesis", region_name=PEER).create_stream(StreamName=PEER_STREAM, ShardCount=1)
    first = iam.create_access_key(UserName=USER)
    stdin = Stdin(json.dumps(first, default=str))  # as `aws iam create-access-key` prints it
    assert peer_keys.main(["--region", REGION, "--quiet"], stdin=stdin) == 0
    return iam, first["AccessKey"]["AccessKeyId"]


@pytest.fixture
def time_(accounts, ssm):
    simulated = SimulatedTime()
    simulated.sender = Sender(ssm, simulated)
    simulated.ticks.append(simulated.sender.ship)
    return simulated


def user_keys(iam) -> set[str]:
    return {k["AccessKeyId"] for k in iam.list_access_keys(UserName=USER)["AccessKeyMetadata"]}


def stored_key(ssm) -> str:
    return PeerCredentials(ssm, PREFIX, ttl_seconds=0).get()[0]


def rotate(capsys, time_, *args: str) -> tuple[int, str, str]:
    code = peer_keys.main(
        ["rotate", "--region", REGION, *args],
        clock=time_.clock,
        sleep=time_.sleep,
    )
    out, err = capsys.readouterr()
    return code, out, err


def test_rotate_stores_a_new_key_waits_until_the_sender_uses_it_then_deletes_the_old_one(
    accounts, ssm, time_, capsys
):
    iam, old = accounts
    seen_before_use = []
    time_.ticks.append(lambda now: seen_before_use.append((now, user_keys(iam))))

    code, out, err = rotate(capsys, time_)

    assert code == 0, err
    (new,) = user_keys(iam)
    assert new != old and stored_key(ssm) == new
    assert ssm.get_parameter(Name=f"{PREFIX}AccessKey")["Parameter"]["Type"] == "SecureString"
    # The sender kept its cached old key until it re-read the parameters, 300 s on; the old key
    # was deleted only after that, once IAM had seen the new one used.
    assert time_.sender.shipped_with[0] == old and time_.sender.shipped_with[-1] == new
    assert time_.now >= 300
    assert all(old in keys for now, keys in seen_before_use if now < 300)
    lines = out.splitlines()
    assert lines[0] == f"created {peer_keys.masked(new)} for {USER}"
    assert "reads its keys again every 5 minutes" in out
    assert lines[-1] == f"deleted {peer_keys.masked(old)}; {USER} has {peer_keys.masked(new)}"
    assert new not in out + err and old not in out + err  # masked, always


def test_rotate_refuses_when_the_user_has_two_keys_and_names_the_one_to_delete(
    accounts, ssm, time_, capsys
):
    iam, stored = accounts
    spare = iam.create_access_key(UserName=USER)["AccessKey"]["AccessKeyId"]
    version = ssm.get_parameter(Name=f"{PREFIX}AccessKey")["Parameter"]["Version"]

    code, out, err = rotate(capsys, time_)

    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert f"delete {peer_keys.masked(spare)}, the one {REGION} does not store" in err
    assert f"retire --region {REGION} --old-key-id {peer_keys.masked(spare)}" in err
    assert user_keys(iam) == {stored, spare}
    assert ssm.get_parameter(Name=f"{PREFIX}AccessKey")["Parameter"]["Version"] == version


def test_a_failed_store_deletes_the_new_key_and_puts_the_old_one_back(
    accounts, ssm, time_, capsys, monkeypatch
):
    iam, old = accounts
    old_secret = PeerCredentials(ssm, PREFIX, ttl_seconds=0).get()[1]
    real_client = peer_keys.ssm_client

    def failing_ssm(*args, **kwargs):
        """Parameter Store that takes the access key ID, then refuses the secret."""
        client = real_client(*args, **kwargs)

        def refuse(params, **_):
            if params["Name"].endswith("SecretKey") and params.get("Value") != old_secret:
                raise ClientError({"Error": {"Code": "AccessDeniedException"}}, "PutParameter")

        client.meta.events.register("provide-client-params.ssm.PutParameter", refuse)
        return client

    monkeypatch.setattr(peer_keys, "ssm_client", failing_ssm)

    code, out, err = rotate(capsys, time_)

    assert code == 1
    assert len(err.strip().splitlines()) == 1
    assert "could not store" in err and "deleted it again" in err
    assert user_keys(iam) == {old}
    assert PeerCredentials(ssm, PREFIX, ttl_seconds=0).get() == (old, old_secret)
    assert old_secret not in out + err


def test_when_the_wait_runs_out_both_keys_stay_and_the_printed_command_finishes_later(
    accounts, ssm, time_, capsys
):
    iam, old = accounts
    time_.sender.running = False  # the sender isn't shipping (say, the link is down)

    code, out, err = rotate(capsys, time_, "--wait", "120")

    assert code == 1
    (message,) = err.strip().splitlines()
    assert "has not used" in message and "within 120 s" in message
    new = stored_key(ssm)
    assert user_keys(iam) == {old, new}
    command = shlex.split(message.split("finish with: ")[1])
    assert command[:3] == ["python", "tools/peer_keys.py", "retire"]
    assert command[-2:] == ["--old-key-id", peer_keys.masked(old)]

    # Run too early, it still keeps the old key.
    code = peer_keys.main(command[2:], clock=time_.clock, sleep=time_.sleep)
    assert code == 1 and "has not used" in capsys.readouterr().err
    assert user_keys(iam) == {old, new}

    time_.sender.running = True
    time_.sleep(300)  # the sender re-reads its keys and ships with the new one
    code = peer_keys.main(command[2:], clock=time_.clock, sleep=time_.sleep)
    out, err = capsys.readouterr()
    assert code == 0, err
    assert user_keys(iam) == {new}
    assert f"deleted {peer_keys.masked(old)}" in out


def test_retire_never_deletes_the_stored_key(accounts, ssm, time_, capsys):
    iam, stored = accounts
    iam.create_access_key(UserName=USER)
    code = peer_keys.main(["retire", "--region", REGION, "--old-key-id", stored])
    assert code == 1
    assert "is the key cn-north-1's sender uses" in capsys.readouterr().err
    assert stored in user_keys(iam) and len(user_keys(iam)) == 2


def test_rotate_dry_run_changes_nothing(accounts, ssm, time_, capsys):
    iam, old = accounts
    version = ssm.get_parameter(Name=f"{PREFIX}AccessKey")["Parameter"]["Version"]

    code, out, _ = rotate(capsys, time_, "--dry-run")

    assert code == 0
    assert out.strip() == (
        f"would create a key for {USER}, store it under {PREFIX} in {REGION}, wait for "
        f"{REGION}'s sender to use it, then delete {peer_keys.masked(old)}"
    )
    assert user_keys(iam) == {old}
    assert ssm.get_parameter(Name=f"{PREFIX}AccessKey")["Parameter"]["Version"] == version
    assert time_.now == 0


def test_rotate_with_nothing_stored_yet_is_the_first_key_exchange(ssm, capsys):
    iam = boto3.client("iam", region_name=PEER)
    iam.create_user(UserName=USER)

    code = peer_keys.main(["rotate", "--region", REGION], sleep=pytest.fail)
    out, err = capsys.readouterr()

    assert code == 0, err
    (key,) = user_keys(iam)
    assert stored_key(ssm) == key
    assert out.splitlines()[-1] == f"{REGION} stored no key of {USER} before: nothing to delete"


# -- create ----------------------------------------------------------------------------------------
#
# The key is made through the IAM API in the peer account (moto's IAM, in the peer's region), so no
# CLI output format is involved; what the sender reads afterwards is checked with its own code.


@pytest.fixture
def writer(ssm):
    """The peer account right after `terraform apply`: the writer user, with no key yet."""
    iam = boto3.client("iam", region_name=PEER)
    iam.create_user(UserName=USER)
    return iam


def create(capsys, *args: str) -> tuple[int, str, str]:
    code = peer_keys.main(["create", "--region", REGION, *args], sleep=pytest.fail)
    out, err = capsys.readouterr()
    return code, out, err


def test_create_makes_the_key_in_the_peer_account_stores_and_checks_it(writer, ssm, capsys):
    code, out, err = create(capsys)

    assert code == 0, err
    (key,) = user_keys(writer)
    secret = PeerCredentials(ssm, PREFIX, ttl_seconds=0).get()
    assert secret[0] == key and len(secret[1]) >= 16
    for part in ("AccessKey", "SecretKey"):
        assert ssm.get_parameter(Name=f"{PREFIX}{part}")["Parameter"]["Type"] == "SecureString"
    lines = out.splitlines()
    assert lines[0] == f"created {peer_keys.masked(key)} for {USER}"
    assert lines[-1].startswith(f"checked: {PREFIX} in {REGION} holds {peer_keys.masked(key)}")
    assert key not in out + err and secret[1] not in out + err


def test_create_refuses_when_a_working_key_is_stored_and_names_rotate(writer, ssm, capsys):
    assert create(capsys)[0] == 0
    (key,) = user_keys(writer)
    version = ssm.get_parameter(Name=f"{PREFIX}AccessKey")["Parameter"]["Version"]

    code, out, err = create(capsys)

    assert code == 1 and out == ""
    (line,) = err.strip().splitlines()
    assert f"already stores {peer_keys.masked(key)}" in line
    assert f"peer_keys.py rotate --region {REGION}" in line and "--replace" in line
    assert user_keys(writer) == {key}
    assert ssm.get_parameter(Name=f"{PREFIX}AccessKey")["Parameter"]["Version"] == version


def test_create_replace_stores_a_new_key_and_leaves_the_old_one_for_retire(writer, ssm, capsys):
    assert create(capsys)[0] == 0
    (old,) = user_keys(writer)

    code, out, err = create(capsys, "--replace")

    assert code == 0, err
    new = stored_key(ssm)
    assert new != old and user_keys(writer) == {old, new}
    assert f"retire --region {REGION} --old-key-id {peer_keys.masked(old)}" in out


def test_create_refuses_at_iams_limit_of_two_keys_naming_retire(writer, ssm, capsys):
    assert create(capsys)[0] == 0
    (stored,) = user_keys(writer)
    spare = writer.create_access_key(UserName=USER)["AccessKey"]["AccessKeyId"]

    code, out, err = create(capsys, "--replace")

    assert code == 1 and out == ""
    (line,) = err.strip().splitlines()
    assert "two access keys" in line and "IAM's limit" in line
    assert f"retire --region {REGION} --old-key-id {peer_keys.masked(spare)}" in line
    assert "peer_keys.py rotate" in line
    assert user_keys(writer) == {stored, spare}


def test_create_at_the_limit_with_nothing_stored_names_remove(writer, ssm, capsys):
    for _ in range(2):
        writer.create_access_key(UserName=USER)

    code, _, err = create(capsys)

    assert code == 1
    assert "stores neither" in err and f"peer_keys.py remove --region {REGION}" in err
    assert len(user_keys(writer)) == 2


def test_create_deletes_the_new_key_when_storing_fails(writer, ssm, capsys, monkeypatch):
    real_client = peer_keys.ssm_client

    def failing_ssm(*args, **kwargs):
        """Parameter Store that takes the access key ID, then refuses the secret."""
        client = real_client(*args, **kwargs)

        def refuse(params, **_):
            if params["Name"].endswith("SecretKey"):
                raise ClientError({"Error": {"Code": "AccessDeniedException"}}, "PutParameter")

        client.meta.events.register("provide-client-params.ssm.PutParameter", refuse)
        return client

    monkeypatch.setattr(peer_keys, "ssm_client", failing_ssm)

    code, out, err = create(capsys)

    assert code == 1
    (line,) = err.strip().splitlines()
    assert "could not store" in line and "deleted it again" in line
    assert user_keys(writer) == set()  # no orphan in IAM
    assert peer_keys.check(ssm, PREFIX) == {"AccessKey": "missing", "SecretKey": "missing"}


def test_create_dry_run_changes_nothing(writer, ssm, capsys):
    code, out, _ = create(capsys, "--dry-run")
    assert code == 0
    assert out.strip() == (
        f"would create a key for {USER}, store it under {PREFIX} in {REGION} and check it"
    )
    assert user_keys(writer) == set()
    assert peer_keys.check(ssm, PREFIX)["AccessKey"] == "missing"


# -- stdin in the wrong output format -------------------------------------------------------------
#
# What `aws iam create-access-key` prints with a profile whose output is text, table or yaml (the
# columns alphabetical, as the CLI orders them). The key exists in IAM by then; the error must say
# so, and the command it gives must delete exactly that key.


def cli_output(form: str, key_id: str, secret: str) -> str:
    date = "2024-05-01T10:00:00+00:00"
    if form == "text":
        return f"ACCESSKEY\t{key_id}\t{date}\t{secret}\tActive\t{USER}\n"
    if form == "yaml":
        return (
            f"AccessKey:\n  AccessKeyId: {key_id}\n  CreateDate: '{date}'\n"
            f"  SecretAccessKey: {secret}\n  Status: Active\n  UserName: {USER}\n"
        )
    row = f"||  {key_id}  |  {date}  |  {secret}  |  Active  |  {USER}  ||"
    rule = "|+" + "-" * (len(row) - 4) + "+|"
    header = "||  AccessKeyId  |  CreateDate  |  SecretAccessKey  |  Status  |  UserName  ||"
    return "\n".join(["-" * len(row), "|" + " CreateAccessKey ".center(len(row) - 2) + "|", rule,
                      header, rule, row, rule]) + "\n"  # fmt: skip


@pytest.mark.parametrize("form", ["text", "table", "yaml"])
def test_non_json_output_names_the_created_key_and_the_command_that_deletes_it(
    writer, ssm, capsys, form
):
    created = writer.create_access_key(UserName=USER)["AccessKey"]
    key_id, secret = created["AccessKeyId"], created["SecretAccessKey"]

    code, out, err = run(capsys, stdin=cli_output(form, key_id, secret))

    assert code == 1 and out == ""
    (line,) = err.strip().splitlines()
    assert "--output json" in line and peer_keys.masked(key_id) in line
    assert "was created" in line and secret not in line
    assert peer_keys.check(ssm, PREFIX)["AccessKey"] == "missing"
    # The printed command, run with the peer's credentials, deletes that key and no other.
    command = shlex.split(line.split("delete it with `")[1].split("`")[0])
    assert command[:3] == ["aws", "iam", "delete-access-key"]
    options = dict(zip(command[3::2], command[4::2], strict=True))
    assert options["--user-name"] == USER and options["--access-key-id"] == key_id
    writer.delete_access_key(UserName=options["--user-name"], AccessKeyId=key_id)
    assert user_keys(writer) == set()


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        ("", "stdin is empty"),
        ("An error occurred (NoSuchEntity)\n", "--output json"),
    ],
)
def test_stdin_without_a_key_says_how_to_get_json(placeholders, capsys, stdin, message):
    code, _, err = run(capsys, stdin=stdin)
    assert code == 1 and message in err and "was created" not in err
    assert len(err.strip().splitlines()) == 1


# -- remove ----------------------------------------------------------------------------------------


def test_remove_deletes_the_parameters_and_only_the_writer_users_keys(writer, ssm, capsys):
    assert create(capsys)[0] == 0
    (stored,) = user_keys(writer)
    spare = writer.create_access_key(UserName=USER)["AccessKey"]["AccessKeyId"]
    writer.create_user(UserName="someone-else")
    theirs = writer.create_access_key(UserName="someone-else")["AccessKey"]["AccessKeyId"]

    code, out, err = (
        peer_keys.main(["remove", "--region", REGION, "--dry-run"]),
        *capsys.readouterr(),
    )
    assert code == 0, err
    assert f"would delete {PREFIX}AccessKey and {PREFIX}SecretKey in {REGION}" in out
    assert user_keys(writer) == {stored, spare}
    assert peer_keys.check(ssm, PREFIX)["SecretKey"] == "set"

    code = peer_keys.main(["remove", "--region", REGION])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.splitlines() == [
        f"deleted {PREFIX}AccessKey and {PREFIX}SecretKey in {REGION}",
        f"deleted {peer_keys.masked(stored)} and {peer_keys.masked(spare)}, the access keys of "
        f"{USER} in the peer account",
    ]
    assert stored not in out and spare not in out
    assert user_keys(writer) == set()
    assert peer_keys.check(ssm, PREFIX) == {"AccessKey": "missing", "SecretKey": "missing"}
    others = writer.list_access_keys(UserName="someone-else")["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in others] == [theirs]

    # Again: nothing left, which is not an error.
    code = peer_keys.main(["remove", "--region", REGION])
    out, _ = capsys.readouterr()
    assert code == 0
    assert out.splitlines() == [
        f"{REGION} holds no parameters under {PREFIX}: nothing to delete",
        f"{USER} has no access keys: nothing to delete",
    ]


def test_remove_after_the_peer_was_destroyed(ssm, capsys):
    code = peer_keys.main(["remove", "--region", REGION])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"{USER} does not exist in the peer account" in out
