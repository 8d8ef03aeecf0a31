"""datacontract-cli tests the live contract tables: `datacontract test` against the e2e stack's reporting PostgreSQL.

Each contract in reporting_schema/ has a `servers` entry `reporting` (type postgres, the bundled local stack's
host/port, database and schema `reporting`). Here the services get some simulated traffic, the pipeline (PostgreSQL
backend, a consumer group of its own) fills the contract tables, and `datacontract test <contract> --server
reporting` must pass for every contract: columns present with their physical types, required columns without
nulls, primary keys unique, enum columns within their values. Credentials are the BI reader's, and host, port and
database the e2e stack's (port offset), all through datacontract-cli's environment variables
(DATACONTRACT_POSTGRES_USERNAME / _PASSWORD / _HOST / _PORT / _DATABASE): the contracts are not rewritten.

datacontract-cli is pinned (DATACONTRACT_CLI) and lives in a virtualenv of its own, `.state/tools/datacontract-<v>`,
created by `datacontract_tool()` (idempotent, under a file lock): every datacontract-cli release requires
typer<0.28 while the project pins typer 0.29.2, so it cannot share the project's environment. Everything it shares
with the project is installed at the project's versions (requirements.lock as pip constraints, typer excepted);
what only it needs is pinned in TOOL_PINS.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from estate import simulator
from pipelines.apply.runner import run_pipeline
from pipelines.contract.model import load_contracts
from pipelines.settings import REPO_ROOT
from pipelines.stack.bootstrap import service_urls

pytestmark = pytest.mark.e2e

DATACONTRACT_CLI = "1.2.8"
TOOL_PINS = (
    f"datacontract-cli[postgres]=={DATACONTRACT_CLI}",
    "typer==0.27.3",  # datacontract-cli needs typer<0.28 (the project: 0.29.2), the reason for the own venv
    "atpublic==9.0.0", "boto3==1.44.8", "botocore==1.44.8", "datacontract-specification==1.2.3",
    "fastjsonschema==2.22.3", "ibis-framework==12.0.0", "jinja-partials==0.3.2", "jmespath==1.1.0",
    "pandas==3.1.1", "parsy==2.2", "pyarrow-hotfix==0.7", "pydantic-settings==2.16.3", "python-multipart==0.0.34",
    "ruamel.yaml==0.19.1", "s3transfer==0.19.3", "toolz==1.2.0", "truststore==0.10.5",
)
"""datacontract-cli and what only it needs (resolved beside requirements.lock); the rest comes from the lock."""
TOOL_DIR = REPO_ROOT / ".state" / "tools" / f"datacontract-{DATACONTRACT_CLI}"
INSTALL_TIMEOUT_S = 1200
FILL_DEADLINE_S = 300.0
STABLE_PASSES = 2  # consecutive pipeline passes that change no row count = caught up


def datacontract_tool(tool_dir: Path = TOOL_DIR) -> Path:
    """The `datacontract` executable of the pinned tool venv, installed first if missing or stale (idempotent)."""
    exe = tool_dir / "bin" / "datacontract"
    marker = tool_dir / ".installed"
    lock_text = (REPO_ROOT / "requirements.lock").read_text(encoding="utf-8")
    constraints = "".join(line + "\n" for line in lock_text.splitlines()
                          if line.strip() and not line.lower().startswith("typer=="))
    want = "\n".join(TOOL_PINS) + "\n--\n" + constraints
    tool_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(tool_dir.parent / f".{tool_dir.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if exe.exists() and marker.exists() and marker.read_text(encoding="utf-8") == want:
            return exe
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(tool_dir)], check=True, timeout=300)  # noqa: S603
        (tool_dir / "constraints.txt").write_text(constraints, encoding="utf-8")
        py, constraint = str(tool_dir / "bin" / "python"), str(tool_dir / "constraints.txt")
        commands = [[py, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-c", constraint, *TOOL_PINS]]
        uv = Path(sys.executable).parent / "uv"  # pinned in requirements.lock: seconds instead of ~1.5 minutes
        if uv.exists():
            commands.insert(0, [str(uv), "pip", "install", "--quiet", "--python", py, "-c", constraint, *TOOL_PINS])
        for cmd in commands:  # pip only if uv failed (e.g. an index only pip is configured for)
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, check=False)  # noqa: S603
            if done.returncode == 0:
                break
        assert done.returncode == 0, f"installing datacontract-cli failed:\n{done.stderr[-4000:]}"
        marker.write_text(want, encoding="utf-8")
    return exe


@pytest.fixture(scope="module")
def datacontract() -> Path:
    return datacontract_tool()


def _counts(conninfo: str, tables: list[str]) -> dict[str, int]:
    counts = {}
    with psycopg.connect(conninfo, autocommit=True) as con:
        for table in tables:
            try:
                counts[table] = con.execute(f'SELECT count(*) FROM reporting."{table}"').fetchone()[0]
            except psycopg.errors.UndefinedTable:
                counts[table] = 0
    return counts


def test_datacontract_test_passes_on_every_contract_table(datacontract, stack, tmp_path):
    settings = stack.settings.with_backend("postgres")
    pg = settings.estate.reporting.postgres
    password = settings.secret(pg.reader.password, "reporting.postgres.reader.password")
    conninfo = psycopg.conninfo.make_conninfo(host=pg.host, port=pg.port, dbname=pg.database, user=pg.reader.user,
                                              password=password)
    contracts = load_contracts(settings.estate.contracts)
    tables = [c.physical_name for c in contracts]

    # some business in every service, then the pipeline fills the contract tables (its own consumer group:
    # the duckdb tests of the session keep their offsets)
    report = simulator.run(service_urls(stack), rate=0, operations=800, seed=11, progress=False)
    assert not report.errors, report
    group = f"datacontract-e2e-{uuid.uuid4().hex[:8]}"
    deadline = time.monotonic() + FILL_DEADLINE_S
    last, stable = None, 0
    while stable < STABLE_PASSES or not all(last.values()):
        assert time.monotonic() < deadline, f"contract tables not filled in {FILL_DEADLINE_S}s: {last}"
        run_pipeline(settings, until_caught_up=True, group=group, install_signals=False, say=lambda _m: None)
        counts = _counts(conninfo, tables)
        stable = stable + 1 if counts == last else 0
        last = counts
    print(f"contract table rows: {last}")

    env = {k: v for k, v in os.environ.items() if not k.startswith("DATACONTRACT_")}
    env.update(DATACONTRACT_POSTGRES_USERNAME=pg.reader.user, DATACONTRACT_POSTGRES_PASSWORD=password,
               DATACONTRACT_POSTGRES_HOST=pg.host, DATACONTRACT_POSTGRES_PORT=str(pg.port),
               DATACONTRACT_POSTGRES_DATABASE=pg.database, NO_COLOR="1", COLUMNS="200")
    failures = []
    for contract in contracts:
        out = tmp_path / f"{contract.physical_name}.json"
        done = subprocess.run([str(datacontract), "test", str(contract.path), "--server", "reporting",  # noqa: S603
                               "--output-format", "json", "--output", str(out)],
                              env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
        if done.returncode != 0:
            failures.append(f"{contract.physical_name} ({last[contract.physical_name]} rows): exit "
                            f"{done.returncode}\n{done.stdout[-3000:]}{done.stderr[-2000:]}")
    assert not failures, "\n\n".join(failures)
