"""The DuckLake backend on the real stack: `reporting stream` applies live traffic into a lake (SQLite catalog,
Parquet files, the engine in its own venv); while it streams, `reporting status` and `reporting sql` read the
lake; `reporting reconcile` finds no difference; `reporting sql --as-of` shows the lake as it was before a
second round of traffic. Not in `make test` (CI's time budget); `make test-ducklake` runs it (~3 minutes with
the stack up).

    REPORTING_E2E_PORT_OFFSET=500 pytest -m ducklake tests/e2e/test_ducklake_e2e.py
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from pipelines.settings import REPO_ROOT
from tests.e2e.conftest import E2E_ENV

pytestmark = [pytest.mark.e2e, pytest.mark.ducklake, pytest.mark.slow]

REPORTING = str(Path(sys.executable).parent / "reporting")
CATCH_UP_S = 300  # a first rebalance may hang up to pipeline.stall_restart_s (kafka-python, docs/operations.md)


def run(env: dict, *args: str, timeout: float = 300) -> str:
    done = subprocess.run([REPORTING, *args], env=env, capture_output=True, text=True, timeout=timeout,  # noqa: S603
                          cwd=REPO_ROOT, check=False)
    assert done.returncode == 0, f"reporting {' '.join(args)}: {done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def count(env: dict, *extra: str) -> int:
    out = run(env, "sql", *extra, "-c", "select count(*) as n from reporting.orders_v2", timeout=120)
    return int(re.search(r"│\s*(\d+)\s*│", out).group(1))


def caught_up(env: dict, group: str) -> None:
    deadline = time.monotonic() + CATCH_UP_S
    previous = None
    lags: list = []
    while time.monotonic() < deadline:
        lags = json.loads(run(env, "status", "--group", group, "--format", "json", timeout=120))["lags"]
        ends = {(x["topic"], x["partition"]): x["end_offset"] for x in lags}
        if lags and all(x["lag"] == 0 for x in lags) and ends == previous:
            return
        previous = ends if lags and all(x["lag"] == 0 for x in lags) else None
        time.sleep(4)
    raise AssertionError(f"the stream did not catch up within {CATCH_UP_S}s: {lags}")


def test_stream_into_a_ducklake_read_it_while_streaming_reconcile_and_look_back(stack, tmp_path):
    env = {**os.environ, **E2E_ENV, "REPORTING_ESTATE": str(stack.settings.estate.path), "REPORTING_BACKEND": "ducklake",
           "REPORTING_DUCKLAKE_VENV": str(REPO_ROOT / ".state" / "ducklake-venv")}
    group = f"ducklake-e2e-{uuid.uuid4().hex[:8]}"
    log_path = tmp_path / "stream.log"
    with log_path.open("w") as log:
        stream = subprocess.Popen([REPORTING, "stream", "--group", group], env=env, stdout=log,  # noqa: S603
                                  stderr=subprocess.STDOUT, cwd=REPO_ROOT)
    try:
        run(env, "simulate", "--rate", "40", "--duration", "10", "--seed", "71")
        caught_up(env, group)
        first = count(env)  # read while the stream holds the lake open for writing
        assert first > 0
        assert stream.poll() is None, log_path.read_text()[-2000:]
        status = json.loads(run(env, "status", "--group", group, "--format", "json", timeout=120))
        assert status["lags"] and all(x["lag"] == 0 for x in status["lags"])

        time.sleep(1.5)
        before_second = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        time.sleep(1.5)
        run(env, "simulate", "--rate", "40", "--duration", "10", "--seed", "72")
        caught_up(env, group)
        assert count(env) > first
        assert count(env, "--as-of", before_second) == first  # the lake as it was before the second round

        out = run(env, "reconcile", timeout=600)
        assert re.search(r"(\d+) table\(s\) compared, [\d,]+ source rows, 0 difference\(s\)", out), out[-2000:]

        # dbt builds the marts into the same lake (the DuckLake venv's dbt) while the stream applies more traffic
        dbt_dirs = ["--target-path", str(tmp_path / "dbt-target"), "--log-path", str(tmp_path / "dbt-logs")]
        traffic = subprocess.Popen([REPORTING, "simulate", "--rate", "40", "--duration", "25", "--seed", "73"],  # noqa: S603
                                   env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
        try:
            time.sleep(3)
            run(env, "dbt", "run", *dbt_dirs, timeout=900)
        finally:
            assert traffic.wait(timeout=300) == 0
        assert stream.poll() is None, log_path.read_text()[-2000:]
        caught_up(env, group)
        run(env, "dbt", "run", "--select", "+fct_orders", *dbt_dirs, timeout=900)  # the marts of the quiet lake
        aggregate = "select count(*) as orders, cast(sum(total_amount) as varchar) as total from {}"
        mart = run(env, "sql", "-c", aggregate.format("marts.fct_orders_v2"), timeout=120)
        contract = run(env, "sql", "-c", aggregate.format("reporting.orders_v2 where _deleted_at is null"), timeout=120)
        assert mart == contract, f"{mart}\n{contract}"
        assert int(re.search(r"│\s*(\d+)\s*│", mart).group(1)) > first
    finally:
        if stream.poll() is None:
            stream.send_signal(signal.SIGTERM)
            stream.wait(timeout=120)
    assert stream.returncode == 0, log_path.read_text()[-2000:]
