"""Plan inventories: the values a plan must contain, matched as a subset.

An inventory is YAML with up to three sections:

    values:            # resource address -> attributes that must appear in its planned values
      module.node.aws_dynamodb_table.this:
        billing_mode: PAY_PER_REQUEST
    counts:            # resource type -> how many the plan creates
      aws_dynamodb_table: 1
    outputs:           # output name -> known value
      table_name: user-cn

Maps match when every expected key matches; lists when they have the same length and match
element by element; anything else by equality. Volatile values (file names, hashes) never
belong in an inventory. Regenerate one from a plan with:

    python -m tests.terraform.inventory ROOT_DIR TFVARS [-o INVENTORY.yaml]

A scenario whose TFVARS has a sibling <name>.account.json (the simulated account: tables an
application's own Terraform created) is planned against a copy of that account.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

# Attributes that change from build to build; left out of generated inventories.
VOLATILE = {"filename", "source_code_hash", "etag", "source_hash", "output_base64sha256"}


def mismatches(expected: Any, actual: Any, path: str) -> list[str]:
    """Every place `actual` does not contain `expected`, as 'path: wanted X, planned Y'."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: wanted a map, planned {actual!r}"]
        found = []
        for key, value in expected.items():
            if key not in actual:
                found.append(f"{path}.{key}: wanted {value!r}, not in the plan")
            else:
                found.extend(mismatches(value, actual[key], f"{path}.{key}"))
        return found
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{path}: wanted {expected!r}, planned {actual!r}"]
        return [
            m
            for i, (e, a) in enumerate(zip(expected, actual, strict=True))
            for m in mismatches(e, a, f"{path}[{i}]")
        ]
    if expected != actual:
        return [f"{path}: wanted {expected!r}, planned {actual!r}"]
    return []


def resource_type(address: str) -> str:
    """module.node.aws_sqs_queue.failures["sender"] -> aws_sqs_queue (a key may hold dots)."""
    return re.sub(r"\[[^\[\]]*\]$", "", address).split(".")[-2]


def planned_resources(plan: Any) -> dict[str, dict[str, Any]]:
    """Every resource the plan creates or changes, by full address, with its known values."""
    return {
        address: change["change"].get("after") or {}
        for address, change in plan.resource_changes.items()
        if change["change"]["actions"] != ["no-op"] and change.get("mode") == "managed"
    }


def planned_outputs(plan: Any) -> dict[str, Any]:
    """Root outputs whose value is known at plan time."""
    outputs = plan.planned_values.get("outputs", {})
    return {name: output["value"] for name, output in outputs.items() if "value" in output}


def check(plan: Any, inventory: dict[str, Any]) -> list[str]:
    """What the plan lacks of the inventory; empty when it matches."""
    resources = planned_resources(plan)
    problems = []
    for address, values in (inventory.get("values") or {}).items():
        if address not in resources:
            problems.append(f"{address}: not in the plan (planned: {', '.join(sorted(resources))})")
        else:
            problems.extend(mismatches(values, resources[address], address))
    counts = Counter(resource_type(address) for address in resources)
    for kind, count in (inventory.get("counts") or {}).items():
        if counts.get(kind, 0) != count:
            problems.append(f"counts.{kind}: wanted {count}, planned {counts.get(kind, 0)}")
    problems.extend(mismatches(inventory.get("outputs") or {}, planned_outputs(plan), "outputs"))
    return problems


def generate(plan: Any) -> dict[str, Any]:
    resources = planned_resources(plan)
    values = {
        address: {
            k: v for k, v in sorted(after.items()) if k not in VOLATILE and v not in (None, [], {})
        }
        for address, after in sorted(resources.items())
    }
    counts = dict(sorted(Counter(resource_type(address) for address in resources).items()))
    return {"values": values, "counts": counts, "outputs": planned_outputs(plan)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a plan inventory for a root configuration.")
    parser.add_argument("root", type=Path, help="the root configuration's directory")
    parser.add_argument("tfvars", type=Path, help="the scenario's .tfvars file")
    parser.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    args = parser.parse_args(argv)
    from tests.terraform.harness import REPO, copy_configuration, prepare, repository_copy
    from tests.terraform.stub_aws_provider import ACCOUNT_STATE_ENV

    root = args.root.resolve()
    account = args.tfvars.with_name(args.tfvars.name.removesuffix(".tfvars") + ".account.json")
    with tempfile.TemporaryDirectory() as scratch:
        terraform = prepare(Path(scratch) / "terraform")
        if account.exists():
            copy = Path(scratch) / account.name
            shutil.copy(account, copy)
            environment = {**terraform.env, ACCOUNT_STATE_ENV: str(copy)}
            terraform = dataclasses.replace(terraform, env=environment)
        if root.parent in (REPO / "envs", REPO / "examples"):
            # An environment or an example plans from the whole repository: modules, defaults,
            # built zips.
            copy = repository_copy(Path(scratch) / "repository")
            workdir = copy / root.parent.name / root.name
        else:
            # Copy the tree above the root too, so relative module sources resolve.
            workdir = copy_configuration(root.parent, Path(scratch) / "tree") / root.name
        tf = terraform.test(workdir)
        tf.setup()
        plan = tf.plan(output=True, tf_var_file=str(args.tfvars.resolve()))
    text = yaml.safe_dump(generate(plan), sort_keys=False, width=100)
    if args.output:
        args.output.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
