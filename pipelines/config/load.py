"""Reading the estate file (an edge: the CLI and the Dagster resources call this, the core never does).

`load_estate(path)` parses the YAML, applies the documented overrides, resolves relative paths
against the file's folder and validates it; every problem is one `EstateError` naming `file:line`
and the key (`reporting.yaml:14: services.orders.port: ...`).

Which file: `--estate FILE`, else REPORTING_ESTATE, else the bundled MusicCorp example
(`reporting.yaml` at the repository root).

Overrides from the environment, for running several local stacks side by side and for CI:
REPORTING_STATE_DIR (state_dir), REPORTING_BACKEND (reporting.backend), REPORTING_DUCKDB_PATH
(reporting.duckdb.path), REPORTING_PORT_OFFSET (added to every port the file declares),
REPORTING_PLANNERS (pipeline.planners).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from pipelines.config.model import Estate

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
BUNDLED_ESTATE = REPO_ROOT / "reporting.yaml"
ESTATE_ENV = "REPORTING_ESTATE"

_PATH_KEYS = {"state_dir", "env_file", "contracts", "dbt_project", "connector", "projection", "schema_sql",
              "ca_file", "path", "home", "file", "catalog", "data_path", "venv"}
_ENV_OVERRIDES = {("pipeline", "planners"): "REPORTING_PLANNERS", ("pipeline", "max_retries"): "REPORTING_APPLY_MAX_RETRIES", ("reporting", "backend"): "REPORTING_BACKEND",
                  ("reporting", "duckdb", "path"): "REPORTING_DUCKDB_PATH", ("state_dir",): "REPORTING_STATE_DIR"}
_PORTED = re.compile(r"^(?P<head>.*:)(?P<port>\d+)(?P<tail>/?.*)$")


class EstateError(ValueError):
    """The estate file is missing or wrong; the message names file:line and the key."""


def estate_path(explicit: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """The estate file to use: `explicit`, else REPORTING_ESTATE, else the bundled example."""
    environ = os.environ if environ is None else environ
    chosen = explicit or environ.get(ESTATE_ENV) or BUNDLED_ESTATE
    return Path(chosen).expanduser().resolve()


def load_estate(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Estate:
    """Read, override, resolve and validate the estate file (see the module docstring)."""
    environ = os.environ if environ is None else environ
    file = estate_path(path, environ)
    try:
        text = file.read_text()
    except OSError as exc:
        raise EstateError(f"{file}: cannot read the estate file: {exc.strerror or exc}") from exc
    try:
        node = yaml.compose(text)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{file}:{mark.line + 1}" if mark else str(file)
        raise EstateError(f"{where}: invalid YAML: {getattr(exc, 'problem', None) or exc}") from exc
    if not isinstance(raw, dict):
        raise EstateError(f"{file}:1: the estate file must be a mapping (see docs/estate-file.md)")
    lines = _line_index(node)
    data = _prepare(raw, file, environ, lines)
    try:
        return Estate.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = _file_loc(first["loc"], data)
        key = ".".join(str(p) for p in loc) or "(top level)"
        line = _nearest_line(lines, loc)
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        msg = first["msg"].removeprefix("Value error, ")
        source = next((f" (from {env}={environ[env]!r})" for path, env in _ENV_OVERRIDES.items()
                       if environ.get(env) and tuple(loc[:len(path)]) == path), "")
        raise EstateError(f"{file}:{line}: {key}{source}: {msg}{more}") from exc


def _prepare(raw: dict, file: Path, environ: Mapping[str, str], lines: dict[tuple, int]) -> dict:
    root = file.parent
    data = dict(raw)
    if "path" in data:
        raise EstateError(f"{file}:{lines.get(('path',), 1)}: path: not a key of the estate file")
    data["path"] = str(file)
    if environ.get("REPORTING_STATE_DIR"):  # an override from the environment is relative to the working folder
        state_dir = Path(environ["REPORTING_STATE_DIR"]).expanduser().resolve()
    else:
        state_dir = _resolve(root, str(data.get("state_dir") or ".state"))
    data["state_dir"] = str(state_dir)
    data.setdefault("contracts", "reporting_schema")
    data.setdefault("dbt_project", "dbt_project")
    if isinstance(data.get("dagster", {}), dict):
        data["dagster"] = {"home": "{state_dir}/dagster", **(data.get("dagster") or {})}
    data = _substitute(data, {"state_dir": str(state_dir)})
    services = data.get("services")
    if isinstance(services, dict):
        listed = []
        for name, entry in services.items():
            if isinstance(entry, dict):
                if "name" in entry:
                    raise EstateError(f"{file}:{lines.get(('services', name, 'name'), 1)}: services.{name}.name: "
                                      "the service's name is its key")
                entry = {"name": name, **entry}
            listed.append(entry)
        data["services"] = listed
    elif services is not None:
        raise EstateError(f"{file}:{lines.get(('services',), 1)}: services: expected a mapping of service name "
                          "to its entry")
    data = _resolve_paths(data, root)
    return _overrides(data, environ, file)


def _overrides(data: dict, environ: Mapping[str, str], file: Path) -> dict:
    reporting = data.get("reporting")
    if isinstance(reporting, dict):
        reporting = dict(reporting)
        if environ.get("REPORTING_BACKEND"):
            reporting["backend"] = environ["REPORTING_BACKEND"]
        if environ.get("REPORTING_DUCKLAKE_VENV") and isinstance(reporting.get("ducklake"), dict):
            reporting["ducklake"] = {**reporting["ducklake"],
                                     "venv": str(Path(environ["REPORTING_DUCKLAKE_VENV"]).resolve())}
        if environ.get("REPORTING_DUCKDB_PATH"):
            duck = dict(reporting.get("duckdb") or {})
            duck["path"] = str(Path(environ["REPORTING_DUCKDB_PATH"]).resolve())
            reporting["duckdb"] = duck
        data["reporting"] = reporting
    for env, key in (("REPORTING_PLANNERS", "planners"), ("REPORTING_APPLY_MAX_RETRIES", "max_retries")):
        if environ.get(env):
            data["pipeline"] = {**(data.get("pipeline") or {}), key: environ[env]}
    offset_raw = environ.get("REPORTING_PORT_OFFSET", "0").strip() or "0"
    if not offset_raw.lstrip("-").isdigit():
        raise EstateError(f"REPORTING_PORT_OFFSET={offset_raw!r}: expected a whole number")
    offset = int(offset_raw)
    if offset:
        data = shift_ports(data, offset)
    return data


def shift_ports(data: dict, offset: int) -> dict:
    """Add `offset` to every port the (raw) estate declares: services, Kafka, Connect, PostgreSQL, Dagster."""

    def port(value: Any) -> Any:
        return value + offset if isinstance(value, int) else value

    def in_address(value: Any) -> Any:
        m = _PORTED.match(value) if isinstance(value, str) else None
        return f"{m['head']}{int(m['port']) + offset}{m['tail']}" if m else value

    out = dict(data)
    out["services"] = [{**s, "port": port(s.get("port"))} if isinstance(s, dict) else s
                       for s in data.get("services") or []]
    if isinstance(data.get("kafka"), dict):
        servers = data["kafka"].get("bootstrap_servers") or []
        out["kafka"] = {**data["kafka"], "bootstrap_servers": [in_address(s) for s in servers]}
    if isinstance(data.get("connect"), dict):
        out["connect"] = {**data["connect"], "urls": [in_address(u) for u in data["connect"].get("urls") or []]}
    reporting = data.get("reporting")
    if isinstance(reporting, dict) and isinstance(reporting.get("postgres"), dict):
        out["reporting"] = {**reporting, "postgres": {**reporting["postgres"],
                                                      "port": port(reporting["postgres"].get("port"))}}
    if isinstance(data.get("dagster"), dict) and "port" in data["dagster"]:
        out["dagster"] = {**data["dagster"], "port": port(data["dagster"]["port"])}
    return out


def _substitute(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, str):
        for k, v in names.items():
            value = value.replace("{" + k + "}", v)
        return value
    if isinstance(value, dict):
        return {k: _substitute(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, names) for v in value]
    return value


def _resolve(root: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return (p if p.is_absolute() else root / p).resolve()


def _resolve_paths(value: Any, root: Path) -> Any:
    if isinstance(value, dict):
        return {k: (str(_resolve(root, v)) if k in _PATH_KEYS and isinstance(v, str) else _resolve_paths(v, root))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_paths(v, root) for v in value]
    return value


# --- YAML key paths → line numbers -----------------------------------------------------------------
def _line_index(node: yaml.Node | None) -> dict[tuple, int]:
    """{key path: 1-based line} for every mapping key and sequence item of the document."""
    out: dict[tuple, int] = {(): 1}

    def walk(n: yaml.Node, path: tuple) -> None:
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                key = k.value
                out[(*path, key)] = k.start_mark.line + 1
                walk(v, (*path, key))
        elif isinstance(n, yaml.SequenceNode):
            for i, item in enumerate(n.value):
                out[(*path, i)] = item.start_mark.line + 1
                walk(item, (*path, i))

    if node is not None:
        walk(node, ())
    return out


def _file_loc(loc: tuple, data: dict) -> tuple:
    """A validation location in the prepared data → the key path in the file (services are keyed)."""
    loc = tuple(loc)
    if len(loc) >= 2 and loc[0] == "services" and isinstance(loc[1], int):
        services = data.get("services") or []
        entry = services[loc[1]] if loc[1] < len(services) else None
        if isinstance(entry, dict) and "name" in entry:
            return ("services", entry["name"], *loc[2:])
    return loc


def _nearest_line(lines: dict[tuple, int], loc: tuple) -> int:
    path = tuple(loc)
    while path not in lines and path:
        path = path[:-1]
    return lines.get(path, 1)
