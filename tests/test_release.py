"""The release's paperwork agrees with itself: the changelog's latest release is the version
pyproject.toml builds, and the license file is there and declared."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _released_versions() -> list[str]:
    text = (ROOT / "CHANGELOG.md").read_text()
    return re.findall(r"^## \[?(\d+\.\d+\.\d+)\]?(?: - \d{4}-\d{2}-\d{2})?$", text, re.M)


def test_the_latest_release_in_the_changelog_is_the_version_built():
    released = _released_versions()
    assert released, "CHANGELOG.md names no released version (## X.Y.Z - date)"
    assert released[0] == _project()["version"], (
        f"CHANGELOG.md's latest release is {released[0]} but pyproject.toml builds "
        f"{_project()['version']}: release both together"
    )


def test_the_changelog_keeps_unreleased_work_on_top():
    text = (ROOT / "CHANGELOG.md").read_text()
    headings = re.findall(r"^## (.+)$", text, re.M)
    assert headings[0].strip("[]") == "Unreleased"


def test_the_license_exists_and_pyproject_declares_it():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("Copyright 2026 The ddb-cross-partition-replication authors\n")
    assert "Apache License\n                           Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    declared = _project()["license"]
    spdx = declared if isinstance(declared, str) else declared.get("text")
    assert spdx == "Apache-2.0"
