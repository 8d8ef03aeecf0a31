"""Fixtures for cdc unit tests (helpers live in cdc_helpers.py)."""

from __future__ import annotations

import pytest
from cdc_helpers import ORDERS_PROJECTION, orders_contracts

from pipelines.projection import load_projection


@pytest.fixture(scope="session")
def orders_projection():
    return load_projection(ORDERS_PROJECTION)


@pytest.fixture()
def contracts():
    return orders_contracts()
