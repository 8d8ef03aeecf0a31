"""The MusicCorp estate as data: four services, each with its engine, private schema and CDC needs.

`SERVICES[name]` (or `get(name)`) gives a `Service`; its `create_schema(url)` creates the private
tables idempotently, and `table_include_list()` / `column_exclude_list()` are exactly what its
Debezium connector (connectors/<service>/connector.json) captures and drops at the source.
`cdc_setup_sql()` is what an administrator runs once, as superuser/root, so the connector can work
without owning the service's tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import MetaData, create_engine, text
from sqlalchemy.engine import make_url

from estate import customers, orders, payments, warehouse

Engine = Literal["postgresql", "mariadb"]
HEARTBEAT_MESSAGE_PREFIX = "reporting_heartbeat"


@dataclass(frozen=True)
class Service:
    """One service of the estate and what capturing its private database needs."""

    name: str
    engine: Engine
    metadata: MetaData
    database: str
    """Default database name (the lead's stack creates it; MariaDB topics are warehouse.<database>.<table>)."""
    secret_columns: tuple[str, ...]
    """'table.column' of internal/secret columns that never leave the service database."""
    captured_tables: tuple[str, ...]
    """The private tables a contract is projected from (connectors/<service>/projection.yaml): the only
    ones the connector captures and the publication publishes. Others never reach Kafka."""
    post_create_ddl: tuple[str, ...] = ()

    @property
    def namespace(self) -> str:
        """What Debezium puts before the table name: PG schema `public`, MariaDB database name."""
        return "public" if self.engine == "postgresql" else self.database

    @property
    def tables(self) -> list[str]:
        return [t.name for t in self.metadata.sorted_tables]

    def table_include_list(self) -> list[str]:
        """Fully-qualified tables the connector captures: the projected ones, in `tables` order."""
        return [f"{self.namespace}.{t}" for t in self.tables if t in self.captured_tables]

    def column_exclude_list(self) -> list[str]:
        """Fully-qualified columns the connector drops before anything reaches Kafka."""
        return [f"{self.namespace}.{c}" for c in self.secret_columns]

    @property
    def slot_name(self) -> str:
        """Replication slot (PostgreSQL) — one per service, so connectors never share one."""
        return f"reporting_{self.name}"

    @property
    def publication_name(self) -> str:
        return f"reporting_{self.name}"

    def create_schema(self, url: str) -> None:
        """Create the private tables in the database at `url` (SQLAlchemy URL); safe to repeat.

        The database itself must exist (the stack provisions it with its owner role).
        """
        engine = create_engine(url, future=True)
        try:
            with engine.begin() as conn:
                self.metadata.create_all(conn, checkfirst=True)
                for ddl in self.post_create_ddl:
                    conn.execute(text(ddl))
        finally:
            engine.dispose()

    def drop_schema(self, url: str) -> None:
        """Drop every private table (tests and `reset` only; destroys data)."""
        engine = create_engine(url, future=True)
        try:
            with engine.begin() as conn:
                self.metadata.drop_all(conn, checkfirst=True)
        finally:
            engine.dispose()

    def cdc_setup_sql(self, cdc_user: str = "debezium") -> list[str]:
        """Statements (superuser / MariaDB root) that let `cdc_user` capture this service, idempotent.

        PostgreSQL: a publication limited to the captured tables, created up front so the
        connector (publication.autocreate.mode=filtered) finds it and only checks its table list;
        Debezium refuses to reuse a `FOR ALL TABLES` publication in filtered mode. Run after
        `create_schema`. MariaDB: the global privileges the binlog reader needs.
        """
        if self.engine == "postgresql":
            tables = ", ".join(self.table_include_list())
            return [
                f"GRANT USAGE ON SCHEMA public TO {cdc_user}",
                f"GRANT SELECT ON {tables} TO {cdc_user}",
                "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = "
                f"'{self.publication_name}') THEN CREATE PUBLICATION {self.publication_name} FOR TABLE {tables};"
                f" ELSE ALTER PUBLICATION {self.publication_name} SET TABLE {tables}; END IF; END $$",
            ]
        return [
            f"GRANT SELECT, RELOAD, SHOW DATABASES, REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '{cdc_user}'@'%'",
        ]


SERVICES: dict[str, Service] = {
    "customers": Service("customers", "postgresql", customers.metadata, "customers", customers.SECRET_COLUMNS,
                         ("customers",)),
    "orders": Service("orders", "postgresql", orders.metadata, "orders", orders.SECRET_COLUMNS,
                      ("orders", "order_lines"), orders.POST_CREATE_DDL),
    "payments": Service("payments", "postgresql", payments.metadata, "payments", payments.SECRET_COLUMNS,
                        ("payments",)),
    "warehouse": Service("warehouse", "mariadb", warehouse.metadata, "warehouse", warehouse.SECRET_COLUMNS,
                         ("catalog_items", "bin_stock", "fulfilments")),
}


def get(name: str) -> Service:
    """The service called `name`; a readable error naming the known ones otherwise."""
    try:
        return SERVICES[name]
    except KeyError:
        raise KeyError(f"unknown service {name!r} (known: {', '.join(SERVICES)})") from None


def create_all(urls: dict[str, str]) -> None:
    """Create every service's private schema; `urls` maps service name → SQLAlchemy URL."""
    for name, url in urls.items():
        get(name).create_schema(url)


def database_of(url: str) -> str:
    """The database name in a SQLAlchemy URL."""
    return make_url(url).database or ""
