"""tools/preflight.py against moto, with real AWS profiles (a temporary config file), a real
build of the zips, and the Terraform environments' files in a temporary envs/: a deployment
ready to apply passes, and each classic mistake is one line naming what to do."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import boto3
import pytest

from tools import build_lambdas, peer_keys, preflight, signing_keys
from tools.tfvars import TfvarsError, parse_tfvars, read_tfvars

ROOT = Path(__file__).resolve().parent.parent
CHINA, GLOBAL = "cn-north-1", "ap-southeast-1"
BUCKETS = {CHINA: "tfstate-china", GLOBAL: "tfstate-global"}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """dist/ as `python tools/build_lambdas.py` leaves it, from this checkout's sources."""
    if not any(build_lambdas.LOCAL_WHEELHOUSE.glob("aws_lambda_powertools-*.whl")):
        pytest.fail("needs the Lambda runtime wheels in .cache/lambda-wheels: make lambda-wheels")
    out = tmp_path_factory.mktemp("build") / "dist"
    build_lambdas.build(out, wheelhouse=build_lambdas.LOCAL_WHEELHOUSE)
    return out


@pytest.fixture
def profiles(tmp_path, monkeypatch) -> Path:
    """An AWS config with a profile per account, each pointed at its region."""
    config, credentials = tmp_path / "config", tmp_path / "credentials"
    config.write_text(
        f"[profile china]\nregion = {CHINA}\n[profile global]\nregion = {GLOBAL}\n"
        "[profile noregion]\n"
    )
    credentials.write_text(
        "".join(
            f"[{name}]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
            for name in ("china", "global", "noregion")
        )
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    return config


@pytest.fixture
def world(aws, profiles, built, tmp_path):
    """Both accounts and environments ready for a first apply: a versioned state bucket and
    backend file each, and an existing table with the stream replication reads."""
    envs = tmp_path / "envs"
    dist = tmp_path / "dist"
    shutil.copytree(built, dist)
    for region in (CHINA, GLOBAL):
        env = envs / region
        env.mkdir(parents=True)
        table = f"orders-{region}"
        (env / "terraform.tfvars").write_text(
            f'# as an operator writes it\ndist_dir = "{dist}"\nexisting_tables = [\n'
            f'  "{table}", # the application\'s\n]\n'
        )
        (env / "backend.s3.tfbackend").write_text(
            f'bucket = "{BUCKETS[region]}"\nkey = "ddb-replication/{region}.tfstate"\n'
            f'region = "{region}"\nuse_lockfile = true\nencrypt = true\n'
        )
        s3 = boto3.client("s3", region_name=region)
        s3.create_bucket(
            Bucket=BUCKETS[region], CreateBucketConfiguration={"LocationConstraint": region}
        )
        s3.put_bucket_versioning(
            Bucket=BUCKETS[region], VersioningConfiguration={"Status": "Enabled"}
        )
        create_table(region, table, "NEW_AND_OLD_IMAGES")
    return envs


def create_table(region: str, name: str, view: str | None) -> None:
    extra = {"StreamSpecification": {"StreamEnabled": True, "StreamViewType": view}} if view else {}
    boto3.client("dynamodb", region_name=region).create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        **extra,
    )


def preflight_run(capsys, envs: Path, *args: str) -> tuple[int, list[str], str]:
    code = preflight.main(["--envs", str(envs), *args])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


BOTH = ("--profile", "china", "--peer-profile", "global")


def test_a_deployment_ready_for_its_first_apply_passes_with_notes(world, capsys):
    code, lines, err = preflight_run(capsys, world, *BOTH)

    assert code == 0, lines + [err]
    assert lines[-1].startswith("ready for terraform apply: ")
    assert f"{CHINA} as arn:aws-cn:" in lines[-1] and f"{GLOBAL} as arn:aws:" in lines[-1]
    notes = [line for line in lines if ": note: " in line]
    assert [n.split(":")[0] for n in notes] == [CHINA, GLOBAL]
    assert all("the functions don't exist yet" in n for n in notes)


def test_a_profile_of_the_wrong_partition_is_caught(world, profiles, capsys):
    # "china" pointed at the Global region: its identity is an aws one, not aws-cn.
    profiles.write_text(profiles.read_text().replace(f"region = {CHINA}", f"region = {GLOBAL}"))

    code, lines, _ = preflight_run(capsys, world, "--profile", "china")

    assert code == 1
    assert f"{CHINA}: profile china is configured for region {GLOBAL}, not {CHINA}" in "\n".join(
        lines
    )
    (partition,) = [line for line in lines if "partition" in line]
    assert partition.startswith(f"{CHINA}: profile china signs in as arn:aws:")
    assert f"but {CHINA} is in aws-cn: use a profile of the aws-cn account" in partition
    # The checks that need the account are skipped rather than failing confusingly after it.
    assert not any("table" in line or "bucket" in line for line in lines)


def test_a_profile_without_a_region_is_asked_in_the_region_checked(world, capsys):
    code, lines, _ = preflight_run(capsys, world, "--profile", "noregion")
    assert code == 0, lines
    assert f"{CHINA} as arn:aws-cn:" in lines[-1]


def test_a_missing_profile_is_one_line(world, capsys):
    code, lines, _ = preflight_run(capsys, world, "--profile", "chna")
    assert code == 1
    assert lines == [
        f"{CHINA}: AWS profile 'chna' not found in {preflight.os.environ['AWS_CONFIG_FILE']}: "
        "add it with `aws configure --profile chna`, or pass the right --profile"
    ]


def test_the_tfvars_profile_wins_in_terraform_so_a_different_one_is_a_problem(world, capsys):
    tfvars = world / CHINA / "terraform.tfvars"
    tfvars.write_text(tfvars.read_text() + 'profile = "global"\n')
    code, lines, _ = preflight_run(capsys, world, "--profile", "china")
    assert code == 1
    assert any('sets profile = "global", so Terraform uses that, not china' in x for x in lines)


def test_a_stale_zip_names_the_source_and_the_rebuild(world, capsys):
    manifest_path = world.parent / "dist" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    sender = manifest["functions"]["sender"]
    # As if built before lambda/replication/wire.py last changed.
    sender["files"]["replication/wire.py"] = "0" * 64
    sender["inputs"] = "0" * 64
    manifest_path.write_text(json.dumps(manifest))

    code, lines, _ = preflight_run(capsys, world, *BOTH)

    assert code == 1
    (stale,) = lines  # both regions use the same dist/: said once
    assert stale.startswith("dist: ") and "sender.zip is stale" in stale
    assert "lambda/replication/wire.py changed since it was built" in stale
    assert "run python tools/build_lambdas.py" in stale


def test_a_zip_that_isnt_there_is_a_problem(world, capsys):
    (world.parent / "dist" / "replicator.zip").unlink()
    code, lines, _ = preflight_run(capsys, world, "--profile", "china")
    assert code == 1 and any("replicator.zip is missing" in line for line in lines)


def test_the_architecture_the_tfvars_choose_is_the_one_checked(world, capsys):
    tfvars = world / GLOBAL / "terraform.tfvars"
    tfvars.write_text(tfvars.read_text() + 'lambda_architecture = "arm64"\n')
    code, lines, _ = preflight_run(capsys, world, "--region", GLOBAL, "--profile", "global")
    assert code == 1
    assert any("it was built for x86_64, not arm64" in line for line in lines)


def test_state_bucket_problems(world, capsys):
    boto3.client("s3", region_name=CHINA).delete_bucket(Bucket=BUCKETS[CHINA])
    boto3.client("s3", region_name=GLOBAL).put_bucket_versioning(
        Bucket=BUCKETS[GLOBAL], VersioningConfiguration={"Status": "Suspended"}
    )

    code, lines, _ = preflight_run(capsys, world, *BOTH)

    assert code == 1
    create = f"python tools/state_bucket.py create --region {CHINA} --profile china"
    assert lines == [
        f"{CHINA}: the state bucket {BUCKETS[CHINA]} ({world / CHINA / 'backend.s3.tfbackend'}) "
        f"does not exist: `{create}`",
        f"{GLOBAL}: the state bucket {BUCKETS[GLOBAL]} does not keep versions, so a damaged "
        f"state can't be recovered: `aws s3api put-bucket-versioning --bucket {BUCKETS[GLOBAL]} "
        "--versioning-configuration Status=Enabled --profile global`",
    ]


def test_without_a_backend_file_the_state_would_be_local(world, capsys):
    (world / CHINA / "backend.s3.tfbackend").unlink()
    code, lines, _ = preflight_run(capsys, world, "--profile", "china")
    assert code == 1
    (line,) = lines
    assert "Terraform would keep the state locally" in line
    assert line.endswith(f"`python tools/state_bucket.py create --region {CHINA} --profile china`")


def test_existing_tables_need_a_new_and_old_images_stream(world, capsys):
    tfvars = world / CHINA / "terraform.tfvars"
    dist = world.parent / "dist"
    tfvars.write_text(
        f'dist_dir = "{dist}"\n'
        'existing_tables = ["plain", "keys-only", "orders-cn-north-1", "gone"]\n'
    )
    create_table(CHINA, "plain", None)
    create_table(CHINA, "keys-only", "KEYS_ONLY")

    code, lines, _ = preflight_run(capsys, world, "--profile", "china")

    assert code == 1
    assert lines == [
        f"{CHINA}: table plain (existing_tables) has no stream, and replication reads one with "
        "both images: `aws dynamodb update-table --table-name plain --stream-specification "
        "StreamEnabled=true,StreamViewType=NEW_AND_OLD_IMAGES --profile china`",
        f"{CHINA}: table keys-only (existing_tables) streams KEYS_ONLY, and replication needs "
        "NEW_AND_OLD_IMAGES: disable the stream (`aws dynamodb update-table --table-name "
        "keys-only --stream-specification StreamEnabled=false --profile china`), then `aws "
        "dynamodb update-table --table-name keys-only --stream-specification "
        "StreamEnabled=true,StreamViewType=NEW_AND_OLD_IMAGES --profile china`",
        f"{CHINA}: table gone (existing_tables) does not exist in {CHINA}: create it, or take "
        "it out of existing_tables",
    ]


def deploy_functions(region: str) -> None:
    """What the first apply leaves that preflight looks for: the sender function, and the
    node's key (which the tools encrypt the stored keys with)."""
    iam = boto3.client("iam", region_name=region)
    role = iam.create_role(RoleName=f"sender-{region}", AssumeRolePolicyDocument="{}")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("sender.py", "def handler(event, context):\n    return None\n")
    boto3.client("lambda", region_name=region).create_function(
        FunctionName="ddb_send_to_kinesis",
        Runtime="python3.12",
        Role=role["Role"]["Arn"],
        Handler="sender.handler",
        Code={"ZipFile": archive.getvalue()},
    )
    kms = boto3.client("kms", region_name=region)
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/ddb-replication", TargetKeyId=key)
    boto3.client("iam", region_name=region).create_user(UserName="ddb-replication-peer-writer")


def test_on_a_reapply_the_stored_keys_must_be_there(world, capsys):
    for region in (CHINA, GLOBAL):
        deploy_functions(region)

    code, lines, _ = preflight_run(capsys, world, *BOTH)

    assert code == 1
    assert lines[0] == (
        f"{CHINA}: the sender can't reach {GLOBAL}: /DDBReplication/TableSG/AccessKey is "
        "missing, /DDBReplication/TableSG/SecretKey is missing; `python tools/peer_keys.py "
        f"create --region {CHINA} --profile china --peer-profile global`"
    )
    assert lines[1].startswith(f"{CHINA}: /DDBReplication/SigningKeys is none: see `python")
    assert len(lines) == 4 and lines[2].startswith(f"{GLOBAL}: the sender can't reach {CHINA}")

    # The commands it names, run: then it passes, with no notes.
    for region, profile, peer in ((CHINA, "china", "global"), (GLOBAL, "global", "china")):
        argv = ["create", "--region", region, "--profile", profile, "--peer-profile", peer]
        assert peer_keys.main([*argv, "--quiet"]) == 0
    assert signing_keys.main(["init", "--region", CHINA, *BOTH, "--quiet"]) == 0
    capsys.readouterr()
    code, lines, _ = preflight_run(capsys, world, *BOTH)
    assert code == 0, lines
    assert len(lines) == 1 and lines[0].startswith("ready for terraform apply")

    # Rings that differ (one region re-initialised on its own) are a problem too.
    ssm = boto3.client("ssm", region_name=GLOBAL)
    ssm.put_parameter(
        Name="/DDBReplication/SigningKeys",
        Value=signing_keys.SigningKeys.generate().to_json(),
        Type="SecureString",
        Overwrite=True,
    )
    code, lines, _ = preflight_run(capsys, world, *BOTH)
    assert code == 1
    assert lines == [
        "both: the regions hold different signing key rings, so each refuses the other's "
        f"changes: `python tools/signing_keys.py check --region {CHINA} --profile china "
        "--peer-profile global` says what to run"
    ]


def test_a_region_defaults_json_lacks_is_a_usage_error(world, capsys):
    code, _, err = preflight_run(capsys, world, "--region", "eu-west-1")
    assert code == 2 and "defaults.json has no region 'eu-west-1'" in err


# -- reading tfvars ---------------------------------------------------------------------------


@pytest.mark.parametrize("region", [CHINA, GLOBAL])
def test_the_shipped_tfvars_examples_read_as_terraform_reads_them(region):
    values = parse_tfvars((ROOT / "envs" / region / "terraform.tfvars.example").read_text())
    table = "user-cn" if region == CHINA else "user-sg"
    assert values["tables"] == {table: {"hash_key": "PK"}}
    assert values["alarm_emails"] == ["ops@example.com"]
    assert "existing_tables" not in values  # commented out


def test_the_shapes_tfvars_take():
    text = """
existing_tables = [
  "orders-cn",   # trailing comment
  "audit-cn",    // another style
]
/* a block comment,
   over lines */
tables = {
  "orders-cn" = {
    hash_key = "customer_id", range_key = "order_no", range_key_type = "N"
    global_secondary_indexes = {
      "by-sku" = { hash_key = "sku", non_key_attributes = ["total"] }
    }
  }
  plain = { hash_key: "PK" }
}
note = <<-EOT
    two
      lines
    EOT
escaped = "a \\"quoted\\" \\u00e9 $${literal}"
count = -2
ratio = 1.5e1
flag = false
nothing = null
"""
    values = parse_tfvars(text)
    assert values["existing_tables"] == ["orders-cn", "audit-cn"]
    assert values["tables"]["orders-cn"]["range_key_type"] == "N"
    assert values["tables"]["orders-cn"]["global_secondary_indexes"]["by-sku"][
        "non_key_attributes"
    ] == ["total"]
    assert values["tables"]["plain"] == {"hash_key": "PK"}
    assert values["note"] == "two\n  lines\n"
    assert values["escaped"] == 'a "quoted" é ${literal}'
    assert (values["count"], values["ratio"], values["flag"], values["nothing"]) == (
        -2,
        15.0,
        False,
        None,
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('existing_tables = ["a"\n', "line 1: missing ']'"),
        ("existing_tables = var.tables\n", "line 1: var is not a literal value"),
        ('a = "x" b = "y"\n', "line 1: one variable per line"),
        ('\n\nname = "${var.x}"\n', "line 3: a template"),
        ('x = "unterminated\n', "line 1: unexpected '\"'"),
        ("x = 1\ny = 2\nx = 3\n", "line 3: x is set twice"),
    ],
)
def test_what_it_cannot_read_is_named_by_line(text, message):
    with pytest.raises(TfvarsError, match=message.replace("[", r"\[").replace("$", r"\$")):
        parse_tfvars(text)


def test_files_merge_in_terraforms_order(tmp_path):
    (tmp_path / "terraform.tfvars").write_text('existing_tables = ["hcl"]\nprofile = "p"\n')
    (tmp_path / "terraform.tfvars.json").write_text('{"existing_tables": ["json"]}')
    (tmp_path / "b.auto.tfvars").write_text('lambda_architecture = "arm64"\n')
    (tmp_path / "a.auto.tfvars.json").write_text('{"lambda_architecture": "x86_64"}')
    environ = {"TF_VAR_existing_tables": '["env"]', "TF_VAR_dist_dir": "/d"}

    wanted = ("existing_tables", "dist_dir", "profile", "lambda_architecture")
    values = read_tfvars(tmp_path, wanted, typed={"existing_tables"}, environ=environ)

    assert values == {
        "existing_tables": ["json"],
        "profile": "p",
        "lambda_architecture": "arm64",
        "dist_dir": "/d",
    }
