"""Fixtures for contract tests: a private copy of reporting_schema/ per test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from contract_testkit import REPO_SCHEMA


@pytest.fixture
def schema_root(tmp_path: Path) -> Path:
    """A copy of the repo's contracts and lock, safe to edit."""
    root = tmp_path / "reporting_schema"
    shutil.copytree(REPO_SCHEMA, root)
    return root
