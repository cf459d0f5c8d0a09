"""The operator install stays slim: every operator command imports, and answers --help, with
only the project's base dependencies (`pip install .`). Everything that only the dev extra
brings (moto, checkov, pytest, hypothesis, Terraform's test kit and what they pull in) is
refused in a fresh interpreter, as it would be missing on an operator's machine."""

from __future__ import annotations

import importlib.metadata as metadata
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
# The modules behind the commands, and what they import (the engine and the shared package).
OPERATOR_MODULES = (
    "tools.ops",
    "tools.peer_keys",
    "tools.signing_keys",
    "tools.load_items",
    "tools.build_lambdas",
    "tools.state_bucket",
    "tools.preflight",
    *(f"tools.operations.{p.stem}" for p in (ROOT / "tools" / "operations").glob("[!_]*.py")),
    *(f"deployment.{p.stem}" for p in (ROOT / "deployment").glob("[!_]*.py")),
    *(f"replication.{p.stem}" for p in (ROOT / "lambda" / "replication").glob("[!_]*.py")),
)


def closure(requirements: list[str], extras: tuple[str, ...] = ()) -> set[str]:
    """The installed distributions these requirements bring in, their dependencies included."""
    found: set[str] = set()
    pending = [(Requirement(r), extras) for r in requirements]
    while pending:
        requirement, wanted = pending.pop()
        marker = requirement.marker
        if marker and not any(marker.evaluate({"extra": e}) for e in (*wanted, "")):
            continue
        name = canonicalize_name(requirement.name)
        key = f"{name}[{','.join(sorted(requirement.extras))}]"
        if key in found:
            continue
        found.add(key)
        found.add(name)
        try:
            requires = metadata.requires(requirement.name) or []
        except metadata.PackageNotFoundError:
            continue
        pending += [(Requirement(r), tuple(requirement.extras)) for r in requires]
    return {name for name in found if "[" not in name}


def dev_only_modules() -> set[str]:
    """Top-level modules whose every distribution only the dev extra brings in."""
    base = closure(PROJECT["dependencies"])
    dev_only = closure(PROJECT["optional-dependencies"]["dev"]) - base
    return {
        module
        for module, distributions in metadata.packages_distributions().items()
        if all(canonicalize_name(d) in dev_only for d in distributions)
    }


def test_the_dev_extra_brings_what_the_slim_install_must_do_without():
    blocked = dev_only_modules()
    assert {"moto", "checkov", "hypothesis", "pytest", "_pytest", "tftest", "yaml"} <= blocked
    assert not blocked & {"boto3", "botocore", "rich", "faker", "aws_lambda_powertools"}


def test_every_operator_command_runs_without_the_dev_packages():
    entry_points = PROJECT["scripts"]
    assert set(entry_points) == {
        "ddb-repl-ops",
        "ddb-repl-peer-keys",
        "ddb-repl-signing-keys",
        "ddb-repl-load",
        "ddb-repl-build",
        "ddb-repl-state-bucket",
        "ddb-repl-preflight",
    }
    script = f"""
import contextlib, importlib, io, json, sys

BLOCKED = set({sorted(dev_only_modules())!r})


class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"{{name}} is not in the operator install", name=name)
        return None


sys.meta_path.insert(0, Refuse())
for module in {list(OPERATOR_MODULES)!r}:
    importlib.import_module(module)
helps = {{}}
for command, target in {entry_points!r}.items():
    module, _, function = target.partition(":")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            getattr(importlib.import_module(module), function)(["--help"])
        except SystemExit as exit:
            helps[command] = (exit.code, out.getvalue()[:40])
loaded = sorted({{m.partition(".")[0] for m in sys.modules}} & BLOCKED)
print(json.dumps({{"helps": helps, "loaded": loaded}}))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.splitlines()[-1])
    assert answer["loaded"] == []
    assert set(answer["helps"]) == set(entry_points)
    for command, (code, text) in answer["helps"].items():
        assert code == 0, (command, text)
        assert re.match(r"usage: ", text), (command, text)
