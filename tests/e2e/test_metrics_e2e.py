"""Prometheus metrics of a running `reporting stream`, scraped on the real stack: the counters move as
changes are applied, lag and freshness are reported per partition and table."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from estate import simulator
from pipelines.settings import REPO_ROOT

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _scrape(port: int) -> dict[tuple[str, tuple], float]:
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def _value(samples, name: str) -> float:
    return sum(v for (n, _labels), v in samples.items() if n == name)


def test_stream_metrics_move_while_changes_are_applied(stack, tmp_path):
    settings = stack.settings
    port = _free_port()
    log_path = tmp_path / "stream.log"
    env = {**os.environ, "REPORTING_DUCKDB_PATH": str(tmp_path / "metrics.duckdb")}
    with log_path.open("w") as log:
        stream = subprocess.Popen([str(Path(sys.executable).parent / "reporting"), "stream", "--replica-every", "0",
                                   "--group", f"metrics-{uuid.uuid4().hex[:8]}", "--metrics-port", str(port)],
                                  env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
    try:
        deadline = time.monotonic() + 120
        first = None
        while first is None:
            assert time.monotonic() < deadline and stream.poll() is None, log_path.read_text()[-2000:]
            try:
                first = _scrape(port)
            except requests.RequestException:
                time.sleep(0.5)
        simulator.run(settings.service_urls(), rate=40, duration=4, seed=51, progress=False)
        while True:
            assert time.monotonic() < deadline and stream.poll() is None, log_path.read_text()[-2000:]
            now = _scrape(port)
            if _value(now, "reporting_events_applied_total") > _value(first, "reporting_events_applied_total") \
                    and _value(now, "reporting_batches_total") > 0:
                break
            time.sleep(1)
        time.sleep(6)  # one status round (every 5 s) reports lag and assignment
        now = _scrape(port)
        assert _value(now, "reporting_rows_applied_total") > 0
        assert _value(now, "reporting_apply_duration_seconds_count") >= _value(now, "reporting_batches_total") > 0
        assert any(n == "reporting_freshness_seconds" for n, _ in now)
        assert any(n == "reporting_consumer_lag" for n, _ in now), sorted({n for n, _ in now})
        assert _value(now, "reporting_assigned_partitions") > 0
    finally:
        stream.send_signal(signal.SIGTERM)
        stream.wait(timeout=60)
    assert stream.returncode == 0, log_path.read_text()[-2000:]
