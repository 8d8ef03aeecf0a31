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
    for name, service in ESTATE.items():
        service.create_schema(urls[name])
        setup = ";\n".join(service.cdc_setup_sql()) + ";\n"
        if name in stack.pg:
            stack.pg[name].psql(setup, db=name)
        else:
            stack.mariadb[name].sql(setup)
    say(f"service schemas and CDC grants ready: {', '.join(ESTATE)}")


def apply_connectors(stack: Stack, say: Callable[[str], None] = print, timeout: float = 180) -> None:
    """Register every connectors/<service>/connector.json and wait until it and its tasks are RUNNING."""
    client = ConnectClient(stack.settings.connect_url)
    specs = [load_connector(p) for p in connector_files()]
    for spec in specs:
        client.apply(spec)
    for spec in specs:
        st = client.wait_running(spec["name"], timeout=timeout)
        say(f"connector {st.name}: RUNNING ({len(st.tasks)} task(s))")
