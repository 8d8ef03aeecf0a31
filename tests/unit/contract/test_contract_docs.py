"""The Markdown catalog for BI users."""

from __future__ import annotations

import pytest

from pipelines.contract.docs import render_catalog
from pipelines.contract.model import load_contracts

pytestmark = pytest.mark.unit


def test_catalog_lists_every_table_with_grain_owner_and_columns() -> None:
    contracts = load_contracts()
    text = render_catalog(contracts)
    for c in contracts:
        assert f"## {c.physical_name}" in text
        assert f"`reporting.{c.physical_name}`" in text
        assert c.grain in text
        for col in c.columns:
            assert f"| `{col.name}` | `{col.physical_type}` |" in text
    assert "| `email` | `varchar(254)` | required | pii |" in text
    assert "`PLACED`, `PAID`, `PACKED`, `SHIPPED`, `CANCELLED`, `REFUNDED`" in text
    assert "deprecated (may be dropped after 2027-06-30), use orders_v2" in text
    assert "- **Deletes:** hard" in text  # stock_levels
    assert "| `_source_position` | `bigint` |" in text
    assert "changes visible within 5 minutes" in text


def test_catalog_is_deterministic_and_escapes_table_cells() -> None:
    contracts = load_contracts()
    assert render_catalog(contracts) == render_catalog(list(reversed(contracts)))
    import dataclasses

    orders = next(c for c in contracts if c.physical_name == "orders_v2")
    col = dataclasses.replace(orders.columns[0], description="a | b")
    text = render_catalog([dataclasses.replace(orders, columns=(col, *orders.columns[1:]))])
    assert "a \\| b" in text
