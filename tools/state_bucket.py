"""The S3 bucket that keeps a region's Terraform state, in either partition: create it, and
write the environment's backend settings.

    python tools/state_bucket.py create --region cn-north-1 --profile china
    python tools/state_bucket.py create --region ap-southeast-1 --profile global

The bucket is ddb-replication-tfstate-<account>-<region> (the account is the profile's, from
STS), made the same way every time, so a second run changes nothing: versioning on (every state
Terraform wrote can be restored, and secrets an old state held can be purged version by
version), default encryption (SSE-S3), every public access blocked, and a bucket policy that
denies requests not made over TLS. ARNs are built with the region's partition: aws-cn for
cn-*, aws elsewhere.

It then writes envs/<region>/backend.s3.tfbackend (bucket, key ddb-replication/<region>.tfstate,
region, use_lockfile, encrypt), the file `terraform init -backend-config=backend.s3.tfbackend`
reads; git ignores it. A file that exists with other settings is left alone (exit 1) unless
--force. Nothing is created when the file would be refused.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import boto3
from botocore.exceptions import ClientError, ProfileNotFound

from tools import cli

PROG = "state_bucket.py"
BUCKET_PREFIX = "ddb-replication-tfstate"
BACKEND_FILE = "backend.s3.tfbackend"
# A checkout's envs/; an installed copy of the tools has none, and writes under the current
# directory's envs/ instead (or --output).
CHECKOUT_ENVS = Path(__file__).resolve().parent.parent / "envs"


class StateBucketError(Exception):
    """The bucket or the backend file could not be made as asked: exit 1, one line."""


def partition_of(region: str) -> str:
    return "aws-cn" if region.startswith("cn-") else "aws"


def bucket_name(account: str, region: str) -> str:
    return f"{BUCKET_PREFIX}-{account}-{region}"


def state_key(region: str) -> str:
    return f"ddb-replication/{region}.tfstate"


def backend_settings(bucket: str, region: str) -> str:
    """The backend.s3.tfbackend text Terraform's S3 backend reads at init."""
    return (
        f"# Written by tools/state_bucket.py. Not committed (.gitignore): use it with\n"
        f"#   terraform init -backend-config={BACKEND_FILE}\n"
        f'bucket       = "{bucket}"\n'
        f'key          = "{state_key(region)}"\n'
        f'region       = "{region}"\n'
        f"use_lockfile = true\n"
        f"encrypt      = true\n"
    )


def tls_only_policy(bucket: str, partition: str) -> dict[str, Any]:
    """Deny every request to the bucket and its objects that doesn't come over TLS."""
    arn = f"arn:{partition}:s3:::{bucket}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyRequestsWithoutTLS",
                "Effect": "Deny",
                "Principal": "*",
                # A deny: every action, so no request at all is served in clear text.
                "Action": "s3:*",
                "Resource": [arn, f"{arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }


@dataclass
class StateBucket:
    s3: Any
    name: str
    region: str
    say: Callable[[str], None]
    dry_run: bool = False

    def exists(self) -> bool:
        """True if this account has the bucket in this region; an error if someone else does."""
        try:
            answer = self.s3.head_bucket(Bucket=self.name)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in ("404", "NoSuchBucket", "NotFound"):
                return False
            if code in ("403", "AccessDenied", "Forbidden"):
                raise StateBucketError(
                    f"bucket {self.name} exists but this profile may not use it (another "
                    "account's, or missing s3:ListBucket): check the profile"
                ) from None
            raise
        headers = answer.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        where = headers.get("x-amz-bucket-region", self.region)
        if where != self.region:
            raise StateBucketError(f"bucket {self.name} exists in {where}, not {self.region}")
        return True

    def ensure(self) -> None:
        """Create the bucket if needed and (re)apply every setting: each call is idempotent."""
        partition = partition_of(self.region)
        existed = self.exists()
        if self.dry_run:
            verb = "would apply its settings to" if existed else "would create"
            self.say(f"{verb} s3://{self.name} ({self.region}, {partition})")
            return
        if not existed:
            options = {}
            if self.region != "us-east-1":  # the one region S3 refuses a LocationConstraint for
                options["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
            self.s3.create_bucket(Bucket=self.name, **options)
        self.s3.put_bucket_versioning(
            Bucket=self.name, VersioningConfiguration={"Status": "Enabled"}
        )
        self.s3.put_bucket_encryption(
            Bucket=self.name,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
        )
        self.s3.put_public_access_block(
            Bucket=self.name,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
        self.s3.put_bucket_policy(
            Bucket=self.name, Policy=json.dumps(tls_only_policy(self.name, partition))
        )
        state = "exists" if existed else "created"
        self.say(
            f"s3://{self.name}: {state}; versioning, encryption, public access block "
            "and TLS-only policy set"
        )


def check_backend_file(path: Path, text: str, force: bool) -> bool:
    """True if the file must be written; an error if it holds other settings (unless force)."""
    if not path.exists():
        return True
    if path.read_text() == text:
        return False
    if not force:
        raise StateBucketError(
            f"{path} exists with other settings: compare it with this bucket's, "
            "or pass --force to overwrite it"
        )
    return True


def account_of(sts: Any, region: str) -> str:
    """The profile's account, refusing one of the other partition."""
    identity = sts.get_caller_identity()
    found = identity["Arn"].split(":")[1]
    if found != partition_of(region):
        raise StateBucketError(
            f"the profile's identity is in partition {found}, and {region} is in "
            f"{partition_of(region)}: pass that partition's profile"
        )
    return identity["Account"]


def default_output(region: str) -> Path:
    envs = CHECKOUT_ENVS if CHECKOUT_ENVS.is_dir() else Path("envs")
    return envs / region / BACKEND_FILE


def _session(region: str, profile: str | None) -> boto3.Session:
    try:
        return boto3.Session(profile_name=profile, region_name=region)
    except ProfileNotFound:
        raise StateBucketError(f"AWS profile {profile!r} not found") from None


def create(args: argparse.Namespace, stdout: TextIO) -> int:
    def say(line: str) -> None:
        if not args.quiet:
            print(line, file=stdout, flush=True)

    output = args.output or default_output(args.region)
    if not output.parent.is_dir():
        raise StateBucketError(
            f"{output.parent} does not exist: run from the repository's root or pass --output"
        )
    session = _session(args.region, args.profile)
    account = account_of(session.client("sts", endpoint_url=args.endpoint_url), args.region)
    name = bucket_name(account, args.region)
    text = backend_settings(name, args.region)
    write = check_backend_file(output, text, args.force)  # before anything is created
    s3 = session.client("s3", endpoint_url=args.endpoint_url)
    StateBucket(s3, name, args.region, say, args.dry_run).ensure()
    if not write:
        say(f"{output}: already holds these settings")
    elif args.dry_run:
        say(f"would write {output}")
    else:
        output.write_text(text)
        say(f"{output}: written")
    profile = f"AWS_PROFILE={shlex.quote(args.profile)} " if args.profile else ""
    say(
        f"next: cd {shlex.quote(str(output.parent))} && "
        f"{profile}terraform init -backend-config={shlex.quote(output.name)}"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = cli.OneLineParser(
        prog=PROG, description="The S3 bucket for a region's Terraform state, and its backend file."
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=cli.OneLineParser)
    summary = "create the bucket (or bring it to its settings) and write the backend file"
    sub = commands.add_parser("create", help=summary, description=summary)
    sub.add_argument("--region", required=True, help="the region whose state it keeps")
    sub.add_argument("--profile", help="AWS profile of that region's account")
    sub.add_argument("--endpoint-url", help="S3 and STS endpoint (tests, or a private endpoint)")
    sub.add_argument(
        "--output",
        type=Path,
        help=f"backend file to write (default: envs/<region>/{BACKEND_FILE})",
    )
    sub.add_argument("--force", action="store_true", help="overwrite a backend file that differs")
    sub.add_argument(
        "--dry-run", action="store_true", help="say what would be done; change nothing"
    )
    sub.add_argument("--quiet", action="store_true", help="print nothing on success")
    return parser


def main(argv: list[str] | None = None) -> int:
    return cli.run(
        PROG,
        lambda: create(build_parser().parse_args(argv), sys.stdout),
        failures=(StateBucketError,),
        interrupted="interrupted: run the same command again to carry on",
    )


if __name__ == "__main__":
    raise SystemExit(main())
