"""BI over the PostgreSQL protocol on the real stack: while `reporting stream` (PostgreSQL backend) applies
orders as they are written, `bi_reader` sees them appear in the contract table with `psql` and with
SQLAlchemy; after a dbt run (concurrent with the stream) it reads the marts; it never reads `_pipeline`.
"""

from __future__ import annotations

import io
import os
import random
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
import sqlalchemy as sa

from pipelines.bi.sql_shell import open_sql, psql_binary
from pipelines.settings import REPO_ROOT, Settings
from tests.e2e.conftest import E2E_ENV

pytestmark = pytest.mark.e2e

DEADLINE_S = 120.0
IN_FLIGHT = 20  # orders written but not yet seen by BI, at most


def psql_bi(settings, sql: str, password: str) -> subprocess.CompletedProcess[str]:
    """What a BI user does: psql as the BI reader the estate declares (bi_reader), password in PGPASSWORD
    (from the estate's env_file, which `reporting stack up` filled)."""
    pg = settings.estate.reporting.postgres
    argv = [psql_binary(), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", pg.host,
            "-p", str(pg.port), "-U", pg.reader.user, "-d", pg.database, "-c", sql]
    return subprocess.run(argv, env={**os.environ, "PGPASSWORD": password}, capture_output=True, text=True,  # noqa: S603
                          timeout=60, check=False)


def insert_order(conn: psycopg.Connection, customer_ref: int) -> None:
    conn.execute("INSERT INTO orders (customer_ref, state_code, total_cents, currency_iso, created_ts, modified_ts,"
                 " terms_snapshot, metadata) VALUES (%s, 10, 1999, 'eur', now(), now(), 'terms',"
                 " '{\"channel\": \"web\"}')", (customer_ref,))


def dbt_run_postgres(settings, writer_password: str, workdir: Path) -> None:
    pg = settings.estate.reporting.postgres
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REPORTING_", "DBT_"))}
    env.update(DBT_SEND_ANONYMOUS_USAGE_STATS="false", DBT_USE_COLORS="false", REPORTING_PG_HOST=pg.host,
               REPORTING_PG_PORT=str(pg.port), REPORTING_PG_USER=pg.writer.user,
               REPORTING_PG_PASSWORD=writer_password, REPORTING_PG_DBNAME=pg.database)
    dbt_dir = REPO_ROOT / "dbt_project"
    cmd = [str(Path(sys.executable).parent / "dbt"), "run", "--select", "+fct_orders", "--project-dir", str(dbt_dir),
           "--profiles-dir", str(dbt_dir), "--target", "postgres", "--target-path", str(workdir / "target"),
           "--log-path", str(workdir / "logs")]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=False)  # noqa: S603
    assert done.returncode == 0, done.stdout[-4000:]


def test_bi_reader_reads_while_the_stream_writes(stack, tmp_path):
    # the stack's own estate and environment, with the PostgreSQL reporting backend selected
    env = {**os.environ, **E2E_ENV, "REPORTING_ESTATE": str(stack.settings.estate.path), "REPORTING_BACKEND": "postgres"}
    settings = Settings.load(stack.settings.estate.path, environ=env)
    assert settings.backend == "postgres" and settings.estate.reporting.postgres is not None
    pg = settings.estate.reporting.postgres
    bi_password = settings.secret(pg.reader.password, "reporting.postgres.reader.password")
    writer_password = settings.secret(pg.writer.password, "reporting.postgres.writer.password")
    customer = random.randint(10**9, 2 * 10**9)  # marks this test's orders
    count_sql = f"SELECT count(*) FROM reporting.orders_v2 WHERE customer_id = {customer}"
    engine = sa.create_engine(f"postgresql+psycopg://{quote(pg.reader.user, safe='')}:{quote(bi_password, safe='')}"
                              f"@{pg.host}:{pg.port}/{pg.database}", poolclass=sa.pool.NullPool)

    def sqlalchemy_count(sql: str = count_sql) -> int:
        with engine.connect() as con:
            return con.execute(sa.text(sql)).scalar_one()

    def psql_count(sql: str = count_sql) -> int | None:
        done = psql_bi(settings, sql, bi_password)
        if done.returncode != 0:
            assert 'relation "reporting.orders_v2" does not exist' in done.stderr, done.stderr
            return None  # the stream has not created its tables yet
        return int(done.stdout.strip())

    log_path = tmp_path / "stream.log"
    with log_path.open("w") as log:
        stream = subprocess.Popen([str(Path(sys.executable).parent / "reporting"), "stream",  # noqa: S603
                                   "--group", f"bi-e2e-{uuid.uuid4().hex[:8]}"], env=env, stdout=log,
                                  stderr=subprocess.STDOUT, cwd=REPO_ROOT)
    try:
        written = 0
        seen = {"psql": [], "sqlalchemy": []}
        deadline = time.monotonic() + DEADLINE_S
        with psycopg.connect(settings.service_url("orders", driver=False), autocommit=True) as orders_db:
            # write and read at the same time: BI must see the count grow while the stream applies
            while min(len(set(v)) for v in seen.values()) < 3:
                assert time.monotonic() < deadline, f"BI saw {seen} of {written} orders; {log_path.read_text()[-2000:]}"
                assert stream.poll() is None, f"stream exited: {log_path.read_text()[-2000:]}"
                if written - max(max(v, default=0) for v in seen.values()) < IN_FLIGHT:
                    insert_order(orders_db, customer)
                    written += 1
                via_psql = psql_count()
                if via_psql:
                    seen["psql"].append(via_psql)
                    via_sqlalchemy = sqlalchemy_count()
                    if via_sqlalchemy:
                        seen["sqlalchemy"].append(via_sqlalchemy)
        for client, counts in seen.items():
            assert counts == sorted(counts) and counts[-1] <= written, (client, counts)
        while (sqlalchemy_count(), psql_count()) != (written, written):  # the stream catches up
            assert time.monotonic() < deadline, f"BI sees {sqlalchemy_count()} of {written} orders"

        # dbt builds the marts while the stream keeps running; bi_reader reads them (default privileges)
        dbt_run_postgres(settings, writer_password, tmp_path / "dbt")
        mart_sql = f"SELECT count(*) FROM marts.fct_orders WHERE customer_id = {customer} AND order_status = 'PLACED'"
        assert psql_count(mart_sql) == written
        assert sqlalchemy_count(mart_sql) == written
        assert sqlalchemy_count(f"SELECT count(*) FROM marts.fct_orders_v1 WHERE customer_id = {customer}") == written

        # `reporting sql -c` on the PostgreSQL backend is psql as the BI reader too
        out, err = io.StringIO(), io.StringIO()
        assert open_sql(settings, command=count_sql.replace("count(*)", "current_user, count(*)"),
                        out=out, err=err) == 0, err.getvalue()
        assert re.search(rf"{re.escape(pg.reader.user)}\s+\|\s+{written}\n", out.getvalue()), out.getvalue()

        # and nothing else: not the pipeline's bookkeeping, no writing
        denied = psql_bi(settings, "SELECT * FROM _pipeline.offsets", bi_password)
        assert denied.returncode != 0 and "permission denied for schema _pipeline" in denied.stderr
        refused = psql_bi(settings, f"DELETE FROM reporting.orders_v2 WHERE customer_id = {customer}", bi_password)
        assert refused.returncode != 0 and "read-only transaction" in refused.stderr
    finally:
        stream.send_signal(signal.SIGTERM)  # finishes the current batch, then exits
        try:
            code = stream.wait(timeout=60)
        except subprocess.TimeoutExpired:
            stream.kill()
            stream.wait(timeout=30)
            raise
        engine.dispose()
    assert code == 0, log_path.read_text()[-2000:]
    assert "events in" in log_path.read_text()
