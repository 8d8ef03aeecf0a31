"""`reporting service add NAME --engine postgresql|mariadb`: the files a new service needs, no Python.

Writes (never overwriting an existing file): the service's entry in the estate file, its connector
file, projection, private schema for the local stack (`schema.sql`), a contract skeleton
`<contracts>/<contract>/v1.yaml` and a dbt staging model; then `python -m pipelines.dbt_sources`
regenerates the dbt sources when the contract is published. The skeleton captures one table
`<table>` (id, name, updated_at) into contract `<contract>_v1`; edit each file to the real schema.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipelines.config.model import NAME_PATTERN, Estate


class ScaffoldError(ValueError):
    """The service cannot be added as asked (name taken, file exists, bad name)."""


@dataclass(frozen=True)
class NewService:
    name: str
    engine: str
    port: int
    table: str
    contract: str
    host: str = "127.0.0.1"

    @property
    def namespace(self) -> str:
        return "public" if self.engine == "postgresql" else self.name


def estate_entry(s: NewService) -> str:
    env = s.name.upper()
    server = f"    server_id: {5400 + sum(map(ord, s.name)) % 1000}\n" if s.engine == "mariadb" else ""
    return (f"  {s.name}:\n    engine: {s.engine}\n    host: {s.host}\n    port: {s.port}\n    database: {s.name}\n{server}"
            f"    cdc: {{user: debezium, password: {{env: REPORTING_{env}_CDC_PASSWORD}}}}\n"
            f"    reader: {{user: {s.name}_app, password: {{env: REPORTING_{env}_APP_PASSWORD}}}}\n"
            f"    connector: connectors/{s.name}/connector.json\n"
            f"    projection: connectors/{s.name}/projection.yaml\n"
            f"    schema_sql: connectors/{s.name}/schema.sql\n")


def connector_json(s: NewService) -> str:
    common = {"tasks.max": "1", "snapshot.mode": "initial",
              "table.include.list": f"{s.namespace}.{s.table}", "column.exclude.list": "",
              "decimal.handling.mode": "string", "time.precision.mode": "adaptive_time_microseconds",
              "binary.handling.mode": "base64", "tombstones.on.delete": "true",
              # Debezium skips truncates by default (skipped.operations=t): capture them, the pipeline applies them
              "skipped.operations": "none",
              "provide.transaction.metadata": "true", "poll.interval.ms": "100", "heartbeat.interval.ms": "10000",
              "key.converter": "org.apache.kafka.connect.json.JsonConverter", "key.converter.schemas.enable": "false",
              "value.converter": "org.apache.kafka.connect.json.JsonConverter",
              "value.converter.schemas.enable": "false", "signal.enabled.channels": "source,kafka"}
    if s.engine == "postgresql":
        # the heartbeat writes a logical message, so the slot of a quiet database keeps moving (no WAL kept)
        config = {"connector.class": "io.debezium.connector.postgresql.PostgresConnector", "plugin.name": "pgoutput",
                  "publication.autocreate.mode": "filtered", **common,
                  "heartbeat.action.query": "SELECT pg_logical_emit_message(false, 'reporting_heartbeat', now()::varchar)",
                  "message.prefix.exclude.list": "reporting_heartbeat"}
    else:
        config = {"connector.class": "io.debezium.connector.mariadb.MariaDbConnector", "database.ssl.mode": "disable",
                  "include.schema.changes": "false", **common}
    config = {k: v for k, v in config.items() if v != ""}
    return json.dumps({"name": f"{s.name}-cdc", "config": config}, indent=2) + "\n"


def projection_yaml(s: NewService) -> str:
    ts = "timestamptz" if s.engine == "postgresql" else "datetime(6)"
    return (f"# Projection of the {s.name} service's private schema onto its reporting contract (docs/projection.md).\n"
            f"# The only place private column names appear; columns not declared here never leave the service.\n"
            f"service: {s.name}\nengine: {s.engine}\n\ntables:\n  {s.namespace}.{s.table}:\n    key: [id]\n"
            f"    columns:\n      id: bigint\n      name: varchar(200)\n      updated_at: {ts}\n"
            f"    targets:\n      {s.contract}_v1:\n        {s.contract}_id: id\n        name: name\n"
            f"        updated_at: updated_at\n")


def schema_sql(s: NewService) -> str:
    ts = "TIMESTAMPTZ" if s.engine == "postgresql" else "DATETIME(6)"
    return (f"-- The {s.name} service's private schema, as the local stack creates it (idempotent).\n"
            f"CREATE TABLE IF NOT EXISTS {s.table} (\n    id BIGINT PRIMARY KEY,\n    name VARCHAR(200) NOT NULL,\n"
            f"    updated_at {ts} NOT NULL\n);\n")


def contract_yaml(s: NewService, domain: str) -> str:
    return f"""apiVersion: v3.2.0
kind: DataContract
id: {domain}-reporting-{s.contract}-v1
name: {s.contract}
version: 1.0.0
status: active
domain: {s.name}
description:
  purpose: TODO what the business uses {s.contract} for.
  usage: Join on {s.contract}_id. Filter out rows with _deleted_at set unless you need history.
customProperties:
  - property: ownerService
    value: {s.name}
slaProperties:
  - property: latency
    value: 5
    unit: m
    description: Freshness objective. A change committed in the {s.name} service is visible here within 5 minutes.
schema:
  - name: {s.contract}
    physicalName: {s.contract}_v1
    physicalType: table
    logicalType: object
    description: One row per {s.table} row of the {s.name} service, kept current by change data capture.
    dataGranularityDescription: One row per {s.contract} id.
    customProperties:
      - property: deleteSemantics
        value: soft
    properties:
      - name: {s.contract}_id
        logicalType: integer
        physicalType: bigint
        required: true
        primaryKey: true
        primaryKeyPosition: 1
        classification: public
        description: Stable identifier.
      - name: name
        logicalType: string
        physicalType: varchar(200)
        required: true
        classification: public
        description: TODO.
      - name: updated_at
        logicalType: timestamp
        physicalType: timestamptz
        required: true
        classification: public
        description: When the row last changed in the service.
"""


def staging_sql(s: NewService) -> str:
    return f"""-- One row per live {s.contract} (generated by `reporting service add`; edit freely).
with

source as (

    select * from {{{{ source('reporting', '{s.contract}') }}}}

),

final as (

    select
        {s.contract}_id,
        name,
        updated_at,
        _ingested_at as ingested_at

    from source
    where _deleted_at is null

)

select * from final
"""


def add_service(estate: Estate, name: str, engine: str, port: int, table: str | None = None,
                contract: str | None = None, say: Callable[[str], None] = print) -> list[Path]:
    """Write every file of a new service (see the module docstring); returns the files written."""
    if not re.match(NAME_PATTERN, name):
        raise ScaffoldError(f"service name {name!r} must match {NAME_PATTERN} (it becomes the topic prefix)")
    if name in estate.service_names:
        raise ScaffoldError(f"{estate.path}: service {name!r} is already declared")
    if engine not in ("postgresql", "mariadb"):
        raise ScaffoldError(f"engine {engine!r}: expected postgresql or mariadb")
    s = NewService(name, engine, port, table or "records", contract or name)
    for ident in (s.table, s.contract):
        if not re.match(r"^[a-z][a-z0-9_]{0,50}$", ident):
            raise ScaffoldError(f"{ident!r} is not a plain lower-case identifier")
    if (estate.contracts / s.contract).exists():
        raise ScaffoldError(f"contract {s.contract!r} already exists in {estate.contracts} (a contract is fed by "
                            "one service): choose another with --contract")
    root = estate.root
    files = {
        root / "connectors" / name / "connector.json": connector_json(s),
        root / "connectors" / name / "projection.yaml": projection_yaml(s),
        root / "connectors" / name / "schema.sql": schema_sql(s),
        estate.contracts / s.contract / "v1.yaml": contract_yaml(s, estate.name),
        estate.dbt_project / "models" / "staging" / f"stg_{s.contract}.sql": staging_sql(s),
    }
    taken = [p for p in files if p.exists()]
    if taken:
        raise ScaffoldError(f"{taken[0]} already exists; nothing written")
    text = estate.path.read_text()
    new_text = insert_service(text, estate_entry(s), estate.path)
    for path, content in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    estate.path.write_text(new_text)
    return [estate.path, *files]


def insert_service(text: str, entry: str, path: Path) -> str:
    """The estate file's text with `entry` appended to its `services:` mapping (comments kept)."""
    lines = text.splitlines(keepends=True)
    start = next((i for i, ln in enumerate(lines) if re.match(r"^services:\s*(#.*)?$", ln)), None)
    if start is None:
        raise ScaffoldError(f"{path}: no top-level 'services:' mapping to add the service to")
    end = next((i for i in range(start + 1, len(lines)) if re.match(r"^[A-Za-z_]", lines[i])), len(lines))
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1
    if lines and not lines[end - 1].endswith("\n"):
        lines[end - 1] += "\n"
    return "".join(lines[:end]) + entry + "".join(lines[end:])
