"""`reporting contract check` checks the estate's projections against its contracts: a contract table
fed by two services, or a target that is no live contract, is refused naming file and line."""

from __future__ import annotations

import shutil

import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.config.load import BUNDLED_ESTATE
from tests.support.estate import bundled_estate, write_estate

pytestmark = pytest.mark.unit


def _estate_with_second_feeder(tmp_path, target: str):
    """A copy of the bundled estate where the payments projection also feeds `target`."""
    connectors = tmp_path / "connectors"
    shutil.copytree(BUNDLED_ESTATE.parent / "connectors", connectors, ignore=shutil.ignore_patterns("jvm", "pom.xml"))
    proj = connectors / "payments" / "projection.yaml"
    text = proj.read_text()
    block = text[text.index("      payments_v1:"):]
    proj.write_text(text + block.replace("payments_v1:", f"{target}:"))
    return write_estate(tmp_path / "estate", **{"services.payments.projection": str(proj)})


def test_a_contract_fed_by_a_second_service_is_refused(tmp_path):
    from pipelines.projection import load_estate_projections

    fed = next(t.physical_name for tp in load_estate_projections(bundled_estate()).values()
               if tp.service != "payments" for t in tp.targets)  # a contract another service feeds
    result = CliRunner().invoke(app, ["--estate", str(_estate_with_second_feeder(tmp_path, fed)), "contract", "check"])
    assert result.exit_code == 2, result.output
    assert f"target {fed} is already fed by" in result.output and "projection.yaml:" in result.output


def test_a_target_that_is_no_contract_is_refused(tmp_path):
    result = CliRunner().invoke(app, ["--estate", str(_estate_with_second_feeder(tmp_path, "nosuch_v1")),
                                      "contract", "check"])
    assert result.exit_code == 2, result.output
    assert "target nosuch_v1 is not a live contract table" in result.output
