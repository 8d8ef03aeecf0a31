"""The `reporting` command: everything a user does goes through here.

Each sub-command is a thin shell over a module that does the work; errors from those modules are
printed as one readable line (detail with --verbose or in the component's log) and exit non-zero.

Commands that print rows take `--format table|csv|json` (pipelines/output.py): tables never cut a value,
csv/json hold the raw values for programs. Nothing written to a pipe carries ANSI codes, and NO_COLOR
turns them off on a terminal too. Help is plain click help (typer's rich help labels every flag `<bool>`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

import typer
from rich.markup import escape
from rich.text import Text

from pipelines.output import FORMAT_HELP, Format, Section, View, make_console, write_rows, write_tables
from pipelines.output import HelpGroup as _Group
from pipelines.settings import Settings
from pipelines.superset.cli import bi_app

# rich_markup_mode=None: plain help for every command and sub-command (the setting is inherited), so flags
# show no `<bool>` placeholder and help wraps at any width.
app = typer.Typer(help="CDC-fed reporting database: stack, connectors, pipeline, contracts, checks.",
                  no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None, cls=_Group)
stack_app = typer.Typer(help="Start, stop and inspect the local stack (databases, Kafka, Connect).",
                        no_args_is_help=True, cls=_Group)
connectors_app = typer.Typer(help="Register and watch the Debezium connectors.", no_args_is_help=True,
                             cls=_Group)
app.add_typer(stack_app, name="stack")
app.add_typer(connectors_app, name="connectors")
app.add_typer(bi_app, name="bi")


def _mount_contract_app() -> None:
    from pipelines.contract import cli as contract_cli
    from pipelines.contract.cli import app as contract_app

    contract_cli.HOOKS["root"] = lambda: _settings().estate.contracts
    contract_cli.HOOKS["estate_check"] = lambda contracts: _estate_contract_problems(contracts)

    @contract_app.command("status")
    @friendly
    def contract_status(fmt: Format = typer.Option(Format.table, "--format", help=FORMAT_HELP)) -> None:
        """Live versions: status, deprecation date, rows, newest source time, freshness vs objective."""
        from pipelines.contract.status import status_command

        raise typer.Exit(status_command(_settings(), console=console, fmt=fmt, stream=sys.stdout,
                                        err=err))

    app.add_typer(contract_app, name="contract", help="Reporting contracts: check, publish, diff, docs, status.",
                  cls=_Group)


def _estate_contract_problems(contracts) -> list[str]:
    """Projections of the estate against its contracts: every target is a live contract table and is
    fed by exactly one service (a second service feeding the same contract is refused)."""
    from pipelines.projection import ProjectionError, load_estate_projections

    estate = _settings().estate
    try:
        projections = load_estate_projections(estate)
    except ProjectionError as exc:
        return [str(exc)]
    live = {c.physical_name for c in contracts if c.status != "retired"}
    problems = []
    for tp in projections.values():
        for t in tp.targets:
            if t.physical_name not in live:
                problems.append(f"{tp.path}:{t.line}: target {t.physical_name} is not a live contract table in "
                                f"{estate.contracts}")
    return problems


console = make_console()
err = make_console(stderr=True, soft_wrap=True)
"""Rebuilt for each invocation (`_main`): terminal, width (COLUMNS) and NO_COLOR are those of the run."""
log = logging.getLogger("reporting")

_state: dict = {"verbose": False, "estate": None, "settings": None}


def _settings() -> Settings:
    """The one configuration of this command, built from the estate file the first time it is needed."""
    if _state["settings"] is None:
        _state["settings"] = Settings.load(_state["estate"])
    return _state["settings"]


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Print error detail too."),
          estate: str = typer.Option(None, "--estate", "-e", metavar="FILE",
                                     help="Estate file (default: REPORTING_ESTATE, else the bundled reporting.yaml).")
          ) -> None:
    global console, err
    console, err = make_console(), make_console(stderr=True, soft_wrap=True)  # an error stays one line
    _state["verbose"] = verbose
    _state["estate"] = estate
    _state["settings"] = None
    try:
        settings = _settings()
    except Exception as exc:  # noqa: BLE001 - an unreadable estate file is one line, like every other error
        err.print(f"error: {exc}", style="bold red", highlight=False, markup=False)
        raise typer.Exit(2) from exc
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
        except typer.Abort as exc:  # a declined confirmation, Ctrl-D at a prompt: not an error to log
            err.print("aborted", highlight=False, markup=False)
            raise typer.Exit(1) from exc
        except BrokenPipeError as exc:  # `reporting status --format csv | head`: the reader has all it wants
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
            raise typer.Exit(1) from exc
        except Exception as exc:
            detail = getattr(exc, "detail", "")
            log.error("%s failed: %s\n%s", fn.__name__, exc, detail, exc_info=True)
            err.print(f"error: {exc}", style="bold red", highlight=False, markup=False)
            if detail and _state["verbose"]:
                err.print(detail, highlight=False, markup=False)
            elif detail:
                err.print(f"(detail in {_settings().log_dir / 'reporting.log'})", highlight=False, markup=False)
            raise typer.Exit(2) from exc

    return wrapper


def _say(msg: str) -> None:
    """A status or progress line: one line whatever its length (logs are grepped; a terminal wraps it)."""
    console.print(msg, highlight=False, soft_wrap=True)


def _note(msg: str, fmt: Format) -> None:
    """A line beside the rows: on stdout with a table, on stderr with csv/json (stdout stays parseable)."""
    (console if fmt is Format.table else err).print(msg, highlight=False, soft_wrap=True)


_mount_contract_app()


# --------------------------------------------------------------------------- stack
@stack_app.command("up")
@friendly
def stack_up(connectors: bool = typer.Option(True, help="Also create service schemas and register connectors.")) -> None:
    """Install what is missing, start every component, provision databases, register connectors."""
    from pipelines.stack.manager import Stack

    stack = Stack(_settings())
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

    settings = _settings()
    install.ensure_debian_packages(_say)
    install.ensure_jvm_artifacts(settings, _say)
    _say("[green]installed[/] (PostgreSQL 15, MariaDB, Kafka/Connect/Debezium jars in "
         f"{settings.jvm_dir})")


@stack_app.command("down")
@friendly
def stack_down() -> None:
    """Stop everything `up` started (by pid file); data stays in the state folder."""
    from pipelines.stack.manager import Stack, leftover_processes

    stack = Stack(_settings())
    from pipelines.ui import stop_ui

    stop_ui(stack.settings, say=_say)
    stack.down(say=_say)
    left = leftover_processes(stack.settings)
    if left:
        raise RuntimeError(f"{len(left)} process(es) still running from {stack.settings.state_dir}: {left[0]}")
    _say("[green]stack is down[/]")


@stack_app.command("status")
@friendly
def stack_status(fmt: Format = typer.Option(Format.table, "--format", help=FORMAT_HELP)) -> None:
    """Health of each component (cluster profile: also brokers, partition leaders, under-replicated
    partitions and which Connect worker runs which task); exit 1 if any component is down."""
    from pipelines.stack.manager import Stack

    stack = Stack(_settings())
    rows = stack.status()
    view = View(["component", "state", "where"],
                lambda r: [r[0], Text("up", style="green") if r[1] else Text("down", style="red"), r[2]])
    components = [(h.component, h.up, h.detail) for h in rows]
    if not stack.clustered:
        write_rows(["component", "up", "detail"], components, fmt, sys.stdout, view=view, console=console)
    else:
        _cluster_tables(stack, components, view, fmt)
    if not all(h.up for h in rows):
        raise typer.Exit(1)


def _cluster_tables(stack, components: list, view: View, fmt: Format) -> None:
    """`stack status` of the cluster profile: components, brokers, topics and Connect tasks."""
    cs = stack.cluster_status()
    yes = lambda v: Text("yes", style="green") if v else Text("no", style="red")  # noqa: E731
    brokers = [(b.node, b.address, b.running, b.live, b.controller, b.leaders) for b in cs.brokers]
    topics = [(t.topic, t.partitions, t.replicas, " ".join(f"{n}:{c}" for n, c in t.leaders),
               ",".join(map(str, t.under_replicated)), ",".join(map(str, t.offline))) for t in cs.topics]
    tasks = [(t.connector, t.task, t.state, t.worker) for t in cs.tasks]
    sections = {
        "components": Section(["component", "up", "detail"], components, view=view),
        "brokers": Section(["node", "address", "running", "live", "controller", "leaders"], brokers, title="brokers",
                           view=View(["node", "address", "process", "in cluster", "controller", "leads"],
                                     lambda r: [r[0], r[1], yes(r[2]), yes(r[3]), "yes" if r[4] else "", r[5]],
                                     right=frozenset({"node", "leads"}))),
        "topics": Section(["topic", "partitions", "replicas", "leaders", "under_replicated", "offline"], topics,
                          title="topics (leaders: node:partitions it leads)",
                          view=View(["topic", "partitions", "replicas", "leaders", "under-replicated", "offline"],
                                    lambda r: [r[0], r[1], r[2], r[3], Text(r[4], style="yellow"),
                                               Text(r[5], style="red")], right=frozenset({"partitions", "replicas"}))),
        "tasks": Section(["connector", "task", "state", "worker"], tasks, title="kafka connect: who runs what"),
    }
    write_tables(sections, fmt, sys.stdout, console=console)
    for problem in cs.problems:
        _note(f"[yellow]{escape(problem)}[/]", fmt)
    under = sum(len(t.under_replicated) for t in cs.topics)
    offline = sum(len(t.offline) for t in cs.topics)
    if under or offline:
        _note(f"[yellow]{under} under-replicated and {offline} offline partition(s)[/]", fmt)


@stack_app.command("reset")
@friendly
def stack_reset(yes: bool = typer.Option(False, "--yes", help="Do not ask.")) -> None:
    """Stop the stack and delete its state (databases, topics, reporting DB; jars are kept)."""
    from pipelines.stack.manager import Stack

    stack = Stack(_settings())
    if not yes and not typer.confirm(f"delete all data under {stack.settings.state_dir} (jars kept)?"):
        err.print("aborted", highlight=False, markup=False)
        raise typer.Exit(1)
    stack.down(say=_say)
    stack.wipe()
    _say("[green]state reset[/]")


# --------------------------------------------------------------------------- connectors
@connectors_app.command("apply")
@friendly
def connectors_apply() -> None:
    """Register (or update) every connectors/<service>/connector.json and wait until RUNNING."""
    from pipelines.stack.bootstrap import apply_connectors

    apply_connectors(_settings(), say=_say)


@connectors_app.command("status")
@friendly
def connectors_status(fmt: Format = typer.Option(Format.table, "--format", help=FORMAT_HELP)) -> None:
    """State of each connector and its tasks; exit 1 unless all are RUNNING (csv/json: the whole trace)."""
    from pipelines.connect.client import client_for, estate_connectors

    settings = _settings()
    client = client_for(settings)
    rows = []
    ok = True
    for spec in estate_connectors(settings.estate):
        name = spec["name"]
        st = client.status(name)
        ok &= st.running
        rows.append((name, st.state, [{"id": i, "state": s} for i, s in st.tasks], st.trace or ""))
    view = View(["connector", "state", "tasks", "trace (first line)"],
                lambda r: [r[0], r[1], ", ".join(f"{t['id']}:{t['state']}" for t in r[2]),
                           (r[3].strip().splitlines() or [""])[0]])
    write_rows(["connector", "state", "tasks", "trace"], rows, fmt, sys.stdout, view=view, console=console)
    if not ok:
        raise typer.Exit(1)


service_app = typer.Typer(help="Services of the estate: add one by files, no code.", no_args_is_help=True,
                          cls=_Group)
app.add_typer(service_app, name="service")


@service_app.command("add")
@friendly
def service_add(name: str = typer.Argument(..., help="Service name (lower case; becomes the topic prefix)."),
                engine: str = typer.Option(..., help="postgresql or mariadb."),
                port: int = typer.Option(None, help="Port of its database (default: the next free local port)."),
                table: str = typer.Option("records", help="The private table the skeleton captures."),
                contract: str = typer.Option(None, help="Contract table it feeds (default: the service name).")) -> None:
    """Scaffold a new service: estate entry, connector, projection, schema.sql, contract, dbt staging model."""
    from pipelines.scaffold import add_service

    estate = _settings().estate
    if port is None:
        used = {s.port for s in estate.services} | set(_settings().ports.values())
        port = max(p for p in used if p < 60000) + 1
        while port in used:
            port += 1
    written = add_service(estate, name, engine, port, table, contract)
    for path in written:
        _say(f"wrote {path}")
    c = contract or name
    from pipelines.config.load import BUNDLED_ESTATE

    r = "reporting" if estate.path == BUNDLED_ESTATE else f"reporting --estate {estate.path}"
    _say(f"""next steps (docs/own-estate.md):
  1. edit connectors/{name}/schema.sql (local stack) or point services.{name} at your database in {estate.path.name}
  2. edit connectors/{name}/projection.yaml and {estate.contracts.name}/{c}/v1.yaml to the real columns
  3. {r} contract check && {r} contract publish
  4. python -m pipelines.dbt_sources --estate {estate.path}   (dbt sources), then edit stg_{c}.sql
  5. {r} stack up (local) or {r} connectors apply (your Connect cluster); then {r} ingest
  6. {r} reconcile --table {c}; {r} dbt build --select stg_{c}""")


# --------------------------------------------------------------------------- pipeline
@app.command("stream")
@friendly
def stream(group: str = typer.Option(None, help="Kafka consumer group (default: the estate's pipeline.consumer_group)."),
           replica_every: float = typer.Option(None, help="DuckDB: publish the BI read replica every N seconds "
                                               "(default 10, 0 = off); see docs/bi.md."),
    planners: int = typer.Option(None, min=0, max=16,
                                 help="Planner processes (default REPORTING_PLANNERS or 0 = plan on the polling "
                                      "thread); 2 roughly double the planning rate on 2 cores, see docs/benchmarks.md."),
    instance_id: str = typer.Option(None, "--instance-id",
                                    help="Static member id in the consumer group (Kafka group.instance.id); on "
                                         "Kubernetes the pod name, see docs/deploy.md."),
    metrics_port: int = typer.Option(None, "--metrics-port", min=0, max=65535,
                                     help="Serve Prometheus metrics on this port (/metrics; docs/deploy.md)."),
    workers: int = typer.Option(1, "--workers", min=1, max=64,
                                help="Worker processes in the consumer group (PostgreSQL backend only), each the "
                                     "static member <instance-id or group>-<i>, restarted with that id when it "
                                     "dies; with --metrics-port P worker i serves P+i (docs/scaling.md)."),
    linger_ms: int = typer.Option(None, "--linger-ms", min=0, max=60000,
                                  help="Cut at most one batch every N ms (default: the estate's pipeline.linger_ms, if unset 250, 1000 on the DuckDB file with its replica on); "
                                       "more = less CPU per event, up to N ms more latency (docs/benchmarks.md)."),
) -> None:
    """Apply change events continuously until stopped (Ctrl-C / SIGTERM finish the current batch)."""
    import os

    from pipelines.apply.runner import run_pipeline
    from pipelines.apply.worker import FAULT_ENV, parse_fault_points

    settings = _settings()
    group = group or settings.estate.pipeline.consumer_group
    if workers > 1:
        from pipelines.apply.workers import run_workers

        # the workers' own output, relayed as it is (never read as markup)
        relay = lambda m: console.print(m, highlight=False, markup=False, soft_wrap=True)  # noqa: E731
        raise typer.Exit(run_workers(settings, workers, group, prefix=instance_id, planners=planners,
                                     metrics_port=metrics_port, say=relay, linger_ms=linger_ms))
    run_pipeline(settings, until_caught_up=False, group=group, faults=parse_fault_points(os.environ.get(FAULT_ENV, "")),
                 say=_say, replica_every=replica_every, planners=planners, instance_id=instance_id,
                 metrics_port=metrics_port, linger_ms=linger_ms)


# --------------------------------------------------------------------------- deploy
deploy_app = typer.Typer(help="Deployment files rendered from the estate file (docs/deploy.md).",
                         no_args_is_help=True, cls=_Group)
app.add_typer(deploy_app, name="deploy")


@deploy_app.command("render")
@friendly
def deploy_render(
    out: str = typer.Option(..., "--out", help="Folder to write the YAML files into."),
    image: str = typer.Option(..., "--image", help="The product's image (reporting and the estate's folder at "
                                                   "--project-dir)."),
    target: str = typer.Option("kubernetes", "--target", help="What to render for: kubernetes (Strimzi, Helm)."),
    namespace: str = typer.Option("reporting", "--namespace", "-n", help="Namespace of every resource."),
    workers: int = typer.Option(2, "--workers", min=1, help="Pipeline workers (StatefulSet replicas)."),
    partitions: int = typer.Option(6, "--partitions", min=1, help="Partitions of the change topics."),
    connect_replicas: int = typer.Option(2, "--connect-replicas", min=1, help="Kafka Connect workers."),
    connect_image: str = typer.Option(None, "--connect-image", help="Where Strimzi pushes the Connect image it "
                                                                    "builds (default <image>-connect:<tag>)."),
    connect_push_secret: str = typer.Option(None, "--connect-push-secret", help="Registry credentials Secret."),
    strimzi_api: str = typer.Option("v1", "--strimzi-api", help="v1 (Strimzi 0.49+, only one from 1.0) or "
                                                                "v1beta2 (Strimzi up to 0.48)."),
    kafka_version: str = typer.Option(None, "--kafka-version", help="Kafka of the Strimzi cluster (default 4.3.0)."),
    name: str = typer.Option(None, "--name", help="Prefix of every resource name (default: the estate's name)."),
    secret_name: str = typer.Option(None, "--secret-name", help="The Secret holding the estate's secrets "
                                                                "(default <name>-secrets)."),
    project_dir: str = typer.Option("/app", "--project-dir", help="The estate's folder inside the image."),
    service_monitor: bool = typer.Option(False, "--service-monitor/--no-service-monitor",
                                         help="Also render a Prometheus-operator ServiceMonitor."),
) -> None:
    """Render the deployment of the estate (Kafka, Connect, connectors, workers, Dagster values) into a folder."""
    from pipelines.deploy import apply_instructions, cluster_warnings, render_to_folder

    if target != "kubernetes":
        raise ValueError(f"--target {target}: only 'kubernetes' can be rendered")
    settings = _settings()
    options = {"partitions": partitions, "connect_replicas": connect_replicas, "connect_image": connect_image,
               "connect_push_secret": connect_push_secret, "strimzi_api": strimzi_api, "name": name,
               "secret_name": secret_name, "project_dir": project_dir, "service_monitor": service_monitor}
    if kafka_version:
        options["kafka_version"] = kafka_version
    files = render_to_folder(settings, out, image, namespace, workers, **options)
    for warning in cluster_warnings(settings.estate):
        err.print(f"warning: {warning}", highlight=False, markup=False)
    _say(f"wrote {len(files)} files to {out}; then:")
    for line in apply_instructions(settings, out, image, namespace, workers, **options):
        console.print(f"  {line}", highlight=False, soft_wrap=True)  # one line each, to copy


estate_app = typer.Typer(help="The estate file: derive variants of it (see docs/estate-file.md).",
                         no_args_is_help=True)


@estate_app.command("derive")
@friendly
def estate_derive(
    out: Path = typer.Argument(..., help="The estate file to write."),
    changes: list[str] = typer.Option(None, "--set", metavar="KEY=VALUE",
                                      help="Dotted key and a YAML value, e.g. reporting.backend=postgres or "
                                           "'connect.urls=[http://127.0.0.1:58083, http://127.0.0.1:58084]'; "
                                           "repeatable."),
    state_dir: Path = typer.Option(None, help="state_dir of the copy (default: the original's)."),
) -> None:
    """A copy of the estate file with keys changed, paths made absolute; checked before it is kept."""
    import yaml

    from pipelines.config.derive import derive_estate
    from pipelines.config.load import load_estate

    parsed = {}
    for item in changes or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set {item!r}: expected KEY=VALUE")
        parsed[key.strip()] = yaml.safe_load(value)
    settings = _settings()
    target = derive_estate(settings.estate.path, out, parsed,
                           state_dir=(state_dir or settings.state_dir).resolve())
    try:
        derived = load_estate(target, environ={})
    except Exception:
        target.unlink(missing_ok=True)
        raise
    _say(f"wrote {target}: estate {derived.name}, {len(derived.services)} services, backend "
         f"{derived.reporting.backend}, {len(derived.kafka.bootstrap_servers)} Kafka bootstrap server(s)"
         + (", cluster profile" if derived.kafka.local_cluster else ""))


app.add_typer(estate_app, name="estate")


ducklake_app = typer.Typer(help="The DuckLake backend: its files and their maintenance (docs/ducklake.md).",
                           no_args_is_help=True, cls=_Group)
app.add_typer(ducklake_app, name="ducklake")


def _lake(read_only: bool):
    """(the estate's settings, the lake opened) — one line when the backend is not ducklake or no lake exists."""
    from pipelines.apply.ducklake_backend import DuckLakeBackend
    from pipelines.apply.runner import ducklake_target

    settings = _settings()
    if settings.backend != "ducklake":
        raise ValueError(f"the reporting backend is {settings.backend}, not ducklake (reporting.backend in "
                         f"{settings.estate.path}, or REPORTING_BACKEND=ducklake)")
    target = ducklake_target(settings, say=lambda msg: err.print(msg, highlight=False, markup=False))  # stdout: data
    if not target.may_exist():
        raise ValueError(f"no DuckLake {target.label} yet (the pipeline creates it: reporting stream or reporting ingest)")
    return settings, DuckLakeBackend(target, read_only=read_only)


def _parquet_on_disk(data_path: Path) -> tuple[int, int]:
    """(number, total bytes) of the *.parquet files under `data_path` (a file deleted meanwhile is skipped)."""
    count = size = 0
    for path in data_path.rglob("*.parquet"):
        with contextlib.suppress(FileNotFoundError):
            size += path.stat().st_size
            count += 1
    return count, size


@ducklake_app.command("files")
@friendly
def ducklake_files(fmt: Format = typer.Option(Format.table, "--format", help=FORMAT_HELP)) -> None:
    """Data files, delete files and snapshots in the lake's catalog (read-only, also while the stream writes),
    and the Parquet files on disk under data_path."""
    from pipelines.ducklake.maintenance import count_files

    settings, backend = _lake(read_only=True)
    try:
        lake = count_files(backend)
    finally:
        backend.close()
    data_path = settings.ducklake.data_path
    disk, size = _parquet_on_disk(data_path)
    if fmt is Format.table:
        _say(f"catalog: {lake.line()}; {lake.inlined_tables:,} tables with inlined rows")
        _say(f"on disk: {disk:,} Parquet files, {size / 2**20:,.1f} MB under {data_path}")
        return
    columns = ["data_files", "delete_files", "kept_files", "scheduled_for_deletion", "snapshots", "inlined_tables",
               "parquet_files_on_disk", "parquet_bytes_on_disk"]
    write_rows(columns, [[*(getattr(lake, c) for c in columns[:6]), disk, size]], fmt, sys.stdout)


@ducklake_app.command("maintain")
@friendly
def ducklake_maintain(
    keep_snapshots_hours: float = typer.Option(None, "--keep-snapshots-hours", min=0, metavar="H",
                                               help="Keep every snapshot younger than this (default: the estate's "
                                                    "reporting.ducklake.maintenance.keep_snapshots_hours)."),
    keep_daily_days: int = typer.Option(None, "--keep-daily-days", min=0, metavar="N",
                                        help="Beyond that, keep each UTC day's last snapshot for N days (default: "
                                             "the estate's keep_daily_days)."),
    keep_files_hours: float = typer.Option(None, "--keep-files-hours", min=0, metavar="H",
                                           help="Delete files no snapshot needs once they are this old (default: "
                                                "the estate's keep_files_hours)."),
) -> None:
    """Flush inlined rows, rewrite and merge data files, expire old snapshots, delete unneeded files; each step
    commits on its own, so it runs beside `reporting stream` (what the Dagster schedule runs)."""
    from pipelines.ducklake.maintenance import maintain

    settings, backend = _lake(read_only=False)
    keep = settings.ducklake.maintenance
    hours = (keep.keep_snapshots_hours if keep_snapshots_hours is None else keep_snapshots_hours,
             keep.keep_files_hours if keep_files_hours is None else keep_files_hours)
    days = keep.keep_daily_days if keep_daily_days is None else keep_daily_days
    try:
        for attempt in (1, 2):
            try:
                report = maintain(backend, *hours, say=_say, keep_daily_days=days)
                break
            except ConnectionError as exc:  # the engine died (DuckDB 1.5.5 under lock contention: docs/ducklake.md)
                if attempt == 2:
                    raise
                _say(f"ducklake: {exc}; starting a new engine and maintaining again")
                backend.close()
                backend = _lake(read_only=False)[1]
    finally:
        backend.close()
    _say(report.line())
    disk, size = _parquet_on_disk(settings.ducklake.data_path)
    _say(f"on disk: {disk:,} Parquet files, {size / 2**20:,.1f} MB; {report.snapshots_expired:,} snapshots expired")


@app.command("sql")
@friendly
def sql(read_only: bool = typer.Option(True, "--read-only/--read-write", help="BI role / writer role."),
        command: str = typer.Option(None, "-c", "--command", help="Run one statement and print the result."),
        as_of: str = typer.Option(None, "--as-of", help="DuckLake: every table as it was at this time "
                                  "(e.g. 2026-11-30T23:59:59Z).")) -> None:
    """SQL prompt on the reporting DB (PostgreSQL: psql as bi_reader; DuckDB: main file or its read replica;
    DuckLake: committed data, or history with --as-of)."""
    from pipelines.bi.sql_shell import open_sql

    code = open_sql(_settings(), read_only=read_only, command=command, as_of=_timestamp(as_of) if as_of else None)
    if code:
        raise typer.Exit(code)


def _timestamp(text: str) -> str:
    """An ISO 8601 time (a trailing Z = UTC; no zone = UTC) as the UTC text DuckLake's SNAPSHOT_TIME takes."""
    import datetime as dt

    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"--as-of {text!r}: expected an ISO 8601 time such as 2026-11-30T23:59:59Z") from exc
    when = when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)
    return when.strftime("%Y-%m-%d %H:%M:%S.%f+00")


@app.command("grants")
@friendly
def grants() -> None:
    """Print the SQL that gives the BI role read access on a reporting PostgreSQL you run yourself
    (run it as superuser; the local stack applies it by itself)."""
    from pipelines.bi.grants import Roles, role_sql, schema_sql

    pg = _settings().estate.reporting.postgres
    if pg is None:
        raise ValueError(f"{_settings().estate.path}: reporting.postgres is not declared")
    roles = Roles.of(pg)
    print(f"-- roles {roles.writer} (writer, owns the schemas) and {roles.reader} (BI) must exist and log in")
    print(f"-- 1. in any database:{role_sql(roles)}")
    print(f"-- 2. in database {roles.database}:")
    print(schema_sql(roles))


@app.command("ingest")
@friendly
def ingest(
    until_caught_up: bool = typer.Option(True, "--until-caught-up/--forever",
                                         help="Drain every partition to its end, then exit."),
    group: str = typer.Option(None, help="Kafka consumer group (default: the estate's pipeline.consumer_group)."),
    planners: int = typer.Option(None, min=0, max=16,
                                 help="Planner processes (default REPORTING_PLANNERS or 0 = plan on the polling "
                                      "thread); 2 roughly double the planning rate on 2 cores, see docs/benchmarks.md."),
) -> None:
    """Apply change events until caught up, then exit (what Dagster runs)."""
    import os

    from pipelines.apply.runner import run_pipeline
    from pipelines.apply.worker import FAULT_ENV, parse_fault_points

    run_pipeline(_settings(), until_caught_up=until_caught_up, group=group or _settings().estate.pipeline.consumer_group,
                 faults=parse_fault_points(os.environ.get(FAULT_ENV, "")), say=_say, planners=planners)


dlq_app = typer.Typer(help="Dead letters: events that could not be applied.", no_args_is_help=True, cls=_Group)
app.add_typer(dlq_app, name="dlq")


def _dead_letter_filter(settings: Settings, backend, name: str | None) -> list[str | None]:
    """What `dlq --table NAME` selects: [None] for every dead letter, else the names to filter by.

    Like `reconcile --table`: a contract table (`orders`) stands for each of its versions; otherwise NAME
    must be a physical contract table, a source table or a topic of the estate's projections, or be named
    by a stored dead letter (a retired table, a topic without projection). Anything else is an error."""
    if name is None:
        return [None]
    from pipelines.contract.model import load_contracts
    from pipelines.projection import load_estate_projections

    contracts = load_contracts(settings.estate.contracts)
    physical = {c.physical_name for c in contracts}
    versions = sorted(c.physical_name for c in contracts if c.table == name)
    if versions and name not in physical:
        return versions
    projections = load_estate_projections(settings.estate)
    if name in physical | {tp.source_table for tp in projections.values()} | set(projections):
        return [name]
    stored = backend.query("SELECT DISTINCT target_table, source_table, topic FROM _pipeline.dead_letters")
    if any(name in row for row in stored):
        return [name]
    raise ValueError(f"unknown table {name!r}: no contract table, source table or topic of "
                     f"{settings.estate.path.name} has that name (contract tables: "
                     f"{', '.join(sorted({c.table for c in contracts}))})")


@dlq_app.command("list")
@friendly
def dlq_list(table: str = typer.Option(None, help="Only this contract table, source table or topic."),
             all_: bool = typer.Option(False, "--all", help="Include replayed ones."),
             limit: int = typer.Option(50, help="Show at most this many."),
             fmt: Format = typer.Option(Format.table, "--format", help=FORMAT_HELP)) -> None:
    """Pending dead letters with topic/partition/offset, stage and reason."""
    from pipelines.apply.dead_letters import list_dead_letters
    from pipelines.bi.reader import open_operator_reading

    settings = _settings()
    # read-only; while `reporting stream` holds a DuckDB file: the replicas it publishes (the note says when)
    reading = open_operator_reading(settings)
    try:
        created = reading.has("_pipeline", "dead_letters")
        rows = []
        if created:
            selected = _dead_letter_filter(settings, reading.backend, table)
            rows = sorted((d for name in selected
                           for d in list_dead_letters(reading.backend, name, include_replayed=all_, limit=limit)),
                          key=lambda d: d.id)[:limit]
    finally:
        reading.close()
    if reading.note:
        _note(escape(reading.note), fmt)
    if not created:
        _note("_pipeline.dead_letters not created yet (the pipeline creates it when it starts: "
              "`reporting stream` or `reporting ingest`)", fmt)
    columns = ["id", "topic", "partition", "offset", "stage", "table", "retries", "reason", "first_seen_at"]
    view = View(["id", "topic[partition]@offset", "stage", "table", "retries", "reason"],
                lambda r: [str(r[0]), f"{r[1]}[{r[2]}]@{r[3]}", r[4], r[5], r[6], r[7]], frozenset({"retries"}))
    write_rows(columns, [(d.id, d.topic, d.partition, d.offset, d.stage, d.target_table, d.retries, d.reason,
                          d.first_seen_at) for d in rows], fmt, sys.stdout, view=view, console=console)
    _note(f"{len(rows)} dead letter(s) shown", fmt)


@dlq_app.command("replay")
@friendly
def dlq_replay(table: str = typer.Option(None, help="Only this contract table, source table or topic."),
               group: str = typer.Option(None, help="Kafka consumer group (default: the estate's pipeline.consumer_group).")) -> None:
    """Re-apply pending dead letters with the current projections and contracts."""
    from pipelines.apply.dead_letters import ReplayResult, replay
    from pipelines.apply.runner import load_parts, open_backend

    settings = _settings()
    parts = load_parts(settings.estate)
    backend = open_backend(settings)
    try:
        backend.ensure_schema(list(parts.contracts.values()))
        res = ReplayResult(0, 0, 0, 0)
        for name in _dead_letter_filter(settings, backend, table):
            one = replay(backend, parts, group or settings.estate.pipeline.consumer_group, name)
            res = ReplayResult(res.attempted + one.attempted, res.replayed + one.replayed,
                               res.still_failing + one.still_failing, res.rows + one.rows)
    finally:
        backend.close()
    _say(f"replayed {res.replayed} of {res.attempted} dead letter(s) ({res.rows} row change(s) applied); "
         f"{res.still_failing} still failing")
    if res.still_failing:
        for topic, n in sorted(res.failing_by_topic.items()):
            source = parts.source_tables.get(topic, topic)
            _say(f"  {n} dead letter(s) of {topic} cannot succeed by replay: their events keep the shape they were "
                 f"captured with. Fix the projection/contract and replay again, or re-read the current rows: "
                 f"`reporting resnapshot {source}` (see `reporting dlq list --table {topic}` for the reasons)")
        raise typer.Exit(1)


@app.command("status")
@friendly
def status(group: str = typer.Option(None, help="Kafka consumer group (default: the estate's pipeline.consumer_group)."),
           fmt: Format = typer.Option(Format.table, "--format",
                                      help=FORMAT_HELP + " json: {tables, drift, lags, slots, events}.")) -> None:
    """Per contract table: rows, freshness vs objective, dead letters, last error; lag per partition; events/s."""
    from pipelines.apply.dead_letters import count_dead_letters
    from pipelines.apply.runner import load_parts
    from pipelines.apply.status import (
        drift_flags,
        events_per_second,
        partition_lags,
        table_statuses,
        unrouted_dead_letters,
    )
    from pipelines.bi.reader import open_operator_reading

    settings = _settings()
    group = group or settings.estate.pipeline.consumer_group
    parts = load_parts(settings.estate)
    contracts = list(parts.contracts.values())
    # read-only, no DDL: DuckDB main file read_only (while `reporting stream` holds it: the replicas it
    # publishes), PostgreSQL read-only transactions; tables the pipeline has not created are said so
    reading = open_operator_reading(settings)
    try:
        ready = all(reading.has("_pipeline", t) for t in ("table_status", "dead_letters", "offsets", "batches"))
        created = [c for c in contracts if ready and reading.has("reporting", c.physical_name)]
        known = ({ts.physical_name: ts for ts in table_statuses(reading.backend, created, feeds=parts.planner.feeds)}
                 if created else {})
        dead = count_dead_letters(reading.backend) if ready else {}
        unrouted = unrouted_dead_letters(reading.backend, parts.planner.feeds) if ready else None
        drift = drift_flags(reading.backend, parts.source_tables) if ready else []
        rate = events_per_second(reading.backend, group) if ready else 0.0
        stored = reading.backend.stored_offsets(group) if ready else {}
    finally:
        reading.close()
    if reading.note:
        _note(escape(reading.note), fmt)
    missing = [c.physical_name for c in contracts if c.physical_name not in known]
    if missing:
        _note(f"not created yet: {', '.join(missing)} (the pipeline creates its tables when it starts: "
              "`reporting stream` or `reporting ingest`)", fmt)
    sections: dict[str, Section] = {}

    def show(name: str, section: Section) -> None:  # a table as soon as it is known; csv/json at the end
        sections[name] = section
        if fmt is Format.table:
            write_tables({name: section}, fmt, sys.stdout, console=console)

    def freshness(r) -> Text:
        return Text("never" if r[2] is None else f"{r[2]:,.0f}s", style="green" if r[3] else "yellow")

    show("tables", Section(
        ["contract_table", "live_rows", "freshness_s", "fresh", "objective_s", "dead_letters", "last_error"],
        [(ts.physical_name, ts.rows, ts.freshness_s, ts.fresh, ts.objective_s, ts.dead_letters, ts.last_error)
         if (ts := known.get(c.physical_name)) is not None else
         (c.physical_name, None, None, False, c.freshness_seconds, dead.get(c.physical_name, 0), None)
         for c in contracts],
        view=View(["contract table", "live rows", "freshness", "objective", "dead letters", "last error"],
                  lambda r: [r[0], "not created yet" if r[1] is None else r[1], freshness(r), f"{r[4]}s", r[5], r[6]],
                  frozenset({"live rows", "freshness", "objective", "dead letters"}))))
    if unrouted is not None:
        _note(f"[yellow]{unrouted.count} unrouted dead letter(s) (no projection feeds their topic); newest: "
              f"{escape(unrouted.newest_error)}[/]", fmt)
    if drift or fmt is not Format.table:
        show("drift", Section(
            ["source_table", "topic", "first_position", "first_seen_at", "dead_letters", "reason"],
            [(d.source_table, d.topic, d.first_position, d.first_seen_at, d.dead_letters, d.reason) for d in drift],
            view=View(["DRIFT: source table", "first seen at", "dead letters", "reason (heal: reporting resnapshot)"],
                      lambda r: [r[0], r[2], r[4], r[5]], frozenset({"dead letters"}))))
    try:
        from pipelines.kafka.security import client_config

        lags = partition_lags(stored, client_config(settings))
    except Exception as exc:  # noqa: BLE001 - Kafka down is a status, not a crash
        lags = partition_lags(stored, None)
        _note(f"[yellow]Kafka not reachable ({exc.__class__.__name__}): lag unknown[/]", fmt)
    show("lags", Section(
        ["topic", "partition", "next_offset", "end_offset", "lag"],
        [(pl.topic, pl.partition, pl.next_offset, pl.end_offset, pl.lag) for pl in lags],
        view=View(["topic", "partition", "next offset", "end offset", "lag"],
                  lambda r: [r[0], str(r[1]), r[2], "?" if r[3] is None else r[3], "?" if r[4] is None else r[4]],
                  frozenset({"partition", "next offset", "end offset", "lag"}))))
    _note(f"events/s over the last minute: {rate:,.1f}", fmt)
    from pipelines.apply.slots import slot_statuses

    slots, problems = slot_statuses(settings)
    for problem in problems:  # a source down is a status line, not a crash
        _note(f"[yellow]replication slot unknown: {escape(problem)}[/]", fmt)
    threshold = int(settings.estate.pipeline.wal_warn_mb * 2**20)

    def slot_state(r) -> Text:  # the warning when the slot retains too much WAL
        return Text(r[4], style="bold yellow") if r[4] else Text("active" if r[2] else "inactive")

    slot_rows = [(sl.service, sl.slot, sl.active, sl.retained_bytes, sl.warning(threshold)) for sl in slots]
    slot_section = Section(["service", "slot", "active", "retained_bytes", "warning"], slot_rows,
                           view=View(["service", "slot", "WAL retained", "state"],
                                     lambda r: [r[0], r[1], f"{r[3] / 2**20:,.1f} MB", slot_state(r)],
                                     frozenset({"WAL retained"})))
    if slot_rows or fmt is not Format.table:
        show("slots", slot_section)
    sections["events"] = Section(["consumer_group", "window_s", "events_per_second"], [(group, 60, rate)])
    if fmt is not Format.table:
        write_tables(sections, fmt, sys.stdout)


@app.command("reconcile")
@friendly
def reconcile(table: list[str] = typer.Option(None, "--table", "-t",
                                              help="Contract table (orders = every live major, or orders_v2)."),
              show: int = typer.Option(10, help="Differences shown per kind (counts are always complete)."),
              fmt: Format = typer.Option(Format.table, "--format",
                                         help=FORMAT_HELP + " json: {tables, differences}.")) -> None:
    """Compare every contract table with its source (same projection); exit 1 on any difference."""
    from pipelines.bi.reader import read_notes
    from pipelines.reconcile.render import reconcile_command

    # read-only; while `reporting stream` holds a DuckDB file, the replicas it publishes: one line says when
    with read_notes(lambda note: _note(escape(note), fmt)):
        code = reconcile_command(_settings(), table or None, show, console=console, fmt=fmt, stream=sys.stdout,
                                 err=err)
    raise typer.Exit(code)


bench_app = typer.Typer(help="Benchmarks (never part of the test run): results go to bench/results/.",
                        no_args_is_help=True, cls=_Group)
app.add_typer(bench_app, name="bench")


@bench_app.callback()
def bench_options(docs_images: bool = typer.Option(
        False, "--docs-images", help="Also copy the plot over docs/img/bench-<kind>.png (the documented run).")) -> None:
    from pipelines.bench.plot import set_docs_images

    set_docs_images(docs_images)


@bench_app.command("apply")
@friendly
def bench_apply_cmd(
    events: int = typer.Option(1_000_000, help="Change events pre-filled into the topic."),
    keys: int = typer.Option(200_000, help="Distinct order ids the events touch."),
    backend: list[str] = typer.Option(None, help="Backends to measure (repeatable; default duckdb and postgres)."),
    batch: int = typer.Option(20_000, help="Max records per poll/batch (20,000 = the stream's default)."),
    seed: int = typer.Option(1),
    planners: list[int] = typer.Option(None, help="Planner processes to measure (repeatable; default 0 and 2: "
                                                  "in-process planning and two planner processes)."),
    reps: int = typer.Option(1, help="Repetitions (order rotated); medians reported."),
) -> None:
    """Pre-fill a topic with N events (20% c / 70% u / 10% d) and apply it from offset 0 on each backend."""
    from pipelines.bench.apply_bench import bench_apply

    bench_apply(events=events, keys=keys, backends=tuple(backend or ("duckdb", "postgres")), batch=batch, seed=seed,
                say=_say, planners=tuple(planners or (0, 2)), reps=reps)


@bench_app.command("lake-soak")
@friendly
def bench_lake_soak_cmd(
    rate: int = typer.Option(2000, help="Change events per second offered to the lake."),
    minutes: float = typer.Option(60.0, help="How long to stream."),
    maintain_every_min: float = typer.Option(None, help="Minutes between maintenance runs (default: every 15)."),
    linger_ms: int = typer.Option(None, help="A batch (one commit) every N ms (default: the estate's pipeline.linger_ms)."),
    keys: int = typer.Option(100_000, help="Distinct order ids the events touch."),
    keep_snapshots_hours: float = typer.Option(None, help="Default: reporting.ducklake.maintenance's."),
    keep_files_hours: float = typer.Option(None, help="Default: reporting.ducklake.maintenance's."),
) -> None:
    """Stream into a fresh DuckLake for a long time with maintenance beside it; record its files and snapshots."""
    from pipelines.bench.lake_soak import lake_soak
    from pipelines.config.model import effective_linger_ms

    settings = _settings()
    lake = settings.ducklake
    if lake is None:
        raise typer.BadParameter("the estate declares no reporting.ducklake section")
    lake_soak(rate=rate, minutes=minutes, maintain_every_s=(maintain_every_min or 15.0) * 60,
              linger_s=effective_linger_ms(settings.estate.pipeline.linger_ms if linger_ms is None else linger_ms, "ducklake",
                                        replica_on=False) / 1000,
              keys=keys, keep_daily_days=lake.maintenance.keep_daily_days,
              keep_snapshots_hours=lake.maintenance.keep_snapshots_hours if keep_snapshots_hours is None
              else keep_snapshots_hours,
              keep_files_hours=lake.maintenance.keep_files_hours if keep_files_hours is None else keep_files_hours,
              folder=settings.state_dir / "bench-lake-soak",
              say=_say)


@app.command("resnapshot")
@friendly
def resnapshot_cmd(table: str = typer.Argument(..., help="Contract table (orders_v1), contract (orders), source "
                                                         "table (public.orders) or topic."),
                   snapshot_type: str = typer.Option("blocking", "--type", help="blocking or incremental."),
                   wait: bool = typer.Option(True, "--wait/--no-wait", help="Show progress until the rows are in Kafka.")
                   ) -> None:
    """Re-read a source table through its connector (heals rows after source-side drift).

    Sends Debezium an execute-snapshot signal for the source table feeding TABLE; its current rows
    arrive as snapshot events, which the stream (or `reporting ingest`) applies."""
    from pipelines.resnapshot import resnapshot

    resnapshot(_settings(), table, snapshot_type=snapshot_type, wait=wait, say=_say)


@app.command("run")
@friendly
def run_job_cmd(job: str = typer.Argument(None, help="Dagster job (omit to list them).")) -> None:
    """Run a Dagster job in the project's instance (the UI shows the run).

    E.g. ingest_job, dbt_build_job, reconcile_job; without a name, list the jobs. The run, its
    materializations and check results land in the instance `reporting ui` serves."""
    from pipelines.dagster_runs import job_names, run_job

    if not job:
        for name in job_names(_settings()):
            _say(name)
        return
    if not run_job(_settings(), job, say=_say):
        raise typer.Exit(1)


@app.command("dbt", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@friendly
def dbt_cmd(ctx: typer.Context,
            command: str = typer.Argument(..., help="dbt command: build, run, test, source, compile, ls, ...")) -> None:
    """Run dbt on the estate's dbt project and reporting database.

    The profile variables come from the estate (target = its reporting backend). Extra arguments go to
    dbt, e.g. `reporting dbt build --select marts`."""
    from pipelines.dbt_cli import run_dbt

    code = run_dbt(_settings(), command, list(ctx.args))
    if code:
        raise typer.Exit(code)


@app.command("ui")
@friendly
def ui(stop: bool = typer.Option(False, "--stop", help="Stop the webserver and daemon instead.")) -> None:
    """Start the Dagster webserver + daemon on loopback (DAGSTER_HOME in the state folder); print the URL."""
    from pipelines.ui import start_ui, stop_ui

    if stop:
        if not stop_ui(_settings(), say=_say):
            _say("the Dagster UI was not running: nothing to stop")
    else:
        start_ui(_settings(), say=_say)


@bench_app.command("peer")
@friendly
def bench_peer_cmd(
    events: int = typer.Option(1_000_000, help="Change events pre-filled into the topic."),
    keys: int = typer.Option(200_000, help="Distinct order ids the events touch."),
    reps: int = typer.Option(3, help="Repetitions (order rotated); medians and per-repetition ratios."),
    seed: int = typer.Option(1),
) -> None:
    """Ours (PostgreSQL, DuckDB) side by side with Debezium's JDBC sink on the same events; rows compared."""
    from pipelines.bench.apply_bench import bench_peer

    bench_peer(events=events, keys=keys, reps=reps, seed=seed, say=_say)


@bench_app.command("e2e")
@friendly
def bench_e2e_cmd(
    rates: str = typer.Option("250,500,1000,1500,2000", help="Simulator rates (ops/s) of the ladder."),
    step_s: float = typer.Option(60.0, help="Seconds per rate."),
    backend: str = typer.Option("postgres", help="Reporting backend for the stream."),
) -> None:
    """Simulator at increasing rates with `reporting stream` running: latency percentiles, sustained rate."""
    from pipelines.bench.e2e_bench import bench_e2e

    bench_e2e(rates=tuple(float(r) for r in rates.split(",")), step_s=step_s, backend=backend, say=_say)


@bench_app.command("linger")
@friendly
def bench_linger_cmd(
    lingers: str = typer.Option("0,100,250,500,1000", help="pipeline.linger_ms values, comma-separated."),
    rate: float = typer.Option(3000.0, help="Simulator rate (ops/s) for every value."),
    step_s: float = typer.Option(40.0, help="Seconds of traffic per value and repetition."),
    backend: str = typer.Option("duckdb", help="Reporting backend for the stream."),
    reps: int = typer.Option(2, min=1, help="Repetitions (order alternated); medians reported."),
    bulk: bool = typer.Option(True, help="End with the bulk reference (Debezium alone, then the stream's catch-up)."),
) -> None:
    """CPU per event and commit-to-visible latency against pipeline.linger_ms at one rate (the trade's curve)."""
    from pipelines.bench.linger_curve import bench_linger

    bench_linger(lingers=tuple(int(v) for v in lingers.split(",")), rate_ops=rate, step_s=step_s, backend=backend,
                 reps=reps, bulk=bulk, say=_say)


@bench_app.command("ab")
@friendly
def bench_ab_cmd(
    from_group: str = typer.Option(..., "--from-group", help=(
        "Consumer group of an earlier run on this stack whose stored offsets both sides start from (the "
        "`group` in a `bench linger` or `bench e2e` results file).")),
    a: str = typer.Option("", "--a", help='Side A\'s `reporting stream` arguments, one string (e.g. "--linger-ms 0").'),
    b: str = typer.Option("", "--b", help="Side B's `reporting stream` arguments."),
    a_env: list[str] = typer.Option([], "--a-env", help="KEY=VALUE in side A's environment (repeatable; e.g. "
                                                        "PYTHONPATH=<an older checkout>)."),
    b_env: list[str] = typer.Option([], "--b-env", help="KEY=VALUE in side B's environment (repeatable)."),
    label_a: str = typer.Option("A", help="Name of side A in the output and results."),
    label_b: str = typer.Option("B", help="Name of side B."),
    backend: str = typer.Option("duckdb", help="Reporting backend of both sides (each gets its own copy)."),
    rate: float = typer.Option(1000.0, help="Simulator rate (ops/s)."),
    step_s: float = typer.Option(60.0, help="Seconds of traffic."),
) -> None:
    """Two `reporting stream`s side by side on the same live traffic, each into its own copy of the
    reporting DB: CPU per event (by stage) and Kafka-to-visible latency, A against B (docs/benchmarks.md §8)."""
    import shlex

    from pipelines.bench.stream_ab import bench_stream_ab, env_pairs

    bench_stream_ab(backend, from_group, shlex.split(a), shlex.split(b), a_env=env_pairs(a_env),
                    b_env=env_pairs(b_env), rate_ops=rate, step_s=step_s, labels=(label_a, label_b), say=_say)


@bench_app.command("capacity")
@friendly
def bench_capacity_cmd(
    workers: str = typer.Option("1,2,3", help="Worker counts to measure, comma-separated."),
    bulk: int = typer.Option(20_000, help="Historical orders bulk-loaded as the backlog (0 = live traffic instead)."),
    load_s: float = typer.Option(60.0, help="Seconds of simulator traffic that make the backlog (with --bulk 0)."),
    rate: float = typer.Option(1500.0, help="Simulator rate (ops/s) of the backlog."),
    latency_rate: float = typer.Option(500.0, help="Simulator rate (ops/s) while latency is measured."),
    latency_s: float = typer.Option(20.0, help="Seconds of steady traffic per configuration for the latency."),
    broker_down_workers: int = typer.Option(2, help="Workers of the run with one Kafka node down (0 = skip it)."),
) -> None:
    """Worker group on the PostgreSQL backend of the cluster profile: backlog drain rate and commit-to-visible
    latency with 1, 2, 3 workers and with one Kafka node down (docs/scaling.md)."""
    from pipelines.bench.capacity import bench_capacity

    bench_capacity(_settings(), workers=tuple(int(w) for w in workers.split(",")), bulk=bulk, load_s=load_s,
                   rate_ops=rate,
                   latency_rate=latency_rate, latency_s=latency_s, broker_down_workers=broker_down_workers or None,
                   say=_say)


@bench_app.command("snapshot")
@friendly
def bench_snapshot_cmd(
    orders: int = typer.Option(1_000_000, help="Orders bulk-loaded before a fresh connector snapshots them."),
    backend: str = typer.Option("duckdb", help="Reporting backend."),
) -> None:
    """Bulk-load N orders, register a fresh connector, time until the contract table is complete."""
    from pipelines.bench.snapshot_bench import bench_snapshot

    bench_snapshot(orders=orders, backend=backend, say=_say)


# --------------------------------------------------------------------------- estate traffic
@app.command("simulate")
@friendly
def simulate(
    rate: float = typer.Option(200.0, help="Business operations per second (0 = as fast as possible)."),
    duration: float = typer.Option(30.0, help="Seconds to run."),
    seed: int = typer.Option(7, help="Seed: the same seed gives the same sequence of operations."),
    workers: int = typer.Option(1, help="Independent shopper streams (each with its own connections)."),
    bulk: int = typer.Option(0, help="Instead of live traffic, bulk-load this many historical orders (COPY)."),
) -> None:
    """Drive MusicCorp's business flows against the service databases, as the services would."""
    from estate import simulator

    urls = _settings().service_urls()
    if bulk:
        report = simulator.bulk_load(urls, bulk, seed=seed)
        _say(str(report))
        return
    report = simulator.run(urls, rate=rate, duration=duration, seed=seed, workers=workers)
    _say(report.summary())


@app.command("demo")
@friendly
def demo(
    duration: float = typer.Option(20.0, help="Seconds of simulated traffic."),
    rate: float = typer.Option(100.0, help="Business operations per second during the demo."),
    seed: int = typer.Option(7, help="Traffic seed."),
) -> None:
    """The whole scene: stack up, MusicCorp traffic, pipeline until caught up, dbt build, a report."""
    from pipelines.demo import run_demo

    run_demo(_settings(), duration=duration, rate=rate, seed=seed, say=_say, console=console)


def main() -> None:  # pragma: no cover - console entry point
    app(sys.argv[1:])


if __name__ == "__main__":  # pragma: no cover
    main()
