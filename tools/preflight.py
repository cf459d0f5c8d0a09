"""Before `terraform apply`: what would make it fail, or deploy something that can't work.

    python tools/preflight.py --profile china --peer-profile global     # both regions
    python tools/preflight.py --region ap-southeast-1 --profile global  # one region

--profile is the profile of --region's account (cn-north-1 unless given); with --peer-profile
the peer region (defaults.json's) is checked too, with that profile. Without --profile, the
`profile` in the region's terraform.tfvars is used, as Terraform would. Per region:

- the profile exists, its configured region (if any) is the region, its credentials work
  (STS GetCallerIdentity), and the identity is in the region's partition (aws-cn for cn-*):
  a Global profile pointed at cn-north-1 is the classic mistake;
- the Lambda zips in dist/ exist and match their sources (tools/build_lambdas.py's check,
  for the architecture the tfvars set);
- the state backend: envs/<region>/backend.s3.tfbackend names a bucket that exists, is
  reachable with the profile and keeps versions; without the file the state would be local;
- every table the tfvars name in existing_tables exists with a NEW_AND_OLD_IMAGES stream;
- once the region's functions exist (a re-apply or upgrade), the peer's keys and the signing
  key ring are stored. Before the first apply they can't be (Terraform creates the writer
  users), which is a note, not a problem.

One line per problem on stdout and exit 1; else the notes and a one-line summary, exit 0.

The tfvars are HCL. Rather than need a parser the operator install doesn't have, this reads
the literal values tfvars may hold (strings, numbers, booleans, null, lists and objects, with
comments and heredocs), which is all Terraform allows there, from the files Terraform loads,
in its order: terraform.tfvars, terraform.tfvars.json, then *.auto.tfvars(.json); TF_VAR_
variables from the environment count least, as in Terraform.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import boto3
import botocore.session
from botocore.exceptions import ClientError, NoCredentialsError, ProfileNotFound

from deployment.names import RegionNames, region_names
from tools import build_lambdas, cli, peer_keys, signing_keys
from tools.tfvars import TfvarsError, parse_tfvars, read_tfvars

PROG = "preflight.py"
ENVS = build_lambdas.ROOT / "envs"
BACKEND_FILE = "backend.s3.tfbackend"
TFVARS_WANTED = ("profile", "existing_tables", "lambda_architecture", "dist_dir")
REFUSED_CREDENTIALS = {
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
    "AuthFailure",
    "ExpiredToken",
    "ExpiredTokenException",
    "AccessDenied",
}


class PreflightError(Exception):
    """A check could not be made as asked: exit 2, one line."""


# -- the backend file ---------------------------------------------------------------------------


def read_backend(path: Path) -> dict[str, Any]:
    """The settings in a .tfbackend file (`name = "value"` lines, which are HCL)."""
    return parse_tfvars(path.read_text())


# -- the report ---------------------------------------------------------------------------------


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    passed: int = 0

    def problem(self, where: str, text: str) -> None:
        line = f"{where}: {text}"
        if line not in self.problems:
            self.problems.append(line)

    def note(self, where: str, text: str) -> None:
        self.notes.append(f"{where}: note: {text}")

    def ok(self) -> None:
        self.passed += 1


@dataclass
class Target:
    """One region to check, and how to reach its account."""

    region: str
    names: RegionNames
    profile: str | None
    peer_profile: str | None
    env: Path
    tfvars: dict[str, Any] = field(default_factory=dict)
    session: boto3.Session | None = None
    identity: str | None = None  # the ARN the profile signs in as

    @property
    def with_profile(self) -> str:
        return f" --profile {shlex.quote(self.profile)}" if self.profile else ""

    def client(self, service: str, region: str | None = None) -> Any:
        assert self.session is not None
        return self.session.client(service, region_name=region or self.region)


def partition_of(region: str) -> str:
    """The partition a region is in, by its name, as AWS names regions."""
    if region.startswith("cn-"):
        return "aws-cn"
    return "aws-us-gov" if region.startswith("us-gov-") else "aws"


# -- the checks ---------------------------------------------------------------------------------


def check_identity(target: Target, report: Report) -> None:
    """The profile, its region, its credentials and their partition. Leaves target.session
    unset when the account can't be reached, so the checks that need it are skipped."""
    who = f"profile {target.profile}" if target.profile else "the default credentials"
    try:
        core = botocore.session.Session(profile=target.profile)
        configured = core.get_scoped_config().get("region")
    except ProfileNotFound:
        files = os.environ.get("AWS_CONFIG_FILE", "~/.aws/config")
        report.problem(
            target.region,
            f"AWS profile {target.profile!r} not found in {files}: add it with `aws configure "
            f"--profile {target.profile}`, or pass the right --profile",
        )
        return
    if configured and configured != target.region:
        report.problem(
            target.region,
            f"{who} is configured for region {configured}, not {target.region}: "
            f"`aws configure set region {target.region}{target.with_profile}`",
        )
    else:
        report.ok()
    expected = partition_of(target.region)
    # Asked where the profile points, so a profile of the wrong partition shows as one.
    asked = configured or target.region
    try:
        sts = boto3.Session(profile_name=target.profile).client("sts", region_name=asked)
        arn = sts.get_caller_identity()["Arn"]
    except NoCredentialsError:
        report.problem(
            target.region, f"{who} has no credentials: `aws configure{target.with_profile}`"
        )
        return
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code not in REFUSED_CREDENTIALS:
            raise
        report.problem(
            target.region,
            f"{who}'s credentials are refused in {asked} ({code}): they must be keys of an "
            f"{partition_of(asked)} account, and not expired (for SSO: `aws sso login"
            f"{target.with_profile}`)",
        )
        return
    actual = arn.split(":")[1] if arn.count(":") >= 5 else "?"
    if actual != expected:
        report.problem(
            target.region,
            f"{who} signs in as {arn}, in partition {actual}, but {target.region} is in "
            f"{expected}: use a profile of the {expected} account (a Global profile for "
            "cn-north-1 is the classic mistake)",
        )
        return
    report.ok()
    target.session = boto3.Session(profile_name=target.profile, region_name=target.region)
    target.identity = arn


def check_tfvars_profile(target: Target, report: Report) -> None:
    """Terraform's provider takes the tfvars' profile over AWS_PROFILE: checking another
    profile than the one Terraform will use proves nothing."""
    configured = target.tfvars.get("profile")
    if configured and target.profile and configured != target.profile:
        report.problem(
            target.region,
            f"{build_lambdas.shown(target.env / 'terraform.tfvars')} sets profile = "
            f'"{configured}", so Terraform uses that, not {target.profile}: make them agree',
        )


def check_zips(target: Target, report: Report) -> None:
    dist = target.tfvars.get("dist_dir") or "../../dist"
    out = (target.env / dist).resolve()
    architecture = target.tfvars.get("lambda_architecture") or build_lambdas.DEFAULT_ARCHITECTURE
    try:
        problems = build_lambdas.check(out, architecture=architecture)
    except build_lambdas.BuildError as error:
        problems = [str(error)]
    for problem in problems:
        report.problem("dist", problem)
    if not problems:
        report.ok()


def check_backend(target: Target, report: Report) -> None:
    path = target.env / BACKEND_FILE
    shown = build_lambdas.shown(path)
    create = f"python tools/state_bucket.py create --region {target.region}{target.with_profile}"
    if not path.is_file():
        report.problem(
            target.region,
            f"no {shown}: Terraform would keep the state locally (and `terraform init` asks for "
            f"the bucket); create the bucket and the file with `{create}`",
        )
        return
    try:
        settings = read_backend(path)
    except (OSError, TfvarsError) as error:
        report.problem(target.region, f"cannot read {shown}: {error}")
        return
    bucket, region = settings.get("bucket"), settings.get("region") or target.region
    if not isinstance(bucket, str) or not bucket:
        report.problem(target.region, f"{shown} names no bucket: write it again with `{create}`")
        return
    if target.session is None:
        return  # the account is out of reach: said already
    if partition_of(region) != partition_of(target.region):
        report.problem(
            target.region,
            f"{shown} puts the state in {region}, another partition than {target.region}'s",
        )
        return
    s3 = target.client("s3", region)
    try:
        s3.head_bucket(Bucket=bucket)
        versioning = s3.get_bucket_versioning(Bucket=bucket).get("Status")
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchBucket", "NotFound"):
            report.problem(
                target.region,
                f"the state bucket {bucket} ({shown}) does not exist: `{create}`",
            )
        else:
            report.problem(
                target.region,
                f"the state bucket {bucket} ({shown}) is not reachable with the profile ({code}): "
                "is it another account's, or may the profile not list it?",
            )
        return
    if versioning != "Enabled":
        report.problem(
            target.region,
            f"the state bucket {bucket} does not keep versions, so a damaged state can't be "
            f"recovered: `aws s3api put-bucket-versioning --bucket {bucket} "
            f"--versioning-configuration Status=Enabled{target.with_profile}`",
        )
        return
    report.ok()


def check_tables(target: Target, report: Report) -> None:
    names = target.tfvars.get("existing_tables") or []
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        report.problem(target.region, "existing_tables in the tfvars is not a list of table names")
        return
    if target.session is None or not names:
        return
    dynamodb = target.client("dynamodb")
    for name in names:
        try:
            table = dynamodb.describe_table(TableName=name)["Table"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
            report.problem(
                target.region,
                f"table {name} (existing_tables) does not exist in {target.region}: create it, "
                "or take it out of existing_tables",
            )
            continue
        stream = table.get("StreamSpecification") or {}
        view = stream.get("StreamViewType") if stream.get("StreamEnabled") else None
        enable = (
            f"aws dynamodb update-table --table-name {name} --stream-specification "
            f"StreamEnabled=true,StreamViewType=NEW_AND_OLD_IMAGES{target.with_profile}"
        )
        if view is None:
            report.problem(
                target.region,
                f"table {name} (existing_tables) has no stream, and replication reads one with "
                f"both images: `{enable}`",
            )
        elif view != "NEW_AND_OLD_IMAGES":
            report.problem(
                target.region,
                f"table {name} (existing_tables) streams {view}, and replication needs "
                "NEW_AND_OLD_IMAGES: disable the stream (`aws dynamodb update-table --table-name "
                f"{name} --stream-specification StreamEnabled=false{target.with_profile}`), then "
                f"`{enable}`",
            )
        else:
            report.ok()


def check_secrets(target: Target, report: Report, rings: dict[str, signing_keys.Held]) -> None:
    """The peer's keys and the signing ring, where the functions exist already."""
    if target.session is None:
        return
    try:
        target.client("lambda").get_function(FunctionName=target.names.sender_function)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
        report.note(
            target.region,
            "the functions don't exist yet (a first apply), so neither the peer's keys nor the "
            "signing keys can be stored: after applying both regions, run `peer_keys.py create` "
            "and `signing_keys.py init` (deploy steps 4 and 5)",
        )
        return
    peer = target.names.peer_region
    with_peer = f" --peer-profile {shlex.quote(target.peer_profile)}" if target.peer_profile else ""
    ssm = target.client("ssm")
    prefix = target.names.peer_credentials_prefix
    states = peer_keys.check(ssm, prefix)
    bad = {part: state for part, state in states.items() if state in ("missing", "placeholder")}
    if bad:
        missing = ", ".join(f"{prefix}{part} is {state}" for part, state in bad.items())
        report.problem(
            target.region,
            f"the sender can't reach {peer}: {missing}"
            f"; `python tools/peer_keys.py create --region {target.region}{target.with_profile}"
            f"{with_peer}`",
        )
    else:
        report.ok()
    held = signing_keys.Region(
        target.region, ssm, target.names.signing_keys_parameter, signing_keys.DEFAULT_KMS_KEY
    ).read()
    rings[target.region] = held
    command = (
        f"python tools/signing_keys.py check --region {target.region}{target.with_profile}"
        f"{with_peer}"
    )
    if held.ring is None:
        report.problem(
            target.region,
            f"{target.names.signing_keys_parameter} is {held.describe()}: see `{command}`",
        )
    else:
        report.ok()


def check_rings_agree(
    targets: list[Target], rings: dict[str, signing_keys.Held], report: Report
) -> None:
    held = [rings[t.region] for t in targets if t.region in rings]
    if len(held) == 2 and held[0].ring is not None and held[1].ring is not None:
        if signing_keys.same(held[0].ring, held[1].ring):
            report.ok()
        else:
            first = targets[0]
            with_peer = f" --peer-profile {first.peer_profile}" if first.peer_profile else ""
            report.problem(
                "both",
                "the regions hold different signing key rings, so each refuses the other's "
                f"changes: `python tools/signing_keys.py check --region {first.region}"
                f"{first.with_profile}{with_peer}` says what to run",
            )


def run_checks(targets: list[Target]) -> Report:
    report = Report()
    rings: dict[str, signing_keys.Held] = {}
    for target in targets:
        try:
            target.tfvars = read_tfvars(target.env, TFVARS_WANTED, typed={"existing_tables"})
        except TfvarsError as error:
            report.problem(target.region, str(error))
        if target.profile is None and isinstance(target.tfvars.get("profile"), str):
            target.profile = target.tfvars["profile"]
        check_tfvars_profile(target, report)
        check_identity(target, report)
        check_zips(target, report)
        check_backend(target, report)
        check_tables(target, report)
        check_secrets(target, report, rings)
    check_rings_agree(targets, rings, report)
    return report


# -- command line -------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = cli.OneLineParser(
        prog=PROG,
        description="Check, before `terraform apply`, what would make it fail or deploy "
        "something that can't work: profiles and their partition, the Lambda zips, the state "
        "bucket, existing tables' streams, and (on a re-apply) the stored keys. One line per "
        "problem and exit 1; else a summary and exit 0.",
        epilog="Both regions: --profile for --region and --peer-profile for its peer, e.g. "
        "`--profile china --peer-profile global`. One region: leave out --peer-profile.",
    )
    add = parser.add_argument
    add("--region", default="cn-north-1", help="the region --profile is for (default: %(default)s)")
    add(
        "--profile",
        metavar="NAME",
        help="AWS profile of that region's account (default: `profile` in its terraform.tfvars, "
        "else the usual credential chain)",
    )
    add("--peer-profile", metavar="NAME", help="also check the peer region, with this profile")
    add(
        "--envs",
        type=Path,
        default=ENVS,
        metavar="DIR",
        help="the Terraform environments (default: envs)",
    )
    add("--quiet", action="store_true", help="print only problems")
    return parser


def targets_from(args: argparse.Namespace) -> list[Target]:
    names = region_names()
    if args.region not in names:
        known = ", ".join(sorted(names))
        raise cli.UsageError(f"defaults.json has no region {args.region!r} (it has {known})")
    regions = [(args.region, args.profile, args.peer_profile)]
    if args.peer_profile is not None:
        regions.append((names[args.region].peer_region, args.peer_profile, args.profile))
    targets = []
    for region, profile, peer_profile in regions:
        env = args.envs / region
        if not env.is_dir():
            raise cli.UsageError(f"no Terraform environment {build_lambdas.shown(env)}")
        targets.append(Target(region, names[region], profile, peer_profile, env))
    return targets


def run(args: argparse.Namespace, stdout: TextIO) -> int:
    targets = targets_from(args)
    report = run_checks(targets)
    for line in report.problems:
        print(line, file=stdout)
    if report.problems:
        return 1
    if not args.quiet:
        for line in report.notes:
            print(line, file=stdout)
        who = ", ".join(f"{t.region} as {t.identity}" for t in targets)
        print(
            f"ready for terraform apply: {report.passed} checks passed ({who})",
            file=stdout,
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    return cli.run(PROG, lambda: run(build_parser().parse_args(argv), sys.stdout))


if __name__ == "__main__":
    raise SystemExit(main())
