"""Plain DB-API connections to the services' databases, from SQLAlchemy URLs.

The hot path (flows, simulator, bulk load) talks psycopg 3 and PyMySQL directly: no ORM, no
SQLAlchemy connection pool. PostgreSQL connections run in autocommit mode, so a single statement
is its own transaction and multi-statement flows open one explicitly (`conn.transaction()`);
psycopg prepares statements it sees repeatedly on its own. MariaDB connections have autocommit off
and every flow ends with an explicit COMMIT (or ROLLBACK on error).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
import pymysql
from sqlalchemy.engine import make_url

from estate.services import get


def connect_postgres(url: str) -> psycopg.Connection:
    """A psycopg connection (autocommit) to the database in a `postgresql[+driver]://` URL."""
    u = make_url(url)
    if not u.drivername.startswith("postgresql"):
        raise ValueError(f"not a PostgreSQL URL: {u.render_as_string(hide_password=True)}")
    conn = psycopg.connect(host=u.host or "127.0.0.1", port=u.port or 5432, dbname=u.database,
                           user=u.username, password=u.password, autocommit=True,
                           application_name="musiccorp-estate", **dict(u.query))
    conn.prepare_threshold = 1
    return conn


def connect_mariadb(url: str) -> pymysql.connections.Connection:
    """A PyMySQL connection (autocommit off, UTC session) from a `mysql+pymysql://` or `mariadb+pymysql://` URL."""
    u = make_url(url)
    if u.get_backend_name() not in ("mysql", "mariadb"):
        raise ValueError(f"not a MariaDB URL: {u.render_as_string(hide_password=True)}")
    return pymysql.connect(host=u.host or "127.0.0.1", port=u.port or 3306, user=u.username,
                           password=u.password or "", database=u.database, autocommit=False,
                           charset="utf8mb4", init_command="SET time_zone = '+00:00'")


def connect(service: str, url: str) -> Any:
    """A DB-API connection to `service`'s database, the right driver for its engine."""
    return connect_postgres(url) if get(service).engine == "postgresql" else connect_mariadb(url)


@dataclass
class Estate:
    """One open connection per service: what the flows and the simulator work with."""

    customers: psycopg.Connection
    orders: psycopg.Connection
    payments: psycopg.Connection
    warehouse: pymysql.connections.Connection

    @classmethod
    def connect(cls, urls: dict[str, str]) -> Estate:
        missing = [s for s in ("customers", "orders", "payments", "warehouse") if s not in urls]
        if missing:
            raise ValueError(f"estate URLs missing for: {', '.join(missing)}")
        opened: dict[str, Any] = {}
        try:
            for service in ("customers", "orders", "payments", "warehouse"):
                opened[service] = connect(service, urls[service])
        except Exception:
            for conn in opened.values():
                conn.close()
            raise
        return cls(**opened)

    def close(self) -> None:
        for conn in (self.customers, self.orders, self.payments, self.warehouse):
            try:
                conn.close()
            except Exception:  # noqa: BLE001,S110 - closing is best effort; the first error already surfaced
                pass

    def __enter__(self) -> Estate:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
