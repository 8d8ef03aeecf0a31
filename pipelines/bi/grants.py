"""Privileges of the BI role `bi_reader` on the PostgreSQL reporting server.

`bi_reader` may read the published schemas (`reporting`: the contract tables, `staging` and `marts`:
the dbt models) and nothing else: no `_pipeline` (offsets, dead letters with raw source payloads),
no writing, no creating (no tables, no temporary tables, no schemas), no other database.

Tables appear later than provisioning (the pipeline creates the contract tables on start, dbt
re-creates its models on every run), so SELECT is granted through
`ALTER DEFAULT PRIVILEGES FOR ROLE reporting_writer`: every table or view that `reporting_writer`
creates in those schemas is readable by `bi_reader` from the moment it exists. That only holds for
objects created BY `reporting_writer`: run the pipeline and dbt as that role (the defaults do).

Operational warning: dbt replaces a table by renaming, which needs an ACCESS EXCLUSIVE lock; a BI
session idle inside an open transaction blocks it (and every query queued behind it). The role
therefore ends such sessions after `IDLE_IN_TRANSACTION_TIMEOUT`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

WRITER = "reporting_writer"
BI_ROLE = "bi_reader"
DATABASE = "reporting"


@dataclass(frozen=True)
class Roles:
    """Database and role names of the reporting server (the estate's `reporting.postgres`); the
    names are validated identifiers there, so they may be written into SQL as they are."""

    writer: str = WRITER
    reader: str = BI_ROLE
    database: str = DATABASE

    @classmethod
    def of(cls, pg) -> Roles:
        """From the estate's `reporting.postgres` section."""
        return cls(pg.writer.user, pg.reader.user, pg.database)


DEFAULT_ROLES = Roles()
BI_SCHEMAS = ("reporting", "staging", "marts")
"""Readable by `bi_reader`: contract tables and dbt models."""
PRIVATE_SCHEMAS = ("_pipeline",)
"""Owned by the writer, closed to everyone else."""
IDLE_IN_TRANSACTION_TIMEOUT = "10min"


class SqlRunner(Protocol):
    """Anything that runs SQL as a superuser in a given database (`PgCluster.psql` is one)."""

    def psql(self, sql: str, db: str = "postgres") -> str: ...


def role_sql(roles: Roles = DEFAULT_ROLES) -> str:
    """Role attributes of the BI reader (cluster-wide; run in any database)."""
    BI_ROLE, DATABASE = roles.reader, roles.database  # noqa: N806 - the names of the SQL below
    return f"""
ALTER ROLE {BI_ROLE} NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
ALTER ROLE {BI_ROLE} SET default_transaction_read_only = on;
ALTER ROLE {BI_ROLE} SET idle_in_transaction_session_timeout = '{IDLE_IN_TRANSACTION_TIMEOUT}';
-- the reporting cluster serves one database: no connecting to (nor temp tables in) the others
REVOKE CONNECT, TEMPORARY ON DATABASE postgres FROM PUBLIC;
REVOKE CONNECT, TEMPORARY ON DATABASE template1 FROM PUBLIC;
REVOKE ALL ON DATABASE {DATABASE} FROM PUBLIC;
GRANT CONNECT ON DATABASE {DATABASE} TO {BI_ROLE};
"""


def schema_sql(roles: Roles = DEFAULT_ROLES) -> str:
    """Schemas, ownership and grants inside the reporting database (idempotent; run as superuser)."""
    WRITER, BI_ROLE = roles.writer, roles.reader  # noqa: N806 - the names of the SQL below
    stmts = [
        # PostgreSQL 15 already denies CREATE on public; USAGE too, so BI sees only what is published
        "REVOKE ALL ON SCHEMA public FROM PUBLIC",
        f"GRANT ALL ON SCHEMA public TO {WRITER}",
    ]
    for schema in BI_SCHEMAS + PRIVATE_SCHEMAS:
        stmts += [
            f"CREATE SCHEMA IF NOT EXISTS {schema} AUTHORIZATION {WRITER}",
            f"ALTER SCHEMA {schema} OWNER TO {WRITER}",
            f"REVOKE ALL ON SCHEMA {schema} FROM PUBLIC",
        ]
    for schema in BI_SCHEMAS:
        stmts += [
            f"REVOKE CREATE ON SCHEMA {schema} FROM {BI_ROLE}",
            f"GRANT USAGE ON SCHEMA {schema} TO {BI_ROLE}",
            f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {BI_ROLE}",
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {WRITER} IN SCHEMA {schema} GRANT SELECT ON TABLES TO {BI_ROLE}",
        ]
    for schema in PRIVATE_SCHEMAS:
        stmts += [
            f"REVOKE ALL ON SCHEMA {schema} FROM {BI_ROLE}",
            f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {BI_ROLE}",
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {WRITER} IN SCHEMA {schema} REVOKE ALL ON TABLES FROM {BI_ROLE}",
        ]
    return ";\n".join(stmts) + ";\n"


def grant_bi_reader(cluster: SqlRunner, roles: Roles = DEFAULT_ROLES) -> None:
    """Give `bi_reader` read access to `reporting`, `staging` and `marts`, and nothing else.

    Idempotent; needs the roles `reporting_writer` and `bi_reader` and the database `reporting`
    (see `pipelines.stack.postgres.provision_reporting`, which calls this). Creates the schemas,
    owned by `reporting_writer`, when they do not exist yet, so default privileges apply to the
    tables the pipeline and dbt create later.
    """
    cluster.psql(role_sql(roles))
    cluster.psql(schema_sql(roles), db=roles.database)
