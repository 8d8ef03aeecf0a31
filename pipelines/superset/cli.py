"""`reporting bi ...`: connection values for BI tools, and Superset (`reporting bi superset install|up|down|status|provision`)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

import typer

from pipelines.output import HelpGroup as _Group

bi_app = typer.Typer(help="BI access: connection values for BI tools, and Apache Superset.", no_args_is_help=True,
                     cls=_Group)
superset_app = typer.Typer(help="Apache Superset in its own venv, provisioned with the estate's dashboards.",
                           no_args_is_help=True, cls=_Group)
bi_app.add_typer(superset_app, name="superset")
log = logging.getLogger("reporting")


def _root():
    from pipelines import cli as root  # the root command's settings (--estate) and consoles

    return root


def _friendly(fn: Callable) -> Callable:
    """Errors as one readable line (exit 2), the detail in the log: the root command's `friendly`, looked up
    when the command runs (the root module imports this one)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return _root().friendly(fn)(*args, **kwargs)

    return wrapper


def _say(msg: str) -> None:
    _root().console.print(msg, highlight=False, markup=False, soft_wrap=True)


def connection_lines(settings) -> list[tuple[str, str]]:
    """What a BI tool needs to connect, for the estate's reporting database (no password value)."""
    pg = settings.estate.reporting.postgres
    rows: list[tuple[str, str]] = []
    if pg is not None:
        secret = pg.reader.password.describe()
        if pg.reader.password.env and settings.estate.env_file:
            secret += f" (in {settings.estate.env_file})"
        rows += [
            ("backend", settings.backend + ("" if settings.backend == "postgres" else
                                             " (the PostgreSQL values below hold once the backend is postgres)")),
            ("host", pg.host), ("port", str(pg.port)), ("database", pg.database), ("user", pg.reader.user),
            ("password", secret), ("ssl", "off (loopback)" if pg.host in ("127.0.0.1", "localhost") else "as the server"),
            ("schemas", "marts (dashboards), staging, reporting; never _pipeline"),
            ("libpq URI", f"postgresql://{pg.reader.user}@{pg.host}:{pg.port}/{pg.database}"),
            ("JDBC URL", f"jdbc:postgresql://{pg.host}:{pg.port}/{pg.database}?readOnly=true"),
            ("ODBC", f"Driver={{PostgreSQL Unicode}};Server={pg.host};Port={pg.port};Database={pg.database};"
                     f"Uid={pg.reader.user};Pwd=<password>;ReadOnly=1"),
            ("SQLAlchemy", f"postgresql+psycopg2://{pg.reader.user}:<password>@{pg.host}:{pg.port}/{pg.database}"),
        ]
    if settings.estate.reporting.duckdb is not None:
        replica = settings.duckdb_path.parent / "replica" / settings.duckdb_path.name
        rows.append(("DuckDB replica", f"{replica} (open read-only; DuckDB backend)"))
    return rows


@bi_app.command("connection-info")
@_friendly
def connection_info() -> None:
    """Host, port, database, read-only user and URLs for BI tools over the PostgreSQL protocol (no password)."""
    rows = connection_lines(_root()._settings())
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        _say(f"{key.ljust(width)}  {value}")


@superset_app.command("install")
@_friendly
def superset_install() -> None:
    """Install Superset's venv and initialise its metadata database, without starting it (first `up` is then quick)."""
    from pipelines.superset.server import install

    install(_root()._settings(), say=_say)
    _say("superset: installed; `reporting bi superset up` starts it")


@superset_app.command("up")
@_friendly
def superset_up(provision: bool = typer.Option(True, "--provision/--no-provision",
                                               help="Register the database, datasets and dashboards after start.")
                ) -> None:
    """Install (first time), start Superset on loopback and provision the estate's dashboards."""
    from pipelines.superset.server import up

    up(_root()._settings(), say=_say, provision_dashboards=provision)


@superset_app.command("provision")
@_friendly
def superset_provision() -> None:
    """Register/update the database connection, the mart datasets and the dashboards (Superset running)."""
    from pipelines.superset import config as cfg
    from pipelines.superset.provision import provision
    from pipelines.superset.server import login

    settings = _root()._settings()
    provision(settings, login(settings), cfg.dashboards_dir(settings), say=_say)


@superset_app.command("down")
@_friendly
def superset_down() -> None:
    """Stop the Superset that `up` started (by pid file), with its workers."""
    from pipelines.superset.server import down

    down(_root()._settings(), say=_say)


@superset_app.command("status")
@_friendly
def superset_status() -> None:
    """Running or not, URL, health, processes and their resident memory."""
    from pipelines.superset.server import status

    st = status(_root()._settings())
    if not st.running:
        _say(f"superset: not running ({st.url})")
        raise typer.Exit(1)
    _say(f"superset: running, pid {st.pid}, {st.url}/ {'healthy' if st.healthy else 'NOT answering /health'}, "
         f"{st.processes} processes, RSS {st.rss_mb:.0f} MB")
    if not st.healthy:
        raise typer.Exit(1)
