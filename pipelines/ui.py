"""`reporting ui` / `make ui`: the Dagster webserver and daemon (on loopback in the example estate), with a
persistent instance.

Everything comes from the estate's `dagster` section: DAGSTER_HOME is `dagster.home` (`{state_dir}/dagster`
in the example; kept across restarts: run history, schedules, sensor cursors), the webserver listens on
`dagster.host`:`dagster.port`. The webserver and daemon get REPORTING_ESTATE (the estate file of the
caller's settings), so the code location and its runs read the same estate.
DAGSTER_HOME/dagster.yaml is written on every start, so the settings below always hold:
- runs go through the QueuedRunCoordinator (the daemon launches them, at most 4 at once);
- pool `reporting_db_writer` has limit 1 (op granularity): every step that opens the reporting
  database claims the pool's single slot, so only one run at a time touches a DuckDB file; a run
  whose first steps all need the pool waits in the queue, and the pool_wait_sensor writes why into it.
Processes: webserver and daemon in their own sessions, pid files in DAGSTER_HOME, logs in
`<state>/logs/dagster-{webserver,daemon}.log`;
`stop_ui` stops both and whatever they started (code servers, run workers).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pipelines
from pipelines.config.load import ESTATE_ENV
from pipelines.settings import Settings
from pipelines.stack import proc
from pipelines.stack.errors import StackError

CODE_ROOT = Path(pipelines.__file__).resolve().parent.parent
"""The folder the `pipelines` package is imported from: the code location's working directory."""

POOL = "reporting_db_writer"
POOL_LIMIT = 1
MAX_CONCURRENT_RUNS = 4


@dataclass(frozen=True)
class UiProcesses:
    url: str
    home: Path
    webserver_pid: int
    daemon_pid: int

    @property
    def asset_graph_url(self) -> str:
        """Where a user should land: the global asset graph."""
        return f"{self.url}/asset-groups"


def dagster_home(settings: Settings) -> Path:
    """DAGSTER_HOME of the UI: the estate's dagster.home."""
    return settings.estate.dagster.home


def instance_yaml(home: Path) -> str:
    """dagster.yaml of the UI's instance (storage under `home`, queued runs, the reporting DB pool)."""
    return f"""# Written by `reporting ui` (pipelines/ui.py) on every start: edit that file, not this one.
storage:
  sqlite:
    base_dir: {home / "storage"}
local_artifact_storage:
  module: dagster.core.storage.root
  class: LocalArtifactStorage
  config:
    base_dir: {home}
compute_logs:
  module: dagster.core.storage.local_compute_log_manager
  class: LocalComputeLogManager
  config:
    base_dir: {home / "compute_logs"}
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
concurrency:
  runs:
    max_concurrent_runs: {MAX_CONCURRENT_RUNS}
  pools:
    # One slot per pool unless set otherwise; {POOL} is also set to {POOL_LIMIT} explicitly at start.
    # DuckDB lets one process write a file (and then nobody else may read it): runs take turns.
    granularity: op
    default_limit: {POOL_LIMIT}
    op_granularity_run_buffer: 0
telemetry:
  enabled: false
# no "Join the Dagster community" dialog over the asset graph on a fresh UI
nux:
  enabled: false
"""


def workspace_yaml() -> str:
    return f"""# Written by `reporting ui`: the repository's workspace.yaml, with an absolute working directory.
load_from:
  - python_module:
      module_name: pipelines.definitions
      attribute: defs
      working_directory: {CODE_ROOT}
"""


def ui_env(settings: Settings, home: Path, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of the UI processes: the caller's (`environ`, default os.environ), pinned to the
    estate file of `settings` (REPORTING_ESTATE) and to DAGSTER_HOME `home`.

    The estate's overrides the caller had travel with it, resolved so that they mean the same from the
    webserver's working directory: REPORTING_STATE_DIR and REPORTING_DUCKDB_PATH become the absolute
    folder and file of `settings`; REPORTING_BACKEND, REPORTING_PORT_OFFSET and REPORTING_PLANNERS
    pass as they are. The code location then loads exactly the configuration of `settings`."""
    env = dict(os.environ if environ is None else environ)
    env.update({
        "DAGSTER_HOME": str(home),
        ESTATE_ENV: str(settings.estate.path),
        "PYTHONPATH": os.pathsep.join(p for p in (str(CODE_ROOT), env.get("PYTHONPATH", "")) if p),
    })
    if env.get("REPORTING_STATE_DIR"):
        env["REPORTING_STATE_DIR"] = str(settings.state_dir)
    if env.get("REPORTING_DUCKDB_PATH"):
        env["REPORTING_DUCKDB_PATH"] = str(settings.duckdb_path)
    return env


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def _set_pool_limit(home: Path) -> None:
    from dagster import DagsterInstance

    with DagsterInstance.from_config(str(home)) as instance:
        instance.event_log_storage.set_concurrency_slots(POOL, POOL_LIMIT)


def _graphql(url: str, query: str, timeout: float = 10) -> dict:
    import requests

    r = requests.post(f"{url}/graphql", json={"query": query}, timeout=timeout)
    r.raise_for_status()
    body = r.json()
    if body.get("errors"):
        raise RuntimeError(str(body["errors"])[:300])
    return body["data"]


def location_loaded(url: str) -> bool:
    """True once the webserver has loaded the code location (raises with its error if loading failed)."""
    data = _graphql(url, "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus "
                         "locationOrLoadError { __typename ... on PythonError { message } } } } } }")
    entries = data["workspaceOrError"].get("locationEntries") or []
    for e in entries:
        err = e.get("locationOrLoadError") or {}
        if err.get("__typename") == "PythonError":
            raise StackError(f"code location {e['name']} failed to load: {err['message'].strip().splitlines()[-1]}",
                             err["message"])
    return bool(entries) and all(e["loadStatus"] == "LOADED" for e in entries)


def start_ui(settings: Settings | None = None, port: int | None = None, wait: bool = True,
             say: Callable[[str], None] = print, timeout: float = 240) -> UiProcesses:
    """Start dagster-webserver and dagster-daemon on the estate's dagster.host:port (`port` overrides it)
    with DAGSTER_HOME=dagster.home; print the URL.

    `wait`: return only when the webserver answers and the code location is loaded. Raises StackError
    (one line, log tail as detail) when a port is taken or a process dies during start-up.
    """
    settings = settings or Settings.load()
    port = port or settings.estate.dagster.port
    host = settings.estate.dagster.host
    home = dagster_home(settings)
    logs = settings.log_dir  # not <home>/logs: Dagster rotates that folder for its own use
    logs.mkdir(parents=True, exist_ok=True)
    home.mkdir(parents=True, exist_ok=True)
    web_pid_file, daemon_pid_file = home / "webserver.pid", home / "daemon.pid"
    for pid_file, what in ((web_pid_file, "dagster-webserver"), (daemon_pid_file, "dagster-daemon")):
        pid = proc.read_pid(pid_file)
        if pid is not None and proc.pid_alive(pid):
            raise StackError(f"{what} is already running (pid {pid}; stop it with stop_ui / `reporting ui --stop`)")
    proc.ensure_port_free("dagster-webserver", host, port)
    (home / "dagster.yaml").write_text(instance_yaml(home))
    workspace = home / "workspace.yaml"
    workspace.write_text(workspace_yaml())
    _set_pool_limit(home)
    env = ui_env(settings, home)
    web_log, daemon_log = logs / "dagster-webserver.log", logs / "dagster-daemon.log"
    web_pid = proc.spawn([_bin("dagster-webserver"), "-h", host, "-p", str(port), "-w", str(workspace)],
                         web_log, web_pid_file, env=env, cwd=CODE_ROOT)
    daemon_pid = proc.spawn([_bin("dagster-daemon"), "run", "-w", str(workspace)], daemon_log, daemon_pid_file,
                            env=env, cwd=CODE_ROOT)
    url = f"http://{host}:{port}"
    if wait:
        try:
            proc.wait_until("dagster-webserver", lambda: location_loaded(url), timeout, log=web_log,
                            alive=lambda: proc.pid_alive(web_pid), interval=1.0)
            if not proc.pid_alive(daemon_pid):
                raise StackError(f"dagster-daemon exited during start-up (log: {daemon_log})", proc.tail(daemon_log))
        except BaseException:
            stop_ui(settings, say=lambda _m: None)
            raise
    handle = UiProcesses(url, home, web_pid, daemon_pid)
    say(f"Dagster UI: {handle.asset_graph_url}  (DAGSTER_HOME {home}; logs in {logs})")
    return handle


def stop_ui(settings: Settings | None = None, say: Callable[[str], None] = print, timeout: float = 30) -> bool:
    """Stop the daemon, then the webserver (by pid file), and every process they started. True if any ran.

    A run worker may start a process (dbt, its multiprocessing helper) while the trees are being
    stopped, after their children were listed; those still carry DAGSTER_HOME, so a sweep by that
    marker ends them too (SIGTERM, 10 s, SIGKILL) until none is left."""
    settings = settings or Settings.load()
    home = dagster_home(settings)
    stopped = False
    for name in ("daemon", "webserver"):
        pid_file = home / f"{name}.pid"
        if proc.stop_pid_tree(pid_file, f"dagster-{name}", timeout=timeout):
            stopped = True
            say(f"dagster-{name} stopped")
    for _ in range(3):
        left = _ui_processes(settings)
        if not left:
            break
        say(f"stopping {len(left)} process(es) the Dagster UI started: "
            + ", ".join(str(p.pid) for p in left))
        proc.end_processes(left)
    return stopped


def _ui_processes(settings: Settings) -> list:
    """psutil processes (other than this one) running from this UI's DAGSTER_HOME: its path on the
    command line or DAGSTER_HOME in the environment."""
    import psutil

    marker = str(dagster_home(settings))
    found = []
    for p in psutil.process_iter(["pid", "cmdline", "environ"]):
        with contextlib.suppress(psutil.Error):
            cmd = " ".join(p.info.get("cmdline") or [])
            env = p.info.get("environ") or {}
            if p.pid != os.getpid() and (marker in cmd or env.get("DAGSTER_HOME") == marker):
                found.append(p)
    return found


def ui_processes_left(settings: Settings) -> list[str]:
    """Command lines of processes still running from this UI's DAGSTER_HOME (tests: none after stop_ui)."""
    return [f"{p.pid} {' '.join(p.info.get('cmdline') or [])[:160]}" for p in _ui_processes(settings)]


if __name__ == "__main__":  # pragma: no cover - manual use: python -m pipelines.ui [stop]
    if sys.argv[1:] == ["stop"]:
        stop_ui()
    else:
        start_ui()
