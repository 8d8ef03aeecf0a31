"""After the processes are up: create the estate's private schemas and register its connectors.

Local stack only. A service's private schema comes from the SQL file its estate entry names
(`schema_sql`, e.g. connectors/<service>/schema.sql; idempotent DDL), run as the service's own role,
as the service would on deploy. Then the CDC grants and (PostgreSQL) the publication of exactly the
tables its connector captures.
"""

from __future__ import annotations

from collections.abc import Callable

from pipelines.config.model import Service
from pipelines.connect.client import client_for, estate_connectors, load_connector
from pipelines.contract.sqltypes import is_identifier
from pipelines.stack.errors import StackError
from pipelines.stack.manager import Stack


def service_urls(stack: Stack, driver: bool = True) -> dict[str, str]:
    """SQLAlchemy URLs of each service's own database, as the service's declared reader."""
    return stack.settings.service_urls(driver)


def create_service_schemas(stack: Stack, say: Callable[[str], None] = print) -> None:
    """Create each service's private tables from its schema_sql (idempotent) and its CDC grants."""
    done = []
    for svc in stack.settings.estate.services:
        captured = captured_tables(svc)
        if svc.engine == "postgresql":
            cluster = stack.pg[svc.name]
            if svc.schema_sql:
                cluster.psql(f"SET ROLE {svc.reader.user};\n" + _read_sql(svc), db=svc.database)
            cluster.psql(pg_cdc_setup_sql(svc, captured), db=svc.database)
        else:
            server = stack.mariadb[svc.name]
            script = f"USE `{svc.database}`;\n" + (_read_sql(svc) if svc.schema_sql else "")
            server.sql(script + f"\nGRANT SELECT, RELOAD, SHOW DATABASES, REPLICATION SLAVE, REPLICATION CLIENT "
                                f"ON *.* TO '{svc.cdc.user}'@'%';\n")
        done.append(svc.name)
    say(f"service schemas and CDC grants ready: {', '.join(done)}")


def _read_sql(svc: Service) -> str:
    assert svc.schema_sql is not None
    try:
        return svc.schema_sql.read_text()
    except OSError as exc:
        raise StackError(f"services.{svc.name}.schema_sql: cannot read {svc.schema_sql}: {exc.strerror}") from exc


def captured_tables(svc: Service) -> list[str]:
    """The tables a service's connector captures (`table.include.list` of its connector file)."""
    spec = load_connector(svc.connector)
    return [t.strip() for t in spec["config"].get("table.include.list", "").split(",") if t.strip()]


def pg_cdc_setup_sql(svc: Service, tables: list[str]) -> str:
    """Grants for the CDC role and a publication holding exactly the captured tables (idempotent).

    Debezium's `publication.autocreate.mode=filtered` only checks an existing publication against
    its include list; creating it here, as superuser, means the CDC role never owns tables.
    """
    for t in tables:
        if not all(is_identifier(part) for part in t.split(".")):
            raise StackError(f"{svc.connector}: table {t!r} is not a plain identifier")
    if not tables:
        return "SELECT 1;"
    listed = ", ".join(tables)
    pub, cdc = svc.slot_name, svc.cdc.user
    return (f"GRANT USAGE ON SCHEMA public TO {cdc};\nGRANT SELECT ON {listed} TO {cdc};\n"
            f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = '{pub}') THEN "
            f"CREATE PUBLICATION {pub} FOR TABLE {listed}; ELSE ALTER PUBLICATION {pub} SET TABLE {listed}; "
            "END IF; END $$;\n")


def apply_connectors(stack_or_settings, say: Callable[[str], None] = print, timeout: float = 180) -> None:
    """Register every service's connector (its file completed from the estate) and wait until RUNNING."""
    settings = getattr(stack_or_settings, "settings", stack_or_settings)
    client = client_for(settings)
    specs = estate_connectors(settings.estate)
    for spec in specs:
        client.apply(spec)
    for spec in specs:
        st = client.wait_running(spec["name"], timeout=timeout)
        say(f"connector {st.name}: RUNNING ({len(st.tasks)} task(s))")
