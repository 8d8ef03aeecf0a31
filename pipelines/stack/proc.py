"""Process plumbing for local services: ports, pid files, waiting with deadlines, log tails."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from pipelines.stack.errors import StackError


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    """True when something accepts TCP connections on host:port."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def ensure_port_free(component: str, host: str, port: int) -> None:
    if port_open(host, port):
        raise StackError(
            f"{component}: port {host}:{port} is already in use by another process "
            f"(change the port in the estate file, set REPORTING_PORT_OFFSET, or stop the other process)"
        )


BIND_RACE = "Address already in use"
"""What PostgreSQL, MariaDB and the JVM all log when their listening port was taken."""


def retry_port_race(log: Path, start: Callable[[], bool], attempts: int = 3, pause: float = 2.0) -> bool:
    """`start()`, again (up to `attempts` times) when the server died because its port was taken
    between our free-port check and its own bind.

    Our fixed ports lie inside Linux's ephemeral range (32768-60999), so an outgoing connection made
    meanwhile (a provisioning session, a client) can hold one of them as its local port for a moment;
    the server then fails with "Address already in use" although nothing listens there. Only the log
    lines written by this attempt are looked at; any other failure is raised at once.
    """
    for attempt in range(1, attempts + 1):
        try:
            offset = log.stat().st_size
        except OSError:
            offset = 0
        try:
            return start()
        except StackError as exc:
            if BIND_RACE not in _read_from(log, offset):
                raise
            if attempt == attempts:
                raise StackError(f"{exc}: its port stayed taken for {attempts} attempts (see `ss -tanp` "
                                 "for the process holding it)", exc.detail) from exc
            time.sleep(pause * attempt)
    raise AssertionError("unreachable")


def _read_from(path: Path, offset: int) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            return fh.read(4 * 1024 * 1024).decode("utf-8", "replace")
    except OSError:
        return ""


def tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log file ('' when it does not exist)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


def wait_until(
    what: str,
    probe: Callable[[], bool],
    timeout: float,
    log: Path | None = None,
    alive: Callable[[], bool] | None = None,
    interval: float = 0.25,
) -> None:
    """Poll `probe` until it is true or `timeout` seconds pass; fail fast if `alive` says the process died."""
    deadline = time.monotonic() + timeout
    last_error = ""
    while True:
        try:
            if probe():
                return
        except Exception as exc:  # noqa: BLE001 - a probe that raises is simply "not yet"
            last_error = f"last probe error: {exc.__class__.__name__}: {exc}"
        if alive is not None and not alive():
            raise StackError(f"{what} exited during start-up (log: {log})", tail(log) if log else "")
        if time.monotonic() > deadline:
            raise StackError(f"{what} did not come up within {timeout:.0f}s (log: {log})",
                             "\n".join(x for x in (last_error, tail(log) if log else "") if x))
        time.sleep(interval)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child still answers kill(0); treat it as dead
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def read_pid(pid_file: Path) -> int | None:
    try:
        text = pid_file.read_text().split()
        return int(text[0]) if text else None
    except (FileNotFoundError, ValueError):
        return None


def live_pid(pid_file: Path) -> int | None:
    """The pid in `pid_file` if that process is alive, else None."""
    pid = read_pid(pid_file)
    return pid if pid and pid_alive(pid) else None


def spawn(cmd: Sequence[str], log: Path, pid_file: Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> int:
    """Start a long-running process detached from us (own session), output to `log`, pid to `pid_file`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(  # noqa: S603 - commands are built from fixed parts
            list(cmd), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, cwd=cwd, start_new_session=True,
        )
    pid_file.write_text(f"{proc.pid}\n")
    return proc.pid


def stop_pid(pid_file: Path, what: str, timeout: float = 30.0) -> bool:
    """SIGTERM the process in pid_file, wait, then SIGKILL its process group. True if one was running."""
    pid = read_pid(pid_file)
    if pid is None:
        return False
    running = pid_alive(pid)
    if running:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if pid_alive(pid):
                raise StackError(f"{what}: process {pid} would not stop")
    pid_file.unlink(missing_ok=True)
    return running


def run(cmd: Sequence[str], what: str, env: dict[str, str] | None = None, input: str | None = None,
        timeout: float = 600) -> str:
    """Run a command to completion; on failure raise a one-line StackError with the output as detail."""
    try:
        res = subprocess.run(  # noqa: S603
            list(cmd), capture_output=True, text=True, env=env, input=input, timeout=timeout,
        )
    except FileNotFoundError as exc:
        raise StackError(f"{what}: command not found: {cmd[0]}") from exc
    except subprocess.TimeoutExpired as exc:
        raise StackError(f"{what}: timed out after {timeout:.0f}s: {' '.join(cmd[:3])} ...") from exc
    if res.returncode != 0:
        out = (res.stdout + "\n" + res.stderr).strip()
        last = out.splitlines()[-1] if out else f"exit code {res.returncode}"
        raise StackError(f"{what} failed: {last}", out)
    return res.stdout


def stop_pid_tree(pid_file: Path, what: str, timeout: float = 30.0) -> bool:
    """`stop_pid`, then every descendant the process had (workers of a gunicorn or a Dagster webserver may
    sit in another process group): SIGTERM, 10 s, SIGKILL. True if the process was running."""
    import psutil

    pid = read_pid(pid_file)
    children: list = []
    if pid is not None:
        with contextlib.suppress(psutil.Error):
            children = psutil.Process(pid).children(recursive=True)
    stopped = stop_pid(pid_file, what, timeout=timeout)
    end_processes(children)
    return stopped


def end_processes(processes: list) -> None:
    """End psutil `processes`: SIGTERM, up to 10 s, then SIGKILL to those still alive (gone ones are skipped)."""
    import psutil

    for p in processes:
        with contextlib.suppress(psutil.Error):
            p.terminate()
    _, alive = psutil.wait_procs(processes, timeout=10)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(alive, timeout=5)
