"""Reconcile the orders service (real PostgreSQL source) with real reporting databases (DuckDB file and
PostgreSQL): a correct copy reconciles to zero; a broken row, a deleted row, an extra row, a soft-deleted
live row and an unmappable source row are reported exactly."""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal

import psycopg
import pytest
from reconcile_sources import T0, load_source, make_orders, oracle, write_reporting

from pipelines.apply.duckdb_backend import DuckDbBackend
from pipelines.apply.postgres_backend import PostgresBackend
from pipelines.reconcile import ReconcileError, exit_code, reconcile, reconcile_tables, render
from pipelines.reconcile.reading import PostgresSource
from tests.support.databases import free_port
from tests.support.estate import bundled_estate, settings_for

pytestmark = pytest.mark.integration

UTC = dt.UTC

def break_reporting(backend, contracts, extra_row_v2: tuple) -> None:
    now = dt.datetime.now(UTC)
    backend.execute("UPDATE reporting.orders_v2 SET total_amount = total_amount + 1 WHERE order_id = 7")
    backend.execute("DELETE FROM reporting.orders_v2 WHERE order_id = 9")
    write_reporting(backend, contracts, {"orders_v2": [extra_row_v2]})
    backend.execute("UPDATE reporting.orders_v1 SET _deleted_at = ? WHERE order_id = 4", (now,))
    backend.execute("UPDATE reporting.orders_v1 SET updated_at = updated_at + INTERVAL '1 microsecond' "
                    "WHERE order_id = 11")
    write_reporting(backend, contracts, {"orders_v1": [(998, 1, "PAID", Decimal("1.00"), "EUR", T0, T0)]})
    backend.execute("UPDATE reporting.orders_v1 SET _deleted_at = ? WHERE order_id = 998", (now,))
    backend.execute("UPDATE reporting.order_lines_v1 SET sku = 'OTHER' WHERE order_id = 2 AND line_number = 2")


def by_table(results):
    return {r.table: r for r in results}


@pytest.fixture(params=["duckdb", "postgres"])
def reporting(request, tmp_path, new_pg_db):
    """(open a backend for writing, open one for reconciling) on a fresh reporting database."""
    if request.param == "duckdb":
        path = tmp_path / "reportingdb.duckdb"
        return (lambda: DuckDbBackend(path)), (lambda: DuckDbBackend(path, read_only=True))
    conninfo = new_pg_db("reporting")
    return (lambda: PostgresBackend(conninfo)), (lambda: PostgresBackend(conninfo))


def test_reconcile_orders_reports_exactly_the_broken_rows(reporting, new_pg_db, contracts, projections):
    open_writer, open_reader = reporting
    source = new_pg_db("orders_src")
    orders, lines = make_orders()
    load_source(source, orders, lines)
    expected = oracle(orders, lines)

    writer = open_writer()
    try:
        write_reporting(writer, contracts, expected)
    finally:
        writer.close()

    def run(show: int = 10):
        reader = open_reader()
        try:
            return by_table(reconcile_tables(projections, contracts, reader, lambda _svc: PostgresSource(source),
                                             tables=["orders", "order_lines_v1"], show=show))
        finally:
            reader.close()

    clean = run()
    assert set(clean) == {"orders_v1", "orders_v2", "order_lines_v1"}
    for r in clean.values():
        assert r.error is None, r.error
        assert (r.missing, r.extra, r.different, r.invalid) == (0, 0, 0, 0), r
        assert r.source_rows == r.reporting_rows
    assert clean["orders_v1"].source_rows == 40
    assert clean["order_lines_v1"].source_rows == len(lines)
    assert exit_code(clean.values()) == 0

    writer = open_writer()
    try:
        break_reporting(writer, contracts, (999, 5, "PAID", Decimal("3.10"), "EUR", T0, T0, "web"))
    finally:
        writer.close()
    with psycopg.connect(source, autocommit=True) as conn:  # a state the projection has no mapping for
        conn.execute("INSERT INTO orders (id, customer_ref, state_code, total_cents, currency_iso, created_ts, "
                     "modified_ts, terms_snapshot) VALUES (41, 1, 50, 100, 'eur', now(), now(), 't')")

    res = run()
    v1, v2, ol = res["orders_v1"], res["orders_v2"], res["order_lines_v1"]
    assert (v2.missing, v2.extra, v2.different, v2.invalid) == (1, 1, 1, 1)
    assert [s.key for s in v2.missing_samples] == [(("order_id", "9"),)]
    assert [s.key for s in v2.extra_samples] == [(("order_id", "999"),)]
    (diff,) = v2.different_samples
    assert diff.key == (("order_id", "7"),)
    assert [(c.column, c.expected, c.actual) for c in diff.columns] == [("total_amount", "13.94", "14.94")]
    (bad,) = v2.invalid_samples
    assert bad.key == (("order_id", "41"),) and "50" in bad.reason and bad.reason.startswith("project")

    assert (v1.missing, v1.extra, v1.different, v1.invalid) == (1, 0, 1, 1)
    assert [s.key for s in v1.missing_samples] == [(("order_id", "4"),)]
    (diff,) = v1.different_samples
    assert [c.column for c in diff.columns] == ["updated_at"]
    assert diff.columns[0].actual.endswith("Z") and diff.columns[0].expected != diff.columns[0].actual
    assert v1.reporting_rows == 39  # 40 stored, 4 soft-deleted; 998 soft-deleted: not live

    assert (ol.missing, ol.extra, ol.different, ol.invalid) == (0, 0, 1, 0)
    assert ol.different_samples[0].key == (("order_id", "2"), ("line_number", "2"))
    assert [(c.column, c.actual) for c in ol.different_samples[0].columns] == [("sku", "OTHER")]
    assert exit_code(res.values()) == 1

    few = run(show=0)
    assert few["orders_v2"].different == 1 and few["orders_v2"].different_samples == []
    text = _text(render(list(res.values())))
    assert "orders_v2: 1 different" in text and "total_amount: expected 13.94, stored 14.94" in text


def _text(renderable) -> str:
    from rich.console import Console

    console = Console(width=200, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(renderable)
    return console.export_text()


def test_reconcile_through_settings_with_the_estate_credentials(pg_server, tmp_path, contracts):
    """`reconcile(settings)` finds the orders database where the estate file declares it and logs in as
    the service's declared reader (password from the estate's env_file), and reads DuckDB read-only;
    unknown tables fail before connecting; an unreachable source is an error (exit 2)."""
    cluster, _ = pg_server
    base = bundled_estate()
    reader, password, database = "orders_reader_estate", "orders-app-secret", "orders_estate"
    cluster.psql(f"CREATE ROLE {reader} LOGIN PASSWORD '{password}'")
    cluster.psql(f"CREATE DATABASE {database} OWNER {reader}")
    conninfo = f"host=127.0.0.1 port={cluster.port} user={reader} password={password} dbname={database}"
    orders, lines = make_orders(12)
    load_source(conninfo, orders, lines)

    state = tmp_path / "state"
    state.mkdir()
    # every service's reader password in the estate's env_file, as `reporting stack up` leaves them
    refs = {s.reader.password.env for s in base.services}
    assert None not in refs, "the bundled estate declares its reader passwords as environment references"
    (state / "secrets.env").write_text("".join(f"{name}={password}\n" for name in sorted(refs)))
    duck = tmp_path / "rep.duckdb"
    closed = free_port()  # nothing listens there: every other service is unreachable
    changes = {f"services.{s.name}.port": closed for s in base.services if s.name != "orders"}
    changes.update({"state_dir": str(state), "reporting.backend": "duckdb", "reporting.duckdb.path": str(duck),
                    "services.orders.host": "127.0.0.1", "services.orders.port": cluster.port,
                    "services.orders.database": database, "services.orders.reader.user": reader})
    settings = settings_for(tmp_path, **changes)
    assert settings.secrets.env_file == state / "secrets.env"

    with pytest.raises(ReconcileError, match="no reporting database"):
        reconcile(settings)
    writer = DuckDbBackend(duck)
    write_reporting(writer, contracts, oracle(orders, lines))
    writer.close()
    with pytest.raises(ReconcileError, match="unknown contract table 'nope'"):
        reconcile(settings, ["nope"])

    results = by_table(reconcile(settings, ["orders", "order_lines"]))
    assert results["orders_v2"].ok and results["orders_v2"].source_rows == 12
    assert results["order_lines_v1"].ok
    assert exit_code(results.values()) == 0
    explicit = by_table(reconcile(settings, ["customers"]))
    assert explicit["customers_v1"].status == "error" and exit_code(explicit.values()) == 2
    assert f"127.0.0.1:{closed}/" in explicit["customers_v1"].error, explicit["customers_v1"].error
