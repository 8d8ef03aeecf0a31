"""The `reporting` command: everything a user does goes through here.

Each sub-command is a thin shell over a module that does the work; errors from those modules are
printed as one readable line (detail with --verbose or in the component's log) and exit non-zero.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable

import typer
from rich.console import Console
from rich.table import Table

from pipelines.settings import Settings

app = typer.Typer(help="CDC-fed reporting database: stack, connectors, pipeline, contracts, checks.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
stack_app = typer.Typer(help="Start, stop and inspect the local stack (databases, Kafka, Connect).",
                        no_args_is_help=True)
connectors_app = typer.Typer(help="Register and watch the Debezium connectors.", no_args_is_help=True)
app.add_typer(stack_app, name="stack")
app.add_typer(connectors_app, name="connectors")


def _mount_contract_app() -> None:
    from pipelines.contract.cli import app as contract_app

    app.add_typer(contract_app, name="contract", help="Reporting contracts: check, publish, diff, docs.")


_mount_contract_app()

console = Console()
err = Console(stderr=True)
log = logging.getLogger("reporting")

_state = {"verbose": False}


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Print error detail too.")) -> None:
    _state["verbose"] = verbose
    settings = Settings.load()
    handlers: list[logging.Handler] = []
    try:
        settings.log_dir.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(settings.log_dir / "reporting.log"))
    except OSError:
        pass
    if verbose:
        handlers.append(logging.StreamHandler())
    logging.basicConfig(level=logging.INFO, handlers=handlers,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def friendly(fn: Callable) -> Callable:
    """Turn the project's own errors into one readable line and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except Exception as exc:
            detail = getattr(exc, "detail", "")
            log.error("%s failed: %s\n%s", fn.__name__, exc, detail, exc_info=True)
            err.print(f"error: {exc}", style="bold red", highlight=False, markup=False)
            if detail and _state["verbose"]:
                err.print(detail, highlight=False, markup=False)
            elif detail:
                err.print(f"(detail in {Settings.load().log_dir / 'reporting.log'})", highlight=False, markup=False)
            raise typer.Exit(2) from exc

    return wrapper


def _say(msg: str) -> None:
    console.print(msg, highlight=False)


# --------------------------------------------------------------------------- stack
@stack_app.command("up")
@friendly
def stack_up(connectors: bool = typer.Option(True, help="Also create service schemas and register connectors.")) -> None:
    """Install what is missing, start every component, provision databases, register connectors."""
    from pipelines.stack.manager import Stack

    stack = Stack()
    stack.up(say=_say)
    if connectors:
        from pipelines.stack.bootstrap import apply_connectors, create_service_schemas

        create_service_schemas(stack, say=_say)
        apply_connectors(stack, say=_say)
    _say("[green]stack is up[/]")


@stack_app.command("install")
@friendly
def stack_install() -> None:
    """Install what the stack needs and nothing else: Debian packages and the pinned JVM artifacts."""
    from pipelines.stack import install

    settings = Settings.load()
    install.ensure_debian_packages(_say)
    install.ensure_jvm_artifacts(settings, _say)
    _say("[green]installed[/] (PostgreSQL 15, MariaDB, Kafka/Connect/Debezium jars in "
         f"{settings.jvm_dir})")


@stack_app.command("down")
@friendly
def stack_down() -> None:
    """Stop everything `up` started (by pid file); data stays in the state folder."""
    from pipelines.stack.manager import Stack, leftover_processes

    stack = Stack()
    stack.down(say=_say)
    left = leftover_processes(stack.settings)
    if left:
        raise RuntimeError(f"{len(left)} process(es) still running from {stack.settings.state_dir}: {left[0]}")
    _say("[green]stack is down[/]")


@stack_app.command("status")
@friendly
def stack_status() -> None:
    """Health of each component; exit 1 if any is down."""
    from pipelines.stack.manager import Stack

    rows = Stack().status()
    t = Table("component", "state", "where")
    for h in rows:
        t.add_row(h.component, "[green]up[/]" if h.up else "[red]down[/]", h.detail)
    console.print(t)
    if not all(h.up for h in rows):
        raise typer.Exit(1)


@stack_app.command("reset")
@friendly
def stack_reset(yes: bool = typer.Option(False, "--yes", help="Do not ask.")) -> None:
    """Stop the stack and delete its state (databases, topics, reporting DB; jars are kept)."""
    import shutil

    from pipelines.stack.manager import Stack

    stack = Stack()
    if not yes:
        typer.confirm(f"delete all data under {stack.settings.state_dir} (jars kept)?", abort=True)
    stack.down(say=_say)
    for child in stack.settings.state_dir.iterdir() if stack.settings.state_dir.exists() else []:
        if child.name != "jvm":
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    _say("[green]state reset[/]")


# --------------------------------------------------------------------------- connectors
@connectors_app.command("apply")
@friendly
def connectors_apply() -> None:
    """Register (or update) every connectors/<service>/connector.json and wait until RUNNING."""
    from pipelines.stack.bootstrap import apply_connectors
    from pipelines.stack.manager import Stack

    apply_connectors(Stack(), say=_say)


@connectors_app.command("status")
@friendly
def connectors_status() -> None:
    """State of each connector and its tasks; exit 1 unless all are RUNNING."""
    from pipelines.stack.connect_api import ConnectClient, connector_files, load_connector

    client = ConnectClient(Settings.load().connect_url)
    t = Table("connector", "state", "tasks", "trace")
    ok = True
    for path in connector_files():
        name = load_connector(path)["name"]
        st = client.status(name)
        ok &= st.running
        t.add_row(name, st.state, ", ".join(f"{i}:{s}" for i, s in st.tasks),
                  (st.trace.strip().splitlines() or [""])[0][:80])
    console.print(t)
    if not ok:
        raise typer.Exit(1)


# --------------------------------------------------------------------------- pipeline
@app.command("stream")
@friendly
def stream(group: str = typer.Option("reporting-pipeline", help="Kafka consumer group of the workers.")) -> None:
    """Apply change events continuously until stopped (Ctrl-C / SIGTERM finish the current batch)."""
    from pipelines.apply.runner import run_pipeline

    run_pipeline(until_caught_up=False, group=group, say=_say)


@app.command("ingest")
@friendly
def ingest(
    until_caught_up: bool = typer.Option(True, "--until-caught-up/--forever",
                                         help="Drain every partition to its end, then exit."),
    group: str = typer.Option("reporting-pipeline", help="Kafka consumer group of the workers."),
) -> None:
    """Apply change events until caught up, then exit (what Dagster runs)."""
    from pipelines.apply.runner import run_pipeline

    run_pipeline(until_caught_up=until_caught_up, group=group, say=_say)


def main() -> None:  # pragma: no cover - console entry point
    app(sys.argv[1:])


if __name__ == "__main__":  # pragma: no cover
    main()
