"""tools/signing_keys.py against moto, both regions: one ring written to both, checked,
rotated in two steps that never leave a replicator without the key a sender signs with, and
nothing but key IDs printed."""

from __future__ import annotations

import base64
import json
import shlex

import boto3
import pytest
from botocore.exceptions import ClientError

from replication.signing import BadSignature, KeyRing, SigningKeys
from tools import signing_keys

CHINA, GLOBAL = "cn-north-1", "ap-southeast-1"
PARAMETER = "/DDBReplication/SigningKeys"  # defaults.json's signing_keys_parameter


@pytest.fixture
def ssm(aws):
    """Both regions as Terraform leaves them: the node's key, no ring."""
    clients = {}
    for region in (CHINA, GLOBAL):
        kms = boto3.client("kms", region_name=region)
        key = kms.create_key()["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName="alias/ddb-replication", TargetKeyId=key)
        clients[region] = boto3.client("ssm", region_name=region)
    return clients


class SimulatedTime:
    """Wall time that the tool's waits advance, starting now (as Parameter Store's
    LastModifiedDate does)."""

    def __init__(self) -> None:
        import time

        self.now = time.time()
        self.slept = 0.0
        self.during_sleep: list = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds
        for hook in self.during_sleep:
            hook()


def run(capsys, command: str, *args: str, time_: SimulatedTime | None = None):
    time_ = time_ or SimulatedTime()
    code = signing_keys.main(
        [command, "--region", CHINA, *args], clock=time_.clock, sleep=time_.sleep
    )
    out, err = capsys.readouterr()
    return code, out, err


def ring(ssm, region: str) -> SigningKeys:
    return SigningKeys.parse(
        ssm[region].get_parameter(Name=PARAMETER, WithDecryption=True)["Parameter"]["Value"]
    )


def version(ssm, region: str) -> int | None:
    try:
        return ssm[region].get_parameter(Name=PARAMETER)["Parameter"]["Version"]
    except ClientError:
        return None


def no_secret_in(text: str, *rings: SigningKeys) -> bool:
    return not any(
        base64.b64encode(secret).decode() in text for r in rings for secret in r.keys.values()
    )


def test_init_writes_one_ring_to_both_regions_and_check_agrees(ssm, capsys):
    code, out, err = run(capsys, "init")
    assert code == 0, err
    china, world = ring(ssm, CHINA), ring(ssm, GLOBAL)
    assert china == world and len(china.keys) == 1
    for region in (CHINA, GLOBAL):
        parameter = ssm[region].get_parameter(Name=PARAMETER)["Parameter"]
        assert parameter["Type"] == "SecureString"
    assert f"signs with {china.current}" in out and no_secret_in(out + err, china)

    code, out, _ = run(capsys, "check")
    assert code == 0
    assert out.splitlines() == [
        f"{CHINA}: {PARAMETER} signs with {china.current}",
        f"{GLOBAL}: {PARAMETER} signs with {china.current}",
    ]


def test_init_refuses_where_a_ring_exists_unless_forced(ssm, capsys):
    assert run(capsys, "init")[0] == 0
    before = ring(ssm, CHINA)
    ssm[GLOBAL].delete_parameter(Name=PARAMETER)  # one region has one: still refused

    code, out, err = run(capsys, "init")
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert f"a ring exists already ({CHINA} signs with {before.current})" in err
    assert ring(ssm, CHINA) == before and version(ssm, GLOBAL) is None

    code, out, err = run(capsys, "init", "--force")
    assert code == 0, err
    assert ring(ssm, CHINA) == ring(ssm, GLOBAL) != before
    assert "redrive" in out


def test_rotate_adds_the_key_everywhere_before_anyone_signs_with_it(ssm, capsys):
    assert run(capsys, "init")[0] == 0
    old = ring(ssm, CHINA)
    time_ = SimulatedTime()
    # A replicator in the Global region, whose ring was read just before the rotation, and
    # which keeps it for the functions' 300 s, as deployed.
    replicator = KeyRing(ssm[GLOBAL], PARAMETER, ttl_seconds=300, clock=time_.clock)
    replicator.get()
    during: list[tuple[SigningKeys, SigningKeys]] = []
    time_.during_sleep.append(lambda: during.append((ring(ssm, CHINA), ring(ssm, GLOBAL))))

    code, out, err = run(capsys, "rotate", time_=time_)

    assert code == 0, err
    china, world = ring(ssm, CHINA), ring(ssm, GLOBAL)
    assert china == world
    (new,) = set(china.keys) - set(old.keys)
    assert china.current == new and old.current in china.keys  # changes in flight still verify
    # While waiting, both rings accepted the new key and still signed with the old one.
    assert during and all(a == b and a.current == old.current and new in a.keys for a, b in during)
    assert time_.slept >= 330
    # Whatever China's sender signs from now on, the replicator that read its ring before the
    # rotation verifies: by the time anyone signs with the new key, its cache has expired.
    payload = b'{"change": 1}'
    replicator.verify(payload, china.sign(payload))
    replicator.verify(payload, old.sign(payload))  # and what was signed before, in flight
    lines = out.splitlines()
    assert (
        lines[0] == f"step 1: {CHINA} and {GLOBAL} accept {new}, still signing with {old.current}"
    )
    assert "each caches it for 300 s" in lines[1]
    assert lines[-1] == (
        f"step 2: {CHINA} and {GLOBAL} sign with {new}; {old.current} still verifies changes "
        "in flight"
    )
    assert no_secret_in(out + err, china)


def test_the_ring_keeps_at_most_the_previous_current_and_next_keys(ssm, capsys):
    assert run(capsys, "init")[0] == 0
    first = ring(ssm, CHINA).current
    for _ in range(3):
        assert run(capsys, "rotate", "--wait", "0")[0] == 0
    keys = ring(ssm, CHINA).keys
    assert len(keys) == 3 and first not in keys
    assert ring(ssm, CHINA) == ring(ssm, GLOBAL)


def test_an_interrupted_rotation_carries_on_where_it_stopped(ssm, capsys):
    assert run(capsys, "init")[0] == 0
    old = ring(ssm, CHINA).current
    time_ = SimulatedTime()

    def interrupt() -> None:
        if time_.slept >= 100:
            raise KeyboardInterrupt

    time_.during_sleep.append(interrupt)
    code, _, err = run(capsys, "rotate", time_=time_)
    assert code == 130 and "run the same command again" in err
    half = ring(ssm, CHINA)
    assert half.current == old and len(half.keys) == 2 and half == ring(ssm, GLOBAL)

    code, out, _ = run(capsys, "check")
    assert code == 0 and "rotation under way" in out

    time_.during_sleep.clear()
    time_.slept = 0
    code, out, err = run(capsys, "rotate", time_=time_)
    assert code == 0, err
    assert "step 1 was done already" in out
    assert 200 <= time_.slept <= 240  # only what was left of the 330 s
    done = ring(ssm, CHINA)
    assert done.keys == half.keys and done.current != old and done == ring(ssm, GLOBAL)


def test_a_step_that_reached_one_region_is_found_by_check_and_finished_by_rotate(ssm, capsys):
    assert run(capsys, "init")[0] == 0
    before = ring(ssm, CHINA)
    ahead = before.with_next("k-next", b"n" * 32)
    ssm[CHINA].put_parameter(
        Name=PARAMETER, Value=ahead.to_json(), Type="SecureString", Overwrite=True
    )

    code, out, _ = run(capsys, "check")
    assert code == 1
    assert out.splitlines()[-1] == (
        f"- a rotation stopped half way ({CHINA} is a step ahead of {GLOBAL}): finish it with "
        f"`python tools/signing_keys.py rotate --region {CHINA}`"
    )

    code, out, err = run(capsys, "rotate", "--wait", "0")
    assert code == 0, err
    assert f"copied {CHINA}'s ring to {GLOBAL}" in out
    assert ring(ssm, CHINA) == ring(ssm, GLOBAL) == ahead.promoted("k-next")


@pytest.mark.parametrize(
    ("break_global", "problem"),
    [
        (lambda ssm: ssm.delete_parameter(Name=PARAMETER), f"{GLOBAL} has no ring"),
        (
            lambda ssm: ssm.put_parameter(
                Name=PARAMETER, Value="{not json", Type="SecureString", Overwrite=True
            ),
            f"{GLOBAL} holds a malformed ring",
        ),
    ],
)
def test_check_names_the_region_without_a_good_ring_and_sync_copies_it(
    ssm, capsys, break_global, problem
):
    assert run(capsys, "init")[0] == 0
    break_global(ssm[GLOBAL])

    code, out, _ = run(capsys, "check")
    assert code == 1
    (line,) = [line for line in out.splitlines() if line.startswith("- ")]
    command = f"python tools/signing_keys.py sync --region {CHINA}"
    assert line == f"- {problem}: copy {CHINA}'s with `{command}`"

    code, out, _ = run(capsys, "sync", "--dry-run")
    assert code == 0 and out.startswith("would copy")
    assert run(capsys, "check")[0] == 1

    assert signing_keys.main(shlex.split(command)[2:]) == 0
    assert ring(ssm, CHINA) == ring(ssm, GLOBAL)
    assert run(capsys, "check")[0] == 0


def test_check_of_two_unrelated_rings_and_of_none(ssm, capsys):
    code, out, _ = run(capsys, "check")
    assert code == 1
    assert out.splitlines()[-1] == (
        "- neither region holds a valid ring: run `python tools/signing_keys.py init "
        f"--region {CHINA}`"
    )
    for region in (CHINA, GLOBAL):
        ssm[region].put_parameter(
            Name=PARAMETER, Value=SigningKeys.generate().to_json(), Type="SecureString"
        )
    code, out, _ = run(capsys, "check")
    assert code == 1 and "the regions hold different rings" in out
    code, _, err = run(capsys, "rotate")
    assert code == 1 and "the regions hold different rings" in err


def test_dry_runs_change_nothing(ssm, capsys):
    code, out, _ = run(capsys, "init", "--dry-run")
    assert code == 0 and out.startswith(f"would write a new ring to {CHINA} and {GLOBAL}")
    assert version(ssm, CHINA) is None and version(ssm, GLOBAL) is None

    assert run(capsys, "init")[0] == 0
    time_ = SimulatedTime()
    code, out, _ = run(capsys, "rotate", "--dry-run", time_=time_)
    assert code == 0 and out.startswith("would add ")
    assert version(ssm, CHINA) == version(ssm, GLOBAL) == 1 and time_.slept == 0


def test_options_name_both_sides_and_bad_ones_are_one_line(ssm, capsys):
    code = signing_keys.main(["check", "--region", "eu-west-1"])
    assert code == 2 and "pass --peer-region" in capsys.readouterr().err
    code = signing_keys.main(["rotate", "--region", CHINA, "--wait", "-1"])
    assert code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("signing_keys.py: error:")


def test_a_failed_write_in_the_second_region_leaves_the_first_as_it_was(ssm, capsys, monkeypatch):
    real_session = signing_keys._session

    def session(region, profile):
        made = real_session(region, profile)
        if region == GLOBAL:
            real_client = made.client

            def client(*args, **kwargs):
                ssm_client = real_client(*args, **kwargs)

                def refuse(**_):
                    raise ClientError({"Error": {"Code": "AccessDeniedException"}}, "PutParameter")

                ssm_client.meta.events.register("provide-client-params.ssm.PutParameter", refuse)
                return ssm_client

            made.client = client
        return made

    monkeypatch.setattr(signing_keys, "_session", session)
    code, _, err = run(capsys, "init")
    assert code == 1 and f"cannot write {PARAMETER} in {GLOBAL}" in err
    assert version(ssm, CHINA) is None  # taken back: the regions still agree


def test_the_ring_format_is_the_engines(ssm, capsys):
    assert run(capsys, "init")[0] == 0
    text = ssm[CHINA].get_parameter(Name=PARAMETER, WithDecryption=True)["Parameter"]["Value"]
    document = json.loads(text)
    assert set(document) == {"current", "keys"}
    keys = KeyRing(ssm[CHINA], PARAMETER, ttl_seconds=300)
    payload = b"x"
    keys.verify(payload, ring(ssm, GLOBAL).sign(payload))
    with pytest.raises(BadSignature):
        keys.verify(payload, SigningKeys.generate("other").sign(payload))


def test_remove_deletes_the_ring_in_both_regions_and_again_is_not_an_error(ssm, capsys):
    assert run(capsys, "init")[0] == 0
    ssm[CHINA].put_parameter(Name="/DDBReplication/Other", Value="x", Type="String")

    code, out, err = run(capsys, "remove", "--dry-run")
    assert code == 0, err
    assert out.splitlines() == [
        f"would delete {PARAMETER} in {CHINA}",
        f"would delete {PARAMETER} in {GLOBAL}",
    ]
    assert version(ssm, CHINA) == version(ssm, GLOBAL) == 1

    code, out, err = run(capsys, "remove")
    assert code == 0, err
    assert out.splitlines() == [
        f"deleted {PARAMETER} in {CHINA}",
        f"deleted {PARAMETER} in {GLOBAL}",
    ]
    assert version(ssm, CHINA) is None and version(ssm, GLOBAL) is None
    assert ssm[CHINA].get_parameter(Name="/DDBReplication/Other")["Parameter"]["Value"] == "x"

    code, out, err = run(capsys, "remove")
    assert code == 0, err
    assert out.splitlines() == [
        f"{CHINA} holds no {PARAMETER}: nothing to delete",
        f"{GLOBAL} holds no {PARAMETER}: nothing to delete",
    ]
