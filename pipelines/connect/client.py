"""Kafka Connect REST: register the estate's connectors and watch them.

Connector files are plain Kafka Connect JSON ({"name", "config"}), completed from the estate file by
`pipelines.connect.render`; credentials are config-provider placeholders resolved by the worker, so
this module never sees a password.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import requests

from pipelines.config.model import Estate
from pipelines.connect.render import check_spec, render_connector


class ConnectError(RuntimeError):
    """Kafka Connect refused or failed something; `detail` holds the trace when there is one."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail



@dataclass(frozen=True)
class ConnectorState:
    name: str
    state: str
    tasks: tuple[tuple[int, str], ...]
    trace: str = ""

    @property
    def running(self) -> bool:
        return self.state == "RUNNING" and bool(self.tasks) and all(s == "RUNNING" for _, s in self.tasks)


def load_connector(path: Path) -> dict:
    """The connector file at `path`, parsed and checked (not yet completed from the estate)."""
    try:
        spec = json.loads(Path(path).read_text())
    except OSError as exc:
        raise ConnectError(f"{path}: cannot read the connector file: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise ConnectError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from exc
    try:
        return check_spec(spec, Path(path))
    except ValueError as exc:
        raise ConnectError(str(exc)) from exc


def estate_connectors(estate: Estate) -> list[dict]:
    """Every service's connector config as it is registered: its file completed from the estate."""
    out = []
    for service in estate.services:
        try:
            out.append(render_connector(load_connector(service.connector), service, estate.kafka))
        except ValueError as exc:
            raise ConnectError(str(exc)) from exc
    return out


class ConnectClient:
    """REST client of a Connect cluster. Any worker answers for the whole cluster (it forwards writes to
    the leader), so with several URLs a worker that is not reachable is skipped: requests go to the first
    URL that answers, and keep going there until it stops answering."""

    def __init__(self, url: str | Sequence[str], auth: tuple[str, str] | None = None) -> None:
        urls = [url] if isinstance(url, str) else list(url)
        if not urls:
            raise ValueError("ConnectClient needs at least one URL")
        self.urls = [u.rstrip("/") for u in urls]
        self.url = self.urls[0]
        self.auth = auth

    def _req(self, method: str, path: str, **kw) -> requests.Response:
        order = [self.url] + [u for u in self.urls if u != self.url]
        errors = []
        for url in order:
            try:
                r = self._send(url, method, path, **kw)
            except ConnectError as exc:
                if exc.detail != "unreachable":
                    raise
                errors.append(str(exc))
                continue
            self.url = url
            return r
        raise ConnectError(errors[0] if len(errors) == 1 else
                           f"no Kafka Connect worker is reachable ({', '.join(order)})", "; ".join(errors))

    def _send(self, url: str, method: str, path: str, **kw) -> requests.Response:
        try:
            r = requests.request(method, f"{url}{path}", timeout=15, auth=self.auth, **kw)
            if r.status_code == 401:
                raise ConnectError(f"Kafka Connect at {url} refused the credentials (401): check connect.username "
                                   "and connect.password in the estate file")
            return r
        except requests.RequestException as exc:
            raise ConnectError(f"Kafka Connect at {url} is not reachable: {exc.__class__.__name__}",
                               "unreachable") from exc

    def apply(self, spec: dict) -> None:
        """Create or update (idempotent PUT) one connector."""
        r = self._req("PUT", f"/connectors/{spec['name']}/config", json=spec["config"])
        if r.status_code not in (200, 201):
            raise ConnectError(f"connector {spec['name']}: Connect refused the config ({r.status_code}): "
                             f"{r.json().get('message', r.text)[:300] if r.content else ''}")

    def delete(self, name: str) -> None:
        r = self._req("DELETE", f"/connectors/{name}")
        if r.status_code not in (204, 404):
            raise ConnectError(f"connector {name}: delete failed ({r.status_code})")

    def names(self) -> list[str]:
        return list(self._req("GET", "/connectors").json())

    def status(self, name: str) -> ConnectorState:
        r = self._req("GET", f"/connectors/{name}/status")
        if r.status_code == 404:
            return ConnectorState(name, "MISSING", ())
        body = r.json()
        tasks = tuple((t["id"], t["state"]) for t in body.get("tasks", []))
        trace = body["connector"].get("trace", "") or next((t.get("trace", "") for t in body.get("tasks", [])
                                                           if t.get("trace")), "")
        return ConnectorState(name, body["connector"]["state"], tasks, trace)

    def restart(self, name: str) -> None:
        """Restart the connector and its failed tasks."""
        r = self._req("POST", f"/connectors/{name}/restart?includeTasks=true&onlyFailed=true")
        if r.status_code not in (200, 202, 204):
            raise ConnectError(f"connector {name}: restart refused ({r.status_code})")

    def wait_running(self, name: str, timeout: float = 120, restarts: int = 5) -> ConnectorState:
        """Poll until the connector and all its tasks are RUNNING.

        A FAILED connector or task is restarted (up to `restarts` times, with backoff): Kafka Connect
        does not restart failed tasks by itself, and a source database that was briefly down fails
        the task at start. Raises with the connector's trace when it keeps failing or the deadline passes.
        """
        deadline = time.monotonic() + timeout
        st = self.status(name)
        backoff = 2.0
        while time.monotonic() < deadline:
            st = self.status(name)
            if st.running:
                return st
            if st.state == "FAILED" or any(s == "FAILED" for _, s in st.tasks):
                first = st.trace.strip().splitlines()[0] if st.trace.strip() else "no trace"
                if restarts <= 0:
                    raise ConnectError(f"connector {name} FAILED: {first}", st.trace)
                restarts -= 1
                time.sleep(min(backoff, max(0.0, deadline - time.monotonic())))
                backoff *= 2
                self.restart(name)
            time.sleep(0.5)
        raise ConnectError(f"connector {name} not RUNNING after {timeout:.0f}s (state {st.state}, tasks {list(st.tasks)})",
                         st.trace)


def client_for(settings) -> ConnectClient:
    """A client for the estate's Connect cluster (every URL, first reachable one used), with basic auth when declared."""
    c = settings.estate.connect
    auth = (c.username, settings.secret(c.password, "connect.password")) if c.username and c.password else None
    return ConnectClient(c.urls, auth)
