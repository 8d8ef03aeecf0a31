"""After the processes are up: create the estate's private schemas and register its connectors."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

from pipelines.settings import MARIADB_SERVICES, SERVICES
from pipelines.stack.connect_api import ConnectClient, connector_files, load_connector
from pipelines.stack.manager import Stack


def service_urls(stack: Stack, driver: bool = True) -> dict[str, str]:
    """SQLAlchemy URLs of each service's own database, as the service's application user."""
    s, sec = stack.settings, stack.secrets()
    urls = {}
    for svc in SERVICES:
        pw = quote(sec[f"REPORTING_{svc.upper()}_APP_PASSWORD"], safe="")
        if svc in MARIADB_SERVICES:
            scheme = "mysql+pymysql" if driver else "mysql"
        else:
            scheme = "postgresql+psycopg" if driver else "postgresql"
        urls[svc] = f"{scheme}://{svc}_app:{pw}@{s.host}:{s.ports[svc]}/{svc}"
    return urls


def create_service_schemas(stack: Stack, say: Callable[[str], None] = print) -> None:
    """Create each service's private tables (idempotent), as the service itself would on deploy."""
    from estate.services import SERVICES as ESTATE

    urls = service_urls(stack)
    captured = captured_tables()
    for name, service in ESTATE.items():
        service.create_schema(urls[name])
        if name in stack.pg:
            stack.pg[name].psql(pg_cdc_setup_sql(name, captured.get(name, [])), db=name)
        else:
            stack.mariadb[name].sql(";\n".join(service.cdc_setup_sql()) + ";\n")
    say(f"service schemas and CDC grants ready: {', '.join(ESTATE)}")


def captured_tables() -> dict[str, list[str]]:
    """Per service, the tables its connector captures (`table.include.list` of connector.json)."""
    out = {}
    for path in connector_files():
        spec = load_connector(path)
        tables = [t.strip() for t in spec["config"].get("table.include.list", "").split(",") if t.strip()]
        out[path.parent.name] = tables
    return out


def pg_cdc_setup_sql(service: str, tables: list[str]) -> str:
    """Grants for the CDC role and a publication holding exactly the captured tables (idempotent).

    Debezium's `publication.autocreate.mode=filtered` only checks an existing publication against
    its include list; creating it here, as superuser, means the CDC role never owns tables.
    """
    from pipelines.contract.sqltypes import is_identifier

    for t in tables:
        if not all(is_identifier(part) for part in t.split(".")):
            raise ValueError(f"connectors/{service}/connector.json: table {t!r} is not a plain identifier")
    if not tables:
        return "SELECT 1;"
    listed = ", ".join(tables)
    pub = f"reporting_{service}"
    return (f"GRANT USAGE ON SCHEMA public TO debezium;\nGRANT SELECT ON {listed} TO debezium;\n"
            f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = '{pub}') THEN "
            f"CREATE PUBLICATION {pub} FOR TABLE {listed}; ELSE ALTER PUBLICATION {pub} SET TABLE {listed}; "
            "END IF; END $$;\n")


def apply_connectors(stack: Stack, say: Callable[[str], None] = print, timeout: float = 180) -> None:
    """Register every connectors/<service>/connector.json and wait until it and its tasks are RUNNING."""
    client = ConnectClient(stack.settings.connect_url)
    specs = [load_connector(p) for p in connector_files()]
    for spec in specs:
        client.apply(spec)
    for spec in specs:
        st = client.wait_running(spec["name"], timeout=timeout)
        say(f"connector {st.name}: RUNNING ({len(st.tasks)} task(s))")
