"""`reporting contract ...` through typer's CliRunner: output and exit codes (0 ok, 1 breaking, 2 invalid)."""

from __future__ import annotations

from pathlib import Path

import pytest
from contract_testkit import REPO_SCHEMA, edit
from typer.testing import CliRunner

from pipelines.contract.cli import app

pytestmark = pytest.mark.unit

GOLDEN = Path(__file__).parent / "golden"
runner = CliRunner()


def test_check_on_the_repo_passes() -> None:
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 0, result.output
    assert "nothing to publish" in result.stdout


def test_check_names_table_column_and_rule_of_a_breaking_change(schema_root: Path) -> None:
    edit(schema_root / "orders" / "v1.yaml", "physicalType: varchar(3)", "physicalType: varchar(2)")
    result = runner.invoke(app, ["check", "--root", str(schema_root)])
    assert result.exit_code == 1
    assert "BREAKING   type-narrowed" in result.stdout
    assert "orders_v1.currency: type varchar(3) -> varchar(2)" in result.stdout
    assert "new major version" in result.stderr


def test_check_with_compatible_changes_passes_and_asks_to_publish(schema_root: Path) -> None:
    edit(schema_root / "shipments" / "v1.yaml", "physicalType: varchar(64)", "physicalType: varchar(128)")
    result = runner.invoke(app, ["check", "--root", str(schema_root)])
    assert result.exit_code == 0, result.output
    assert "type-widened" in result.stdout and "reporting contract publish" in result.stdout


def test_invalid_contract_exits_2_with_one_line(schema_root: Path) -> None:
    edit(schema_root / "customers" / "v1.yaml", "      - name: email", "      - name: \"email; DROP TABLE x\"")
    for command in (["check"], ["publish"], ["docs"]):
        result = runner.invoke(app, [*command, "--root", str(schema_root)])
        assert result.exit_code == 2, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1
        assert "customers/v1.yaml:" in lines[0] and "not a plain SQL identifier" in lines[0]


def test_publish_refuses_breaking_change(schema_root: Path) -> None:
    edit(schema_root / "products" / "v1.yaml", "        value: soft", "        value: hard")
    before = (schema_root / "contracts.lock").read_text()
    result = runner.invoke(app, ["publish", "--root", str(schema_root)])
    assert result.exit_code == 1
    assert "delete-semantics-changed" in result.stdout
    assert "publish refused" in result.stderr
    assert (schema_root / "contracts.lock").read_text() == before


def test_publish_writes_the_lock(schema_root: Path) -> None:
    edit(schema_root / "products" / "v1.yaml", "Release title.", "Release title as printed on the sleeve.")
    result = runner.invoke(app, ["publish", "--root", str(schema_root)])
    assert result.exit_code == 0, result.output
    assert runner.invoke(app, ["check", "--root", str(schema_root)]).exit_code == 0
    assert "Release title as printed" in (schema_root / "contracts.lock").read_text()


@pytest.mark.parametrize(("case", "code"), [("05_column_removed", 1), ("03_new_optional_column", 0),
                                            ("01_no_change", 0), ("28_table_removed", 1)])
def test_diff_files_exit_code(case: str, code: int) -> None:
    result = runner.invoke(app, ["diff", str(GOLDEN / case / "old.yaml"), str(GOLDEN / case / "new.yaml")])
    assert result.exit_code == code, result.output


def test_diff_folders(schema_root: Path) -> None:
    edit(schema_root / "payments" / "v1.yaml", "        required: false\n", "        required: true\n")
    result = runner.invoke(app, ["diff", str(REPO_SCHEMA), str(schema_root)])
    assert result.exit_code == 0, result.output
    assert "COMPATIBLE column-made-required" in result.stdout
    assert "payments_v1.captured_at" in result.stdout


def test_diff_missing_file_is_invalid_input(tmp_path: Path) -> None:
    result = runner.invoke(app, ["diff", str(tmp_path / "nope.yaml"), str(REPO_SCHEMA)])
    assert result.exit_code == 2
    assert "nope.yaml: no such file or folder" in result.stderr


def test_docs_to_stdout_and_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["docs"])
    assert result.exit_code == 0
    assert result.stdout.startswith("# Reporting data catalog")
    out = tmp_path / "site" / "catalog.md"
    result = runner.invoke(app, ["docs", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("# Reporting data catalog")
