"""Terraform plan fixtures: one Terraform and one stand-in provider per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.terraform.harness import HERE, Terraform, copy_configuration, prepare, repository_copy

FIXTURES = HERE / "fixtures"


@pytest.fixture(scope="session")
def terraform(tmp_path_factory) -> Terraform:
    return prepare(tmp_path_factory.mktemp("terraform"))


@pytest.fixture
def fixture_tree(tmp_path) -> Path:
    """A fresh copy of the harness fixtures (modules and root), safe to edit."""
    return copy_configuration(FIXTURES, tmp_path / "fixtures")


@pytest.fixture(scope="session")
def repository(tmp_path_factory) -> Path:
    """A copy of the repository's Terraform (modules, envs, examples) with dist/ freshly built,
    shared by the tests that plan it; a test that changes it copies it first."""
    return repository_copy(tmp_path_factory.mktemp("environments") / "repository")
