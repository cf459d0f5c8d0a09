"""Each layer stands only on the ones below it: the engine on nothing of ours, deployment/ on the
engine, the operator tools and the emulator each on those two and never on each other, and the
demo and the fault campaigns on both. Read from the source's imports, so a new module can't slip
past."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = {"replication", "deployment", "emulator", "tools", "demo", "chaos", "sender", "replicator"}
ALLOWED = {
    "lambda": {"replication"},
    "deployment": {"replication", "deployment"},
    "tools": {"replication", "deployment", "tools"},
    "emulator": {"replication", "deployment", "emulator"},
    "demo": {"replication", "deployment", "emulator", "tools", "demo"},
    "chaos": {"replication", "deployment", "emulator", "tools", "chaos"},
}


def our_imports(path: Path) -> set[str]:
    """The top-level packages of ours that a module imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & OURS


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_a_layer_imports_only_what_is_below_it(layer):
    modules = sorted((ROOT / layer).rglob("*.py"))
    assert modules, layer
    wrong = {
        str(path.relative_to(ROOT)): sorted(our_imports(path) - ALLOWED[layer]) for path in modules
    }
    assert {path: names for path, names in wrong.items() if names} == {}


def test_the_emulator_runs_no_operator_tool():
    # Not by import, nor as a program: the demo is what runs the load generator.
    for path in (ROOT / "emulator").rglob("*.py"):
        code = ast.parse(path.read_text())
        strings = [n.value for n in ast.walk(code) if isinstance(n, ast.Constant)]
        assert not [s for s in strings if isinstance(s, str) and "tools/" in s], path
