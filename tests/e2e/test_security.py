"""Credentials never leak: not into git, not into any log of the stack, not into any Kafka topic
(the broker's data files, including Kafka Connect's config topic), not into the reporting DB."""

from __future__ import annotations

import subprocess

import pytest

from pipelines.apply.runner import run_pipeline
from pipelines.settings import REPO_ROOT
from pipelines.stack import secrets

pytestmark = pytest.mark.e2e


def _needles(settings) -> dict[str, bytes]:
    values = secrets.load(settings)
    assert len(values) >= 8
    return {k: v.encode() for k, v in values.items() if len(v) >= 12}


def test_no_credential_in_git_logs_topics_or_reporting_db(stack):
    settings = stack.settings
    run_pipeline(settings=settings, until_caught_up=True, say=lambda _m: None, install_signals=False)
    needles = _needles(settings)
    scanned = 0
    skip_parts = {"jvm", "data"}  # jars; database data files (they hold salted hashes, not passwords)
    for path in settings.state_dir.rglob("*"):
        rel = path.relative_to(settings.state_dir)
        if not path.is_file() or path.name == "secrets.env":
            continue
        # Kafka's data dir holds every topic: scan it; skip only the databases' own files
        if skip_parts & set(rel.parts) and rel.parts[0] not in ("kafka",):
            continue
        blob = path.read_bytes()
        scanned += 1
        for name, secret in needles.items():
            assert secret not in blob, f"{name} found in {rel}"
    assert scanned > 20
    # the reporting DB file (DuckDB) and git-tracked files
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=True).stdout
    for rel in filter(None, tracked.split(b"\0")):
        path = REPO_ROOT / rel.decode()
        if path.is_file():
            blob = path.read_bytes()
            for name, secret in needles.items():
                assert secret not in blob, f"{name} found in git file {rel.decode()}"
