"""examples/: a minimal configuration per module, planned from a copy of the repository whose
dist/ is freshly built. Each plan matches its inventory (scenarios/example-<module>.yaml), and
what module_docs.py reads of each module agrees with Terraform's own view of it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import tftest
import yaml

from tests.terraform import inventory, module_docs
from tests.terraform.harness import HERE, REPO, Terraform

EXAMPLES = ("replication_node", "proxy_host")
MODULE_CALLS = {"replication_node": "node", "proxy_host": "proxy"}


def test_each_module_has_an_example():
    modules = sorted(path.name for path in (REPO / "modules").iterdir() if path.is_dir())
    examples = sorted(path.name for path in (REPO / "examples").iterdir() if path.is_dir())
    assert modules == examples == sorted(EXAMPLES)


@pytest.fixture(scope="module")
def plan(terraform: Terraform, repository: Path) -> Callable[[str], tftest.TerraformPlanOutput]:
    plans: dict[str, tftest.TerraformPlanOutput] = {}

    def get(example: str) -> tftest.TerraformPlanOutput:
        if example not in plans:
            tf = terraform.test(repository / "examples" / example)
            tf.setup()
            plans[example] = tf.plan(output=True)
        return plans[example]

    return get


@pytest.mark.parametrize("example", EXAMPLES)
def test_each_example_plans_what_its_inventory_says(plan, example):
    expected = yaml.safe_load((HERE / "scenarios" / f"example-{example}.yaml").read_text())
    assert inventory.check(plan(example), expected) == []


@pytest.mark.parametrize("example", EXAMPLES)
def test_the_docs_reader_agrees_with_terraform(plan, example):
    """The module's inputs and outputs as module_docs.py reads them from the .tf files, and as
    Terraform describes the module in the example's plan: the same names, descriptions,
    sensitivity, and defaults where a default is a plain value."""
    call = plan(example).configuration["root_module"]["module_calls"][MODULE_CALLS[example]]
    described = call["module"]
    directory = REPO / "modules" / example
    variables = {v.name: v for v in module_docs.variables(directory)}
    assert list(variables) and set(variables) == set(described["variables"])
    for name, variable in variables.items():
        terraform_view = described["variables"][name]
        assert variable.description == terraform_view.get("description"), name
        assert variable.sensitive == terraform_view.get("sensitive", False), name
        if variable.default is None:
            assert "default" not in terraform_view, f"{name} is required, Terraform says not"
        elif variable.default == "null":
            assert terraform_view.get("default") is None, name
        elif not variable.default.startswith(("{", "[")):  # a literal: number, string, bool
            assert json.loads(variable.default) == terraform_view["default"], name
    outputs = {o.name: o for o in module_docs.outputs(directory)}
    assert set(outputs) == set(described["outputs"])
    for name, output in outputs.items():
        assert output.description == described["outputs"][name].get("description"), name
        assert output.sensitive == described["outputs"][name].get("sensitive", False), name
