"""The checkov policy gate: the repository's Terraform passes checkov's checks, with the skips in
.checkov.yaml and nothing else, and checkov runs offline.

checkov is a dev dependency in pyproject.toml (pinned there, with why) and runs as
`python -m checkov.main` with this interpreter. It starts slowly (about 2-3 s a run), so each
scanned directory gets one run, shared by a module-scoped fixture.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / ".checkov.yaml"
SCANNED = ("modules", "envs", "examples", "tests/terraform/fixtures")
CHECKOV = [sys.executable, "-m", "checkov.main"]
# Offline on the command line as well as in the config, so that an edit to the config can't
# make the gate reach for the network. A run makes no network call at all with these
# (no connect() other than nscd's Unix socket, seen with strace); without --skip-download,
# checkov asks the Prisma Cloud platform for its guideline mapping, which takes about 40 s
# to give up when the network drops packets.
OFFLINE = ["--skip-download", "--framework", "terraform", "--download-external-modules", "false"]
# A normal run takes a few seconds; longer means something is waiting on the network.
TIMEOUT_S = 120
CHECK_ID = re.compile(r"^CKV2?_[A-Z0-9]+_\d+$")


def checkov_env() -> dict[str, str]:
    """This environment without anything that would point checkov at a platform, an account,
    or change what it scans, and with the platform mapping download switched off."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("BC_", "CKV_", "CHECKOV_", "PRISMA_"))
        and name not in {"DOWNLOAD_EXTERNAL_MODULES", "EXTERNAL_MODULES_DIR", "LOG_LEVEL"}
    }
    env["BC_SKIP_MAPPING"] = "TRUE"
    return env


def run_checkov(*args: str) -> subprocess.CompletedProcess[str]:
    if importlib.util.find_spec("checkov") is None:
        pytest.fail(
            "checkov is not installed in this virtualenv: `make` installs the dev extras of "
            "pyproject.toml, which pin it"
        )
    try:
        return subprocess.run(
            [*CHECKOV, *args],
            cwd=REPO,
            env=checkov_env(),
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(
            f"checkov {' '.join(args)} ran over {TIMEOUT_S} s: is it waiting on the network?"
        )


def scan(directory: Path) -> list[dict]:
    """checkov's failed checks for one directory, with the repository's config, offline."""
    result = run_checkov(
        "--config-file", str(CONFIG), *OFFLINE, "--directory", str(directory), "--output", "json"
    )
    # 0: all passed, 1: some failed; anything else (2) is checkov itself failing.
    assert result.returncode in (0, 1), (
        f"checkov exited {result.returncode}\n{result.stderr[-4000:]}"
    )
    try:
        reports = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(
            f"checkov printed no JSON report\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
        )
    reports = reports if isinstance(reports, list) else [reports]
    failed, unparsed = [], []
    for report in reports:
        results = report.get("results", {})
        failed += results.get("failed_checks", [])
        unparsed += results.get("parsing_errors", [])
    # A file checkov can't parse is a file it didn't check.
    assert not unparsed, f"checkov could not parse: {unparsed}"
    return failed


def describe(check: dict) -> str:
    """`CKV_AWS_27 aws_sqs_queue.failures modules/x/main.tf:12-20 (title)`."""
    path = Path(check.get("file_abs_path") or check["file_path"])
    if path.is_relative_to(REPO):
        path = path.relative_to(REPO)
    first, last = check.get("file_line_range") or [0, 0]
    return f"{check['check_id']} {check['resource']} {path}:{first}-{last} ({check['check_name']})"


@pytest.fixture(scope="module", params=SCANNED)
def failed_checks(request) -> tuple[str, list[str]]:
    """One checkov run per directory that holds Terraform, shared by the tests of this module:
    the directory and its failed checks, described."""
    name = request.param
    directory = REPO / name
    # Every scanned directory holds Terraform now: one without would be a gap, not a pass.
    assert any(directory.rglob("*.tf")), f"{name}/ holds no .tf files for checkov to scan"
    return name, sorted(describe(check) for check in scan(directory))


def test_terraform_passes_every_check_not_skipped_in_the_config(failed_checks):
    name, lines = failed_checks
    assert not lines, (
        f"checkov: {len(lines)} failed check(s) in {name}/ (fix the resource, or add an inline "
        "`# checkov:skip=ID: reason` to it; .checkov.yaml is for checks that never fit):\n  "
        + "\n  ".join(lines)
    )


# --- the config itself ---------------------------------------------------------------------


def skip_entries(text: str) -> dict[str, str]:
    """Each `skip-check` entry of .checkov.yaml and its justification: the comment lines right
    above it (after the previous entry) plus any comment on its own line."""
    entries: dict[str, str] = {}
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"^skip-check:\s*(#.*)?$", line))
    comment: list[str] = []
    for line in lines[start + 1 :]:
        stripped = line.strip()
        if line and not line[0].isspace():
            break  # the next top-level key
        if not stripped:
            continue
        if stripped.startswith("#"):
            comment.append(stripped.lstrip("#").strip())
            continue
        match = re.match(r"^-\s*([^\s#]+)\s*(?:#\s*(.*))?$", stripped)
        assert match, f"unexpected line in skip-check: {line!r}"
        check_id, inline = match.groups()
        assert check_id not in entries, f"{check_id} is listed twice in skip-check"
        entries[check_id] = " ".join([*comment, inline or ""]).strip()
        comment = []
    return entries


@pytest.fixture(scope="module")
def config_text() -> str:
    return CONFIG.read_text()


@pytest.fixture(scope="module")
def known_check_ids() -> set[str]:
    """Every Terraform check ID this checkov knows, from `checkov --list`, offline."""
    result = run_checkov("--list", *OFFLINE)
    assert result.returncode == 0, result.stderr[-4000:]
    ids = {
        cells[2].strip()
        for line in result.stdout.splitlines()
        if line.startswith("|") and len(cells := line.split("|")) > 3
    }
    ids = {check_id for check_id in ids if CHECK_ID.match(check_id)}
    assert len(ids) > 500, f"checkov --list gave only {len(ids)} check IDs: its format changed?"
    return ids


def test_config_scans_terraform_offline(config_text):
    config = yaml.safe_load(config_text)
    assert config["framework"] == ["terraform"]
    assert config["skip-download"] is True
    assert config["download-external-modules"] is False
    assert set(config["directory"]) == set(SCANNED)
    assert not {"bc-api-key", "prisma-api-url", "repo-id"} & set(config)


def test_every_skip_is_a_known_check_with_a_justification(config_text, known_check_ids):
    entries = skip_entries(config_text)
    # The line parser and YAML agree, so no entry hides in a form the parser doesn't read.
    assert list(entries) == yaml.safe_load(config_text)["skip-check"]
    unjustified = [check_id for check_id, why in entries.items() if len(why.split()) < 5]
    assert not unjustified, f"skip-check entries without a justification comment: {unjustified}"
    malformed = [check_id for check_id in entries if not CHECK_ID.match(check_id)]
    assert not malformed, f"skip-check entries that are not single check IDs: {malformed}"
    unknown = sorted(set(entries) - known_check_ids)
    assert not unknown, f"skip-check names checks this checkov doesn't have: {unknown}"


# --- the gate catches something ------------------------------------------------------------

BAD_TERRAFORM = textwrap.dedent(
    """\
    resource "aws_sqs_queue" "failures" {
      name = "ddbstreamcn"
    }

    resource "aws_dynamodb_table" "user" {
      name         = "user-cn"
      billing_mode = "PAY_PER_REQUEST"
      hash_key     = "PK"

      attribute {
        name = "PK"
        type = "S"
      }
    }

    resource "aws_lambda_function" "sender" {
      function_name = "sender"
      role          = "arn:aws-cn:iam::123456789012:role/sender"
      handler       = "sender.lambda_handler"
      runtime       = "python3.12"
      filename      = "sender.zip"
    }
    """
)


def test_the_gate_fails_unencrypted_queues_and_tables_without_pitr(tmp_path):
    (tmp_path / "main.tf").write_text(BAD_TERRAFORM)
    failed = scan(tmp_path)
    found = {(check["check_id"], check["resource"]) for check in failed}
    assert ("CKV_AWS_27", "aws_sqs_queue.failures") in found  # SQS encryption
    assert ("CKV_AWS_28", "aws_dynamodb_table.user") in found  # point-in-time recovery
    # The config's skips are in effect: a Lambda without a DLQ is not reported.
    assert "CKV_AWS_116" not in {check_id for check_id, _ in found}
    # A failure names the check, the resource and where it is.
    lines = {describe(check) for check in failed}
    assert any(
        line.startswith("CKV_AWS_27 aws_sqs_queue.failures ") and "main.tf:1-3 " in line
        for line in lines
    ), lines
