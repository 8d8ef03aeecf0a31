"""Errors the DuckLake engine sends back become the product's duckdb exception classes (pure mapping)."""

from __future__ import annotations

import duckdb
import pytest

from pipelines.apply.retry import is_transient
from pipelines.ducklake.client import remote_error

pytestmark = pytest.mark.unit


def test_engine_errors_keep_their_duckdb_class():
    assert type(remote_error("BinderException", "no such column")) is duckdb.BinderException
    assert type(remote_error("IOException", "disk")) is duckdb.IOException
    assert type(remote_error("NoSuchThing", "x")) is duckdb.Error


def test_a_locked_sqlite_catalog_is_a_conflict_and_retried():
    # another process's commit held the SQLite catalog: DuckLake raises a plain Error
    exc = remote_error("Error", 'Failed to commit DuckLake transaction: database is locked')
    assert isinstance(exc, duckdb.TransactionException)
    assert is_transient(exc)
    assert not is_transient(remote_error("Error", "Catalog Error: Table with name x does not exist"))
