"""The peer account's writer keys, where this region's sender reads them: create, store, check,
rotate, remove.

    python tools/peer_keys.py create --region cn-north-1 --profile china --peer-profile global
    python tools/peer_keys.py --region cn-north-1 --profile china --check
    python tools/peer_keys.py rotate --region cn-north-1 --profile china --peer-profile global
    python tools/peer_keys.py remove --region cn-north-1 --profile china --peer-profile global

The keys live in this region's Parameter Store as the SecureStrings <prefix>AccessKey and
<prefix>SecretKey, encrypted with the node's key (alias/ddb-replication). This tool owns their
values: it creates the parameters the first time and overwrites them after (Terraform creates
neither, so no secret reaches its state). The prefix defaults to the region's
peer_credentials_prefix in defaults.json. Nothing secret is printed, and key IDs are masked.
The sender reads the keys again every PEER_CREDENTIALS_TTL_SECONDS (300 s), and at once if the
peer rejects the ones it has.

`create` makes the writer user's key in the peer account itself (the IAM API's answer, so no
CLI output format can lose the secret), stores it here and reads it back. If storing fails it
deletes the key again. It refuses when the user has two keys (IAM's limit) and, unless
--replace, when this region already stores one of the user's keys (that is `rotate`'s job).

Without a command, the key pair is read from stdin: the JSON `aws iam create-access-key
--output json` prints, or, at a terminal, typed in (the secret without echo). Anything else is
refused; if it holds a key ID (the CLI's text, table or yaml output), the error says the key
was created and gives the command that deletes it. --check reads the parameters back and exits
1 unless both hold a key.

`rotate` does a whole rotation with both accounts' credentials: it creates a new key for the
writer user in the peer account (refusing if the user has two already), stores it here (and
deletes it again if that fails), waits until the sender has used it (the key's last-used time
in IAM, after its creation), then deletes the key that was stored before. If the wait runs
out, both keys are kept and it prints the `retire` command that finishes the job later.

`remove`, for uninstalling, deletes this region's two parameters and every access key of the
writer user in the peer account (Terraform can't delete a user that has keys). Nothing left to
remove is not an error.
"""

from __future__ import annotations

import argparse
import getpass
import json
import re
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

import boto3
from botocore.exceptions import BotoCoreError, ClientError, ProfileNotFound
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from deployment.names import region_names
from replication.peer import UNSET_MARK
from tools import cli

PROG = "peer_keys.py"
PARTS = ("AccessKey", "SecretKey")
DEFAULT_KMS_KEY = "alias/ddb-replication"
DEFAULT_USER = "ddb-replication-peer-writer"
ACCESS_KEY_ID = re.compile(r"^[A-Z0-9]{16,128}$")
MASKED_KEY_ID = re.compile(r"^([A-Z0-9]{4})(?:…|\.\.\.)([A-Z0-9]{4})$")
# An IAM user's key ID wherever the CLI's text, table or yaml output puts it.
USER_KEY_ID = re.compile(r"(?<![A-Z0-9])(AKIA[A-Z0-9]{12,124})(?![A-Z0-9])")
IAM_USER_NAME = re.compile(r"^[\w+=,.@-]{1,64}$")
COMMANDS = ("create", "rotate", "retire", "remove")
MAX_KEYS_PER_USER = 2  # IAM's limit
DEFAULT_WAIT_S = 1800
SENDER_REREAD_S = 300  # the sender's PEER_CREDENTIALS_TTL_SECONDS, by default
# How often the key's last use is asked for while waiting: soon at first, then every minute.
FIRST_POLL_S, MAX_POLL_S = 5.0, 60.0


class KeysError(Exception):
    """The keys could not be read, stored, rotated or checked: exit 1, one line."""


@dataclass(frozen=True)
class KeyPair:
    access_key_id: str
    secret_access_key: str

    def __post_init__(self) -> None:
        if not ACCESS_KEY_ID.match(self.access_key_id):
            raise KeysError(
                f"{masked(self.access_key_id)!r} is not an access key ID (like AKIA... in capitals)"
            )
        if len(self.secret_access_key) < 16 or any(c.isspace() for c in self.secret_access_key):
            raise KeysError("the secret access key is too short or contains whitespace")


def masked(access_key_id: str) -> str:
    """Enough of a key ID to recognise it, as the console shows it."""
    return access_key_id[:4] + "…" + access_key_id[-4:] if len(access_key_id) > 8 else "…"


def parse_key_pair(text: str) -> KeyPair:
    """The pair from `aws iam create-access-key`'s JSON (or its AccessKey object alone)."""
    if not text.strip():
        raise KeysError(
            "stdin is empty: `aws iam create-access-key` printed nothing (its error, if it "
            f"failed, is above); or let `{PROG} create` make the key"
        )
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise KeysError(not_json(text, error.msg)) from None
    key = document.get("AccessKey", document) if isinstance(document, dict) else None
    if not isinstance(key, dict) or not {"AccessKeyId", "SecretAccessKey"} <= key.keys():
        raise KeysError("stdin has no AccessKey.AccessKeyId and AccessKey.SecretAccessKey")
    return KeyPair(str(key["AccessKeyId"]).strip(), str(key["SecretAccessKey"]).strip())


def not_json(text: str, why: str) -> str:
    """Why stdin was refused. The CLI prints text, table or yaml when the profile's output
    format says so: then the key exists in IAM but its secret is only on the screen, so the
    message names the key and the command that deletes it, rather than leave it orphaned."""
    force = "run `aws iam create-access-key` with --output json"
    found = list(dict.fromkeys(USER_KEY_ID.findall(text)))
    if not found:
        return (
            f"stdin is not the JSON `aws iam create-access-key` prints ({why}): {force} (the "
            f"profile's output format may be text, table or yaml), or use `{PROG} create`"
        )
    deletes = " && ".join(
        shlex.join(
            ["aws", "iam", "delete-access-key", "--user-name", _user_near(text, key_id)]
            + ["--access-key-id", key_id, "--profile", "PEER_PROFILE"]
        )
        for key_id in found
    )
    return (
        f"stdin is not JSON but the CLI's text, table or yaml output, so nothing was stored, "
        f"yet the key {', '.join(masked(k) for k in found)} was created and its secret is lost "
        f"to this tool: delete it with `{deletes}` (PEER_PROFILE: the peer account's profile), "
        f"then use `{PROG} create`, or add --output json"
    )


def _user_near(text: str, key_id: str) -> str:
    """The user a key belongs to, as the output shows it: the last column of the key's row
    (text and table output list the columns alphabetically, UserName last), or yaml's
    UserName; else the default writer user."""
    named = re.search(r"UserName\s*:\s*['\"]?([\w+=,.@-]+)", text)
    if named:
        return named[1]
    for line in text.splitlines():
        if key_id in line:
            fields = [f.strip() for f in re.split(r"[\t|]", line) if f.strip()]
            if fields and fields[-1] != key_id and IAM_USER_NAME.match(fields[-1]):
                return fields[-1]
    return DEFAULT_USER


def prompt_key_pair(stream: TextIO) -> KeyPair:
    print("Access key ID of the peer's writer user: ", end="", file=sys.stderr, flush=True)
    access_key_id = stream.readline().strip()
    return KeyPair(access_key_id, getpass.getpass("Secret access key (not shown): ").strip())


# -- this region's Parameter Store ------------------------------------------------------------


def parameter_names(prefix: str) -> dict[str, str]:
    return {part: f"{prefix}{part}" for part in PARTS}


def store(ssm: Any, prefix: str, keys: KeyPair, kms_key_id: str) -> dict[str, int]:
    """Write both parameters, creating them if absent; their new versions, by part."""
    values = {"AccessKey": keys.access_key_id, "SecretKey": keys.secret_access_key}
    versions = {}
    for part, name in parameter_names(prefix).items():
        try:
            response = ssm.put_parameter(
                Name=name, Value=values[part], Type="SecureString", KeyId=kms_key_id, Overwrite=True
            )
        except ClientError as error:  # never echo the secret, should a message quote it
            message = str(error).replace(keys.secret_access_key, "***")
            raise KeysError(f"cannot write {name}: {message}") from None
        versions[part] = int(response["Version"])
    return versions


@dataclass(frozen=True)
class Stored:
    """What the parameters held, by part: (type, value), or None where one was missing."""

    parameters: dict[str, tuple[str, str] | None]

    @property
    def key_id(self) -> str | None:
        """The access key ID the sender uses now; None if missing or the old placeholder."""
        access = self.parameters.get("AccessKey")
        if access is None or access[1].startswith(UNSET_MARK):
            return None
        return access[1]


def read_stored(ssm: Any, prefix: str) -> Stored:
    names = parameter_names(prefix)
    response = ssm.get_parameters(Names=list(names.values()), WithDecryption=True)
    found = {p["Name"]: (p["Type"], p["Value"]) for p in response.get("Parameters", [])}
    return Stored({part: found.get(name) for part, name in names.items()})


def restore(ssm: Any, prefix: str, previous: Stored, kms_key_id: str) -> None:
    """Put the parameters back as they were: the old pair, or nothing where nothing was."""
    for part, name in parameter_names(prefix).items():
        before = previous.parameters.get(part)
        if before is None:
            _delete_parameter(ssm, name)
            continue
        type_, value = before
        extra = {"KeyId": kms_key_id} if type_ == "SecureString" else {}
        ssm.put_parameter(Name=name, Value=value, Type=type_, Overwrite=True, **extra)


def check(ssm: Any, prefix: str) -> dict[str, str]:
    """Each parameter's state: the masked key ID, 'set', 'placeholder' or 'missing'."""
    stored = read_stored(ssm, prefix)
    states = {}
    for part, found in stored.parameters.items():
        if found is None:
            states[part] = "missing"
        elif found[1].startswith(UNSET_MARK):
            states[part] = "placeholder"
        else:
            states[part] = masked(found[1]) if part == "AccessKey" else "set"
    return states


# -- the writer user in the peer account ------------------------------------------------------


@dataclass(frozen=True)
class AccessKey:
    key_id: str
    created: datetime


class WriterUser:
    """The IAM user whose keys let this region's sender put records into the peer's stream."""

    def __init__(self, iam: Any, name: str):
        self._iam = iam
        self.name = name

    def access_keys(self) -> list[AccessKey]:
        """Its access keys, oldest first."""
        keys = [
            AccessKey(k["AccessKeyId"], k["CreateDate"])
            for page in self._iam.get_paginator("list_access_keys").paginate(UserName=self.name)
            for k in page["AccessKeyMetadata"]
        ]
        return sorted(keys, key=lambda k: k.created)

    def create_key(self) -> tuple[AccessKey, KeyPair]:
        """A new key, read straight from the API's answer, so no output format can lose it."""
        created = self._iam.create_access_key(UserName=self.name)["AccessKey"]
        pair = KeyPair(created["AccessKeyId"], created["SecretAccessKey"])
        return AccessKey(created["AccessKeyId"], created["CreateDate"]), pair

    def delete_key(self, key_id: str) -> None:
        self._iam.delete_access_key(UserName=self.name, AccessKeyId=key_id)

    def used_since_created(self, key: AccessKey) -> datetime | None:
        """When the key was last used, if that was after its creation (IAM's own record).

        A new key has no LastUsedDate until something signs with it, and this tool never does.
        Should IAM report the time coarser than the creation time (rounded down), a use in the
        key's first moments doesn't count, but the sender's next heartbeat, a minute on, does.
        """
        last = self._iam.get_access_key_last_used(AccessKeyId=key.key_id)["AccessKeyLastUsed"]
        used = last.get("LastUsedDate")
        return used if used is not None and used >= key.created else None

    def find(self, key_id: str) -> AccessKey:
        """One of its keys, by ID, full or masked (AKIA…WXYZ, or AKIA...WXYZ)."""
        keys = self.access_keys()
        shape = MASKED_KEY_ID.match(key_id)
        if shape:
            found = [k for k in keys if masked(k.key_id) == f"{shape[1]}…{shape[2]}"]
        else:
            found = [k for k in keys if k.key_id == key_id]
        if len(found) != 1:
            have = ", ".join(masked(k.key_id) for k in keys) or "no keys"
            what = "more than one key like" if found else "no key"
            raise KeysError(f"{self.name} has {what} {masked(key_id)} (it has {have})")
        return found[0]


def wait_for_use(
    user: WriterUser,
    key: AccessKey,
    wait_s: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    on_poll: Callable[[float], None] = lambda elapsed: None,
) -> datetime | None:
    """When the key was first seen used, polling IAM with backoff for up to wait_s seconds;
    None if it wasn't used in that time."""
    started = clock()
    delay = FIRST_POLL_S
    while True:
        used = user.used_since_created(key)
        elapsed = clock() - started
        on_poll(elapsed)
        if used is not None or elapsed >= wait_s:
            return used
        sleep(min(delay, wait_s - elapsed))
        delay = min(delay * 2, MAX_POLL_S)


# -- rotation -----------------------------------------------------------------------------------


class NotUsedYet(KeysError):
    """The new key is stored, but the sender hasn't used it within the wait: both are kept."""

    def __init__(self, new: AccessKey, old: AccessKey, waited_s: float, interrupted: bool):
        super().__init__(f"not used within {waited_s:g} s")
        self.new, self.old, self.waited_s, self.interrupted = new, old, waited_s, interrupted


@dataclass
class Rotation:
    """One region's copy of the peer's writer keys, and the peer's writer user."""

    ssm: Any
    user: WriterUser
    region: str  # the region whose sender uses the keys
    prefix: str
    kms_key_id: str
    say: Callable[[str], None]  # a line of the result, on stdout

    def old_key(self, stored_id: str | None, keys: list[AccessKey]) -> AccessKey | None:
        """The key the rotation replaces (the stored one), once sure a new one can be made."""
        if len(keys) >= MAX_KEYS_PER_USER:
            others = [k for k in keys if k.key_id != stored_id]
            if len(others) == len(keys):
                stored = masked(stored_id) if stored_id else "no key"
                raise KeysError(
                    f"{self.user.name} already has two access keys "
                    f"({', '.join(masked(k.key_id) for k in keys)}) and {self.region} stores "
                    f"neither ({stored}): check --user and --peer-profile, then delete the one "
                    "no sender uses"
                )
            raise RetireFirst(others[0])
        return next((k for k in keys if k.key_id == stored_id), None)

    def start(self, dry_run: bool) -> tuple[AccessKey, AccessKey | None] | None:
        """Create the new key and store it; (new, old). None on a dry run."""
        previous = read_stored(self.ssm, self.prefix)
        old = self.old_key(previous.key_id, self.user.access_keys())
        if previous.key_id and old is None:
            self.say(
                f"{self.region} stores {masked(previous.key_id)}, which is not one of "
                f"{self.user.name}'s keys: nothing to delete afterwards"
            )
        if dry_run:
            then = (
                f"wait for {self.region}'s sender to use it, then delete {masked(old.key_id)}"
                if old
                else "nothing to delete"
            )
            self.say(
                f"would create a key for {self.user.name}, store it under {self.prefix} in "
                f"{self.region}, {then}"
            )
            return None
        new, pair = self.user.create_key()
        self.say(f"created {masked(new.key_id)} for {self.user.name}")
        try:
            versions = store(self.ssm, self.prefix, pair, self.kms_key_id)
        except BaseException as error:
            raise KeysError(self._undo(new, previous, error)) from None
        self.say(
            f"stored {masked(new.key_id)} under {self.prefix} in {self.region} (versions "
            f"{versions['AccessKey']} and {versions['SecretKey']})"
        )
        return new, old

    def _undo(self, new: AccessKey, previous: Stored, error: BaseException) -> str:
        """Leave no orphan: the parameters as they were, and the new key deleted."""
        cause = " ".join(str(error).split()) or type(error).__name__
        message = f"could not store {masked(new.key_id)} in {self.region} ({cause})"
        try:
            restore(self.ssm, self.prefix, previous, self.kms_key_id)
        except (ClientError, BotoCoreError) as restore_error:
            message += (
                f"; putting back the previous values failed too ({restore_error}): run "
                f"`{PROG} --region {self.region} --check`"
            )
        try:
            self.user.delete_key(new.key_id)
        except (ClientError, BotoCoreError) as delete_error:
            return (
                f"{message}; deleting the new key failed too ({delete_error}): delete "
                f"{masked(new.key_id)} of {self.user.name} with `{PROG} retire`"
            )
        kept = (
            f"{masked(previous.key_id)} is still stored" if previous.key_id else "nothing is stored"
        )
        return f"{message}; deleted it again, so {self.user.name} is as it was and {kept}"

    def retire(self, old: AccessKey) -> None:
        self.user.delete_key(old.key_id)
        left = ", ".join(masked(k.key_id) for k in self.user.access_keys()) or "no keys"
        self.say(f"deleted {masked(old.key_id)}; {self.user.name} has {left}")


class RetireFirst(KeysError):
    """The writer user has two keys already; `key` is the one no sender uses."""

    def __init__(self, key: AccessKey):
        super().__init__(f"{masked(key.key_id)} must go first")
        self.key = key


def waiting_line(region: str, key: AccessKey, wait_s: float) -> str:
    return (
        f"waiting up to {wait_s:g} s for {region}'s sender to use {masked(key.key_id)}, as IAM "
        f"records it: the sender reads its keys again every {SENDER_REREAD_S // 60} minutes, "
        "and ships a heartbeat every minute"
    )


# -- command line -------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = cli.OneLineParser(
        prog=PROG,
        description="Store the peer account's writer keys in this region's Parameter Store, "
        "read from stdin: the JSON of `aws iam create-access-key --output json` (other output "
        "formats are refused, naming the created key and the command that deletes it).",
        epilog=f"Simpler and safer: {PROG} create (the key made and stored in one step). Also: "
        f"{PROG} rotate, retire, remove (each with --help).",
    )
    add = parser.add_argument
    add("--region", required=True, help="the region whose sender uses the keys, e.g. cn-north-1")
    add("--profile", help="AWS CLI profile of that region's account")
    add("--endpoint-url", help="Parameter Store endpoint (the local emulator, say)")
    _prefix_options(parser)
    add("--check", action="store_true", help="store nothing; exit 1 unless both keys are set")
    add("--dry-run", action="store_true", help="read and validate the keys, store nothing")
    add("--quiet", action="store_true", help="print nothing on success")
    return parser


def _prefix_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--prefix",
        help="parameter path prefix (default: the region's peer_credentials_prefix in "
        "defaults.json)",
    )
    parser.add_argument(
        "--kms-key-id", default=DEFAULT_KMS_KEY, help="key to encrypt with (default: %(default)s)"
    )


def build_rotation_parser() -> argparse.ArgumentParser:
    parser = cli.OneLineParser(
        prog=PROG,
        description="Create, rotate or remove the peer account's writer keys that a region's "
        "sender uses.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    add = common.add_argument
    add("--region", required=True, help="the region whose sender uses the keys, e.g. cn-north-1")
    add("--profile", metavar="NAME", help="AWS profile of that region's account")
    add("--endpoint-url", metavar="URL", help="that region's endpoint (the local emulator)")
    add("--peer-region", help="where the writer user is (default: the peer in defaults.json)")
    add("--peer-profile", metavar="NAME", help="AWS profile of the peer's account")
    add("--peer-endpoint-url", metavar="URL", help="the peer's IAM endpoint")
    add("--user", default=DEFAULT_USER, help="the peer's writer user (default: %(default)s)")
    _prefix_options(common)
    add("--dry-run", action="store_true", help="say what would be done; change nothing")
    add("--quiet", action="store_true", help="print nothing on success")
    create = commands.add_parser(
        "create",
        parents=[common],
        help="create the writer user's key in the peer account, store it here, check it",
        description="Create an access key for the peer account's writer user (through the IAM "
        "API, so no CLI output format can lose the secret), store it in this region's Parameter "
        "Store and read it back; only the masked key ID is printed. If storing fails, the new "
        "key is deleted again. Refused when the user has two keys already (IAM's limit), and "
        "when this region stores one of the user's keys already (use rotate), unless --replace.",
    )
    create.add_argument(
        "--replace",
        action="store_true",
        help="store a new key even though this region stores a working one; the old key stays "
        "in IAM (the sender may hold it for 5 minutes) and the retire command that deletes it "
        "is printed",
    )
    commands.add_parser(
        "remove",
        parents=[common],
        help="for uninstalling: delete this region's key parameters and the writer user's keys",
        description="For uninstalling: delete this region's two peer-key parameters and every "
        "access key of the writer user in the peer account (and only that user's keys), so "
        "`terraform destroy` can delete the user. Nothing left to remove is not an error.",
    )
    rotate = commands.add_parser(
        "rotate",
        parents=[common],
        help="create a new key, store it, wait for the sender to use it, delete the old one",
        description="Create a new key for the writer user, store it in this region, wait until "
        "the sender has used it, then delete the key stored before.",
    )
    rotate.add_argument(
        "--wait",
        type=cli.int_in(0),
        default=DEFAULT_WAIT_S,
        metavar="SECONDS",
        help="how long to wait for the sender to use the new key (default: %(default)s)",
    )
    retire = commands.add_parser(
        "retire",
        parents=[common],
        help="delete the old key once the sender uses the stored one (finishes a rotation)",
        description="Delete one of the writer user's keys (never the stored one), once this "
        "region's sender has used the stored key.",
    )
    retire.add_argument(
        "--old-key-id",
        required=True,
        metavar="ID",
        help="the key to delete: its ID, or masked as rotate prints it (AKIA…WXYZ)",
    )
    retire.add_argument(
        "--wait",
        type=cli.int_in(0),
        default=0,
        metavar="SECONDS",
        help="how long to wait for the sender to use the stored key (default: ask once)",
    )
    return parser


def default_prefix(region: str) -> str:
    names = region_names()
    if region not in names:
        raise cli.UsageError(f"defaults.json has no region {region!r}: pass --prefix")
    return names[region].peer_credentials_prefix


def _prefix(args: argparse.Namespace) -> str:
    prefix = args.prefix or default_prefix(args.region)
    if not (prefix.startswith("/") and prefix.endswith("/")):
        raise cli.UsageError(f"--prefix must start and end with '/': {prefix!r}")
    return prefix


def _session(region: str, profile: str | None) -> boto3.Session:
    try:
        return boto3.Session(profile_name=profile, region_name=region)
    except ProfileNotFound:
        raise KeysError(f"AWS profile {profile!r} not found") from None


def ssm_client(region: str, profile: str | None, endpoint_url: str | None) -> Any:
    return _session(region, profile).client("ssm", endpoint_url=endpoint_url)


def iam_client(region: str, profile: str | None, endpoint_url: str | None) -> Any:
    """IAM is global within a partition; the region picks the partition (aws or aws-cn)."""
    return _session(region, profile).client("iam", endpoint_url=endpoint_url)


def run(args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> int:
    prefix = _prefix(args)
    ssm = ssm_client(args.region, args.profile, args.endpoint_url)
    if args.check:
        states = check(ssm, prefix)
        for part, state in states.items():
            print(f"{prefix}{part}: {state}", file=stdout)
        return 0 if all(s not in ("missing", "placeholder") for s in states.values()) else 1
    keys = prompt_key_pair(stdin) if stdin.isatty() else parse_key_pair(stdin.read())
    if args.dry_run:
        print(
            f"would store {masked(keys.access_key_id)} under {prefix} in {args.region}", file=stdout
        )
        return 0
    versions = store(ssm, prefix, keys, args.kms_key_id)
    if not args.quiet:
        print(
            f"stored {prefix}AccessKey ({masked(keys.access_key_id)}, version "
            f"{versions['AccessKey']}) and {prefix}SecretKey (version {versions['SecretKey']}) "
            f"in {args.region}; the sender reads them within 5 minutes",
            file=stdout,
        )
    return 0


def retire_command(args: argparse.Namespace, old: AccessKey) -> str:
    """The command that finishes this rotation later, with the options it was given."""
    # The masked ID needs no quoting: capitals, digits and an ellipsis.
    return f"{command_line(args, 'retire')} --old-key-id {masked(old.key_id)}"


def command_line(args: argparse.Namespace, command: str) -> str:
    """`python tools/peer_keys.py COMMAND ...` with the options these arguments were given."""
    words = ["python", "tools/peer_keys.py", command, "--region", args.region]
    for option in (
        "profile",
        "endpoint_url",
        "peer_region",
        "peer_profile",
        "peer_endpoint_url",
        "prefix",
    ):
        if getattr(args, option):
            words += [f"--{option.replace('_', '-')}", getattr(args, option)]
    if args.user != DEFAULT_USER:
        words += ["--user", args.user]
    if args.kms_key_id != DEFAULT_KMS_KEY:
        words += ["--kms-key-id", args.kms_key_id]
    return shlex.join(words)


@contextmanager
def waiting(quiet: bool, wait_s: float) -> Iterator[Callable[[float], None]]:
    """A bar of the time waited on stderr (hidden with --quiet); yields its update."""
    progress = Progress(
        TextColumn("waiting for the sender"),
        BarColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=quiet,
        transient=True,
    )
    with progress:
        task = progress.add_task("", total=max(wait_s, 1))
        yield lambda elapsed: progress.update(task, completed=elapsed)


def run_rotation(
    args: argparse.Namespace,
    stdout: TextIO,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    names = region_names()
    peer_region = args.peer_region or (
        names[args.region].peer_region if args.region in names else None
    )
    if peer_region is None:
        raise cli.UsageError(f"defaults.json has no region {args.region!r}: pass --peer-region")
    user = WriterUser(iam_client(peer_region, args.peer_profile, args.peer_endpoint_url), args.user)
    say = (lambda line: None) if args.quiet else (lambda line: print(line, file=stdout, flush=True))
    rotation = Rotation(
        ssm_client(args.region, args.profile, args.endpoint_url),
        user,
        args.region,
        _prefix(args),
        args.kms_key_id,
        say,
    )
    if args.command == "retire":
        return _retire(args, rotation, clock, sleep)
    if args.command == "create":
        return _create(args, rotation)
    if args.command == "remove":
        return _remove(args, rotation)
    try:
        started = rotation.start(args.dry_run)
    except RetireFirst as first:
        raise KeysError(
            f"{user.name} already has two access keys: delete {masked(first.key.key_id)}, the one "
            f"{args.region} does not store, with `{retire_command(args, first.key)}`, then rotate"
        ) from None
    if started is None:
        return 0
    new, old = started
    if old is None:
        say(f"{args.region} stored no key of {user.name} before: nothing to delete")
        return 0
    say(waiting_line(args.region, new, args.wait))
    try:
        with waiting(args.quiet, args.wait) as on_poll:
            used = wait_for_use(user, new, args.wait, clock, sleep, on_poll)
    except KeyboardInterrupt:
        raise NotUsedYet(new, old, args.wait, interrupted=True) from None
    if used is None:
        raise NotUsedYet(new, old, args.wait, interrupted=False)
    say(f"{args.region}'s sender used {masked(new.key_id)} at {used.isoformat(timespec='seconds')}")
    rotation.retire(old)
    return 0


def _create(args: argparse.Namespace, rotation: Rotation) -> int:
    user, region, prefix = rotation.user, args.region, rotation.prefix
    previous = read_stored(rotation.ssm, prefix)
    keys = user.access_keys()
    stored = next((k for k in keys if k.key_id == previous.key_id), None)
    if stored is not None and previous.parameters.get("SecretKey") is None:
        stored = None  # half stored: the sender can't use it, so creating is a repair
    if len(keys) >= MAX_KEYS_PER_USER:
        have = ", ".join(masked(k.key_id) for k in keys)
        if stored is None:
            raise KeysError(
                f"{user.name} already has two access keys ({have}), IAM's limit, and {region} "
                f"stores neither: if no sender uses them, delete them with "
                f"`{command_line(args, 'remove')}`, then create again"
            )
        spare = next(k for k in keys if k.key_id != stored.key_id)
        raise KeysError(
            f"{user.name} already has two access keys ({have}), IAM's limit, and {region} "
            f"stores {masked(stored.key_id)}: to replace it use `{command_line(args, 'rotate')}` "
            f"once {masked(spare.key_id)} is deleted with `{retire_command(args, spare)}`"
        )
    if stored is not None and not args.replace:
        raise KeysError(
            f"{region} already stores {masked(stored.key_id)}, a working key of {user.name}: "
            f"to replace it use `{command_line(args, 'rotate')}` (it deletes the old key once "
            "the sender uses the new one), or pass --replace"
        )
    if args.dry_run:
        kept = f"; {masked(stored.key_id)} would stay in IAM" if stored else ""
        rotation.say(
            f"would create a key for {user.name}, store it under {prefix} in {region} and "
            f"check it{kept}"
        )
        return 0
    started = rotation.start(dry_run=False)
    assert started is not None
    new, _ = started
    now = read_stored(rotation.ssm, prefix)
    if now.key_id != new.key_id or now.parameters.get("SecretKey") is None:
        raise KeysError(
            f"stored {masked(new.key_id)}, but {prefix} in {region} reads back "
            f"{masked(now.key_id) if now.key_id else 'no key'}: something else writes there; "
            f"run `{command_line(args, 'create')} --replace` again once it stops"
        )
    rotation.say(
        f"checked: {prefix} in {region} holds {masked(new.key_id)}; the sender reads it "
        f"within {SENDER_REREAD_S // 60} minutes"
    )
    if stored is not None:
        rotation.say(
            f"{masked(stored.key_id)} stays in {user.name}: once {region}'s sender uses "
            f"{masked(new.key_id)}, delete it with `{retire_command(args, stored)}`"
        )
    return 0


def _remove(args: argparse.Namespace, rotation: Rotation) -> int:
    user, region, prefix = rotation.user, args.region, rotation.prefix
    previous = read_stored(rotation.ssm, prefix)
    present = [
        name for part, name in parameter_names(prefix).items() if previous.parameters.get(part)
    ]
    try:
        keys: list[AccessKey] | None = user.access_keys()
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "NoSuchEntity":
            raise
        keys = None  # the user is gone already (the peer was destroyed)
    would = "would delete" if args.dry_run else "deleted"
    if not args.dry_run:
        for name in present:
            _delete_parameter(rotation.ssm, name)
        for key in keys or []:
            user.delete_key(key.key_id)
    if present:
        rotation.say(f"{would} {' and '.join(present)} in {region}")
    else:
        rotation.say(f"{region} holds no parameters under {prefix}: nothing to delete")
    if keys:
        listed = " and ".join(masked(k.key_id) for k in keys)
        rotation.say(f"{would} {listed}, the access keys of {user.name} in the peer account")
    elif keys is None:
        rotation.say(f"{user.name} does not exist in the peer account: no keys to delete")
    else:
        rotation.say(f"{user.name} has no access keys: nothing to delete")
    return 0


def _delete_parameter(ssm: Any, name: str) -> None:
    try:
        ssm.delete_parameter(Name=name)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ParameterNotFound":
            raise


def _retire(
    args: argparse.Namespace,
    rotation: Rotation,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> int:
    user, region = rotation.user, args.region
    stored_id = read_stored(rotation.ssm, rotation.prefix).key_id
    if stored_id is None:
        raise KeysError(f"{region} stores no key under {rotation.prefix}: run `{PROG} rotate`")
    old = user.find(args.old_key_id)
    if old.key_id == stored_id:
        raise KeysError(
            f"{masked(old.key_id)} is the key {region}'s sender uses: retire the other one"
        )
    new = next((k for k in user.access_keys() if k.key_id == stored_id), None)
    if new is None:
        raise KeysError(
            f"the key {region} stores ({masked(stored_id)}) is not one of {user.name}'s: "
            "check --user and --peer-profile"
        )
    if args.dry_run:
        rotation.say(
            f"would delete {masked(old.key_id)} once {region}'s sender has used "
            f"{masked(new.key_id)}"
        )
        return 0
    if args.wait:
        rotation.say(waiting_line(region, new, args.wait))
    with waiting(args.quiet or not args.wait, args.wait) as on_poll:
        used = wait_for_use(user, new, args.wait, clock, sleep, on_poll)
    if used is None:
        raise KeysError(
            f"{region}'s sender has not used {masked(new.key_id)} yet, so {masked(old.key_id)} "
            "stays: run this again in a few minutes"
        )
    rotation.say(
        f"{region}'s sender used {masked(new.key_id)} at {used.isoformat(timespec='seconds')}"
    )
    rotation.retire(old)
    return 0


def main(
    argv: list[str] | None = None,
    stdin: TextIO | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    argv = sys.argv[1:] if argv is None else argv

    def command() -> int:
        if not (argv and argv[0] in COMMANDS):
            return run(build_parser().parse_args(argv), stdin or sys.stdin, sys.stdout)
        args = build_rotation_parser().parse_args(argv)
        try:
            return run_rotation(args, sys.stdout, clock, sleep)
        except NotUsedYet as error:
            what = (
                "interrupted"
                if error.interrupted
                else f"{args.region}'s sender has not used {masked(error.new.key_id)} within "
                f"{error.waited_s:g} s"
            )
            cli.fail(
                PROG,
                f"{what}: both keys are kept, and {masked(error.new.key_id)} is stored. Once "
                f"the sender uses it, finish with: {retire_command(args, error.old)}",
                1,
            )
            return 130 if error.interrupted else 1

    return cli.run(PROG, command, failures=(KeysError,))


if __name__ == "__main__":
    raise SystemExit(main())
