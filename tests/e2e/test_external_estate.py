"""Against infrastructure it did not start: the product runs from a declared estate file only.

The module fixture starts, WITHOUT `reporting stack` (tests/support/external.py, with the stack's
server classes, in its own state folder and port range): a PostgreSQL source (`orders`, database
`ext_orders`) and a MariaDB source (`warehouse`) with non-default users (`ext_cdc`, `ext_reader`), a
reporting PostgreSQL with non-default database and roles (`ext_reporting`, `ext_writer`, `ext_bi`), a
Kafka broker that requires SASL (REPORTING_EXT_SASL_MECHANISM, default SCRAM-SHA-256; PLAIN works too)
and a Connect worker logging in to it. Secrets are `{file: ...}` and `{env: ...}` references.

Every product step is the real `reporting --estate FILE ...` command in a subprocess whose environment
has none of the e2e fixture's REPORTING_* variables: connectors apply, ingest, status, dlq list,
reconcile, sql, stream; then the Dagster definitions with REPORTING_ESTATE=FILE. Wrong passwords end a
command with one line naming what failed. At the end every server is stopped, no process of the
folder is left, and the folder is deleted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import psycopg
import pytest

from pipelines.settings import REPO_ROOT
from pipelines.stack.manager import leftover_processes
from tests.support.external import REPORTING_ROLES, WAREHOUSE_DB, ExternalEstate

pytestmark = pytest.mark.e2e

OFFSET = int(os.environ.get("REPORTING_EXT_PORT_OFFSET", "300"))
MECHANISM = os.environ.get("REPORTING_EXT_SASL_MECHANISM", "SCRAM-SHA-256")
ROOT = REPO_ROOT / ".state" / f"external-{OFFSET}"

EXPECTED = {"orders_v1": 19, "orders_v2": 19, "order_lines_v1": 38, "products_v1": 10, "stock_levels_v1": 10,
            "shipments_v1": 5}
"""Live rows after `write_rows`: 20 orders with 2 lines each, order 20 deleted (its lines cascade);
10 catalog items, 10 bins, 5 fulfilments."""


def _processes_under(path) -> list[str]:
    marker = str(path) + os.sep
    found = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        cmd = " ".join(p.info.get("cmdline") or [])
        if marker in cmd + os.sep and p.pid != os.getpid():
            found.append(f"{p.pid} {cmd[:160]}")
    return found


@pytest.fixture(scope="module")
def ext():
    estate = ExternalEstate(ROOT, mechanism=MECHANISM, port_offset=OFFSET)
    started = time.monotonic()
    try:
        estate.start(say=print)
        print(f"external estate up in {time.monotonic() - started:.0f}s: {estate.estate_file}")
        yield estate
    finally:
        infra = estate.infra() if estate.estate_file.exists() else None
        errors = estate.stop(say=print)
        left = (leftover_processes(infra) if infra else []) + _processes_under(ROOT)
        if not left:
            estate.wipe()
        assert not errors, f"stopping the external servers failed: {errors}"
        assert not left, f"processes left after stopping the external servers: {left}"
        assert not ROOT.exists()


def _ok(res: subprocess.CompletedProcess) -> str:
    out = res.stdout + res.stderr
    assert res.returncode == 0, f"exit {res.returncode}:\n{out}"
    return out


def _error_lines(res: subprocess.CompletedProcess) -> list[str]:
    return [line.strip() for line in (res.stdout + res.stderr).splitlines() if line.strip().startswith("error:")]


def write_rows(ext: ExternalEstate) -> None:
    """The services write their own databases (as their owners would)."""
    ext.orders_pg().psql("""
INSERT INTO orders (id, customer_ref, state_code, total_cents, currency_iso, created_ts, modified_ts, fraud_score,
                    internal_note, terms_snapshot, metadata)
SELECT g, 1000 + g, 10, 1999 * g, 'eur', now(), now(), 0.5, 'internal', repeat('terms ', 20), '{"channel": "web"}'
FROM generate_series(1, 20) g;
INSERT INTO order_lines (order_id, line_no, sku, qty, unit_price_cents, discount_cents)
SELECT o, l, 'VIN-000' || l, l, 999, 0 FROM generate_series(1, 20) o, generate_series(1, 2) l;
UPDATE orders SET state_code = 20, modified_ts = now() WHERE id <= 5;
DELETE FROM orders WHERE id = 20;
""", db="ext_orders")
    items = ",\n".join(f"('SKU-{i}', 'Release {i}', 'Artist {i}', '{('LP', 'CD', 'MC', 'DL')[i % 4]}', {1000 + i}, "
                       f"'eur', 1, 500, UTC_TIMESTAMP(6))" for i in range(1, 11))
    bins = ",\n".join(f"('SKU-{i}', 'BER-{i % 2}', {10 * i}, {i}, UTC_TIMESTAMP(6))" for i in range(1, 11))
    fulfilments = ",\n".join(f"({i}, {(1, 2, 3, 9)[i % 4]}, 'dhl', 'TRK{i}', 7, UTC_TIMESTAMP(6), NULL, NULL, "
                             "UTC_TIMESTAMP(6))" for i in range(1, 6))
    ext.warehouse_db().sql(f"""
USE {WAREHOUSE_DB};
INSERT INTO catalog_items (sku, release_title, artist_name, format_code, price_cents, currency_iso, listed,
                           supplier_cost_cents, modified_on) VALUES {items};
INSERT INTO bin_stock (sku, site_code, qty_on_hand, qty_allocated, modified_on) VALUES {bins};
INSERT INTO fulfilments (order_ref, stage_code, carrier_code, tracking_ref, picker_id, picked_on, packed_on,
                         shipped_on, modified_on) VALUES {fulfilments};
UPDATE catalog_items SET price_cents = price_cents + 100, modified_on = UTC_TIMESTAMP(6) WHERE sku = 'SKU-1';
""")


def live_counts(ext: ExternalEstate) -> dict[str, int]:
    out = {}
    with psycopg.connect(ext.writer_conninfo(), autocommit=True) as conn:
        for table in EXPECTED:
            soft = table.startswith("order")  # the orders service's contracts keep deleted rows (_deleted_at)
            where = " WHERE _deleted_at IS NULL" if soft else ""
            try:
                out[table] = conn.execute(f"SELECT count(*) FROM reporting.{table}{where}").fetchone()[0]
            except psycopg.errors.UndefinedTable:
                out[table] = -1
    return out


def test_connectors_apply_and_ingest_fill_the_reporting_postgres(ext):
    t0 = time.monotonic()
    out = _ok(ext.reporting("connectors", "apply", timeout=420))
    assert "connector orders-cdc: RUNNING" in out and "connector warehouse-cdc: RUNNING" in out, out
    print(f"connectors apply: {time.monotonic() - t0:.0f}s")
    write_rows(ext)
    t0 = time.monotonic()
    counts: dict[str, int] = {}
    runs = 0
    while runs < 24 and counts != EXPECTED:
        if runs:
            time.sleep(3)
        runs += 1
        _ok(ext.reporting("ingest", timeout=300))
        counts = live_counts(ext)
    print(f"ingest: {runs} run(s), {time.monotonic() - t0:.0f}s: {counts}")
    assert counts == EXPECTED
    with psycopg.connect(ext.writer_conninfo(), autocommit=True) as conn:
        paid = conn.execute("SELECT count(*) FROM reporting.orders_v2 WHERE order_status = 'PAID'").fetchone()[0]
        price = conn.execute("SELECT price FROM reporting.products_v1 WHERE sku = 'SKU-1'").fetchone()[0]
        owner = conn.execute("SELECT tableowner FROM pg_tables WHERE schemaname = 'reporting' "
                             "AND tablename = 'orders_v2'").fetchone()[0]
    assert paid == 5 and float(price) == 11.01 and owner == REPORTING_ROLES.writer


def test_status_dlq_reconcile_and_sql_as_the_bi_role(ext):
    out = _ok(ext.reporting("status", timeout=180))
    assert "orders_v2" in out and "shipments_v1" in out, out
    assert "Kafka not reachable" not in out, out  # the lag query authenticated with SASL
    assert "orders.public.orders" in out and "warehouse.warehouse.catalog_items" in out, out
    slot = [line for line in out.splitlines() if "reporting_orders" in line]  # read as ext_reader
    assert slot and "active" in slot[0] and "inactive" not in slot[0].lower(), out
    assert "replication slot unknown" not in out, out

    out = _ok(ext.reporting("dlq", "list", timeout=120))
    assert "0 dead letter(s) shown" in out, out

    out = _ok(ext.reporting("reconcile", timeout=300))
    assert "6 table(s) compared" in out and " 0 difference(s)" in out, out

    out = _ok(ext.reporting("sql", "-c", "select count(*) as n from reporting.orders_v2 where _deleted_at is null",
                            timeout=60))
    assert "19" in out.split(), out
    denied = ext.reporting("sql", "-c", "select count(*) from _pipeline.offsets", timeout=60)
    assert denied.returncode != 0 and "permission denied" in denied.stdout + denied.stderr


def test_stream_applies_a_new_row_then_stops_on_sigterm(ext):
    stream = ext.popen_reporting("stream")
    try:
        time.sleep(5)
        ext.orders_pg().psql("INSERT INTO orders (id, customer_ref, state_code, total_cents, currency_iso, created_ts,"
                             " modified_ts, terms_snapshot) VALUES (21, 1021, 10, 4200, 'gbp', now(), now(), 'x');",
                             db="ext_orders")
        t0 = time.monotonic()
        seen = False
        while time.monotonic() - t0 < 120 and stream.poll() is None:
            with psycopg.connect(ext.writer_conninfo(), autocommit=True) as conn:
                seen = bool(conn.execute("SELECT 1 FROM reporting.orders_v2 WHERE order_id = 21").fetchall())
            if seen:
                break
            time.sleep(1)
        print(f"stream: order 21 arrived after {time.monotonic() - t0:.1f}s")
        assert stream.poll() is None, f"stream exited early ({stream.returncode}): {stream.stdout.read()}"
        assert seen, "order 21 did not arrive in reporting.orders_v2 within 120s"
    finally:
        if stream.poll() is None:
            stream.send_signal(signal.SIGTERM)
        try:
            out, _ = stream.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            stream.kill()
            out, _ = stream.communicate()
            raise AssertionError(f"stream did not stop within 90s of SIGTERM:\n{out}") from None
    assert stream.returncode == 0, out
    assert "error" not in out.lower(), out


def test_dagster_definitions_load_and_reach_kafka_and_sources(ext):
    home = ext.cli_state / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    env = ext.cli_env(REPORTING_ESTATE=str(ext.estate_file), DAGSTER_HOME=str(home))
    dagster = str(os.path.join(os.path.dirname(sys.executable), "dagster"))
    res = subprocess.run([dagster, "definitions", "validate", "-m", "pipelines.definitions"], capture_output=True,
                         text=True, timeout=300, cwd=ext.root, env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    script = textwrap.dedent("""
        import dagster as dg
        from pipelines.definitions import defs, build_definitions
        from pipelines.defs.resources import ReportingResource
        from pipelines.defs.sensors import consumer_lag_sensor

        d = build_definitions()
        keys = {"/".join(k.path) for k in d.resolve_all_asset_keys()}
        print("connectors:", sorted(k for k in keys if k.startswith("connectors/")))
        print("reporting:", sorted(k for k in keys if k.startswith("reporting/")))
        instance = dg.DagsterInstance.ephemeral()
        ctx = dg.build_sensor_context(instance=instance, resources={"reporting": ReportingResource()})
        print("lag sensor:", consumer_lag_sensor(ctx))
        result = d.resolve_job_def("reconcile_job").execute_in_process(instance=instance, raise_on_error=False)
        checks = result.get_asset_check_evaluations()
        print("reconcile_job:", result.success, len(checks), sum(1 for c in checks if c.passed))
    """)
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600,
                         cwd=ext.root, env=env)
    out = res.stdout
    assert res.returncode == 0, res.stdout + res.stderr
    assert "connectors: ['connectors/orders', 'connectors/warehouse']" in out, out
    for table in EXPECTED:
        assert f"reporting/{table}" in out, out
    # (reporting/customers_v1 and payments_v1 appear too: sources of the copied dbt project's models)
    lag_line = next(line for line in out.splitlines() if line.startswith("lag sensor:"))
    assert "Kafka not reachable" not in lag_line and "consumer lag" in lag_line, out
    assert "reconcile_job: True 6 6" in out, out + res.stderr[-3000:]


def test_no_password_in_logs_configs_or_topics(ext):
    """The passwords are in their secret files and in the broker's own 0600 server.properties only."""
    needles = {name: value.encode() for name, value in ext.passwords.items()}
    allowed = {ext.root / "kafka" / "server.properties"}
    assert (ext.root / "kafka" / "server.properties").stat().st_mode & 0o777 == 0o600
    assert (ext.root / "connect" / "connect-distributed.properties").stat().st_mode & 0o777 == 0o600
    scanned = 0
    for path in ext.root.rglob("*"):
        rel = path.relative_to(ext.root)
        if not path.is_file() or rel.parts[0] == "secrets" or path in allowed:
            continue
        if rel.parts[0] in ("pg", "mariadb") and "data" in rel.parts:  # database files: salted hashes
            continue
        blob = path.read_bytes()
        scanned += 1
        for name, secret in needles.items():
            assert secret not in blob, f"password {name} found in {rel}"
    assert scanned > 20
    props = (ext.root / "kafka" / "server.properties").read_text()
    assert ext.passwords["kafka"] in props  # the broker's JAAS; nothing else may hold it


def test_wrong_reader_password_is_one_error_line_naming_the_service(ext):
    secret = ext.secret_file("warehouse_reader")
    secret.write_text("not-the-password")
    try:
        res = ext.reporting("reconcile", timeout=300)
    finally:
        secret.write_text(ext.passwords["warehouse_reader"])
    out = res.stdout + res.stderr
    assert res.returncode != 0, out
    errors = _error_lines(res)
    assert len(errors) == 1, out
    assert "warehouse" in errors[0] and "ext_reader" in errors[0], out
    assert "not-the-password" not in out and ext.passwords["warehouse_reader"] not in out


def test_wrong_kafka_password_fails_ingest_with_one_line(ext):
    secret = ext.secret_file("kafka")
    secret.write_text("not-the-kafka-password")
    t0 = time.monotonic()
    try:
        res = ext.reporting("ingest", timeout=180)  # a hang fails the test (TimeoutExpired)
    finally:
        secret.write_text(ext.passwords["kafka"])
    took = time.monotonic() - t0
    out = res.stdout + res.stderr
    print(f"ingest with a wrong Kafka password: exit {res.returncode} after {took:.0f}s: {out.strip()}")
    assert res.returncode != 0, out
    errors = _error_lines(res)
    assert len(errors) == 1 and len(out.strip().splitlines()) <= 2, out
    assert "not-the-kafka-password" not in out and ext.passwords["kafka"] not in out
    line = errors[0].lower()
    assert "kafka" in line and ("authentication" in line or "sasl" in line), out
