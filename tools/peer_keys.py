"""Store the peer account's writer keys where this region's sender reads them.

    aws iam create-access-key --user-name ddb-replication-peer-writer --profile global \\
        | python tools/peer_keys.py --region cn-north-1 --profile china
    python tools/peer_keys.py --region cn-north-1 --profile china --check

The key pair is read from stdin: the JSON `aws iam create-access-key` prints, or, at a
terminal, typed in (the secret without echo). It's written as SecureString parameters
<prefix>AccessKey and <prefix>SecretKey, encrypted with the node's key (alias/ddb-replication),
overwriting the placeholder Terraform created. The prefix defaults to the region's
peer_credentials_prefix in defaults.json. Nothing secret is printed. The sender reads the new
keys within PEER_CREDENTIALS_TTL_SECONDS (300 s), or at once if the peer rejects the old ones.

--check reads the parameters back and exits 1 unless both hold a key.
"""

from __future__ import annotations

import argparse
import getpass
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

try:
    from tools import cli
except ModuleNotFoundError as missing:  # a checkout without the editable install
    if missing.name not in {"tools", "emulator", "replication"}:
        raise
    _ROOT = Path(__file__).resolve().parent.parent
    sys.path[:0] = [str(_ROOT), str(_ROOT / "lambda")]
    from tools import cli

import boto3
from botocore.exceptions import BotoCoreError, ClientError, ProfileNotFound

from emulator import topology
from replication.peer import UNSET_MARK

PROG = "peer_keys.py"
PARTS = ("AccessKey", "SecretKey")
DEFAULT_KMS_KEY = "alias/ddb-replication"
ACCESS_KEY_ID = re.compile(r"^[A-Z0-9]{16,128}$")


class KeysError(Exception):
    """The keys could not be read, stored or checked: exit 1, one line."""


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
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise KeysError(
            f"stdin is not the JSON `aws iam create-access-key` prints ({error.msg})"
        ) from None
    key = document.get("AccessKey", document) if isinstance(document, dict) else None
    if not isinstance(key, dict) or not {"AccessKeyId", "SecretAccessKey"} <= key.keys():
        raise KeysError("stdin has no AccessKey.AccessKeyId and AccessKey.SecretAccessKey")
    return KeyPair(str(key["AccessKeyId"]).strip(), str(key["SecretAccessKey"]).strip())


def prompt_key_pair(stream: TextIO) -> KeyPair:
    print("Access key ID of the peer's writer user: ", end="", file=sys.stderr, flush=True)
    access_key_id = stream.readline().strip()
    return KeyPair(access_key_id, getpass.getpass("Secret access key (not shown): ").strip())


def parameter_names(prefix: str) -> dict[str, str]:
    return {part: f"{prefix}{part}" for part in PARTS}


def store(ssm: Any, prefix: str, keys: KeyPair, kms_key_id: str) -> dict[str, int]:
    """Write both parameters; their new versions, by part."""
    values = {"AccessKey": keys.access_key_id, "SecretKey": keys.secret_access_key}
    versions = {}
    for part, name in parameter_names(prefix).items():
        response = ssm.put_parameter(
            Name=name, Value=values[part], Type="SecureString", KeyId=kms_key_id, Overwrite=True
        )
        versions[part] = int(response["Version"])
    return versions


def check(ssm: Any, prefix: str) -> dict[str, str]:
    """Each parameter's state: the masked key ID, 'set', 'placeholder' or 'missing'."""
    names = parameter_names(prefix)
    response = ssm.get_parameters(Names=list(names.values()), WithDecryption=True)
    values = {p["Name"]: p["Value"] for p in response.get("Parameters", [])}
    states = {}
    for part, name in names.items():
        value = values.get(name)
        if value is None:
            states[part] = "missing"
        elif value.startswith(UNSET_MARK):
            states[part] = "placeholder"
        else:
            states[part] = masked(value) if part == "AccessKey" else "set"
    return states


def build_parser() -> argparse.ArgumentParser:
    parser = cli.OneLineParser(
        prog=PROG,
        description="Store the peer account's writer keys in this region's Parameter Store "
        "(read from stdin: the JSON of `aws iam create-access-key`).",
    )
    add = parser.add_argument
    add("--region", required=True, help="the region whose sender uses the keys, e.g. cn-north-1")
    add("--profile", help="AWS CLI profile of that region's account")
    add("--endpoint-url", help="Parameter Store endpoint (the local emulator, say)")
    add(
        "--prefix",
        help="parameter path prefix (default: the region's peer_credentials_prefix in "
        "defaults.json)",
    )
    add("--kms-key-id", default=DEFAULT_KMS_KEY, help="key to encrypt with (default: %(default)s)")
    add("--check", action="store_true", help="store nothing; exit 1 unless both keys are set")
    add("--dry-run", action="store_true", help="read and validate the keys, store nothing")
    add("--quiet", action="store_true", help="print nothing on success")
    return parser


def default_prefix(region: str) -> str:
    names = topology.load()
    if region not in names:
        raise cli.UsageError(f"defaults.json has no region {region!r}: pass --prefix")
    return names[region].peer_credentials_prefix


def ssm_client(region: str, profile: str | None, endpoint_url: str | None) -> Any:
    try:
        session = boto3.Session(profile_name=profile, region_name=region)
    except ProfileNotFound:
        raise KeysError(f"AWS profile {profile!r} not found") from None
    return session.client("ssm", endpoint_url=endpoint_url)


def run(args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> int:
    prefix = args.prefix or default_prefix(args.region)
    if not (prefix.startswith("/") and prefix.endswith("/")):
        raise cli.UsageError(f"--prefix must start and end with '/': {prefix!r}")
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


def main(argv: list[str] | None = None, stdin: TextIO | None = None) -> int:
    try:
        return run(build_parser().parse_args(argv), stdin or sys.stdin, sys.stdout)
    except cli.UsageError as error:
        return cli.fail(PROG, error, 2)
    except KeysError as error:
        return cli.fail(PROG, error, 1)
    except (ClientError, BotoCoreError) as error:
        return cli.fail(PROG, f"Parameter Store: {error}", 1)
    except KeyboardInterrupt:
        return cli.fail(PROG, "interrupted", 130)


if __name__ == "__main__":
    raise SystemExit(main())
