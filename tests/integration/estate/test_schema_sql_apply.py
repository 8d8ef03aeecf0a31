"""connectors/<service>/schema.sql on real servers: idempotent, and the very schema `create_schema` makes.

The file is the one the bundled estate declares (`services.<name>.schema_sql`), which must be the one
`python -m estate.schema_sql` generates. PostgreSQL (a throw-away PgCluster): each file runs twice
through psql as superuser after `SET ROLE <reader>;` (the service's declared reader role, e.g.
customers_app) in a database owned by that role, as the local stack runs it; a second
database gets `metadata.create_all` (Service.create_schema, as the role). Both must have the same
tables, columns (type, nullability, default, comment, storage), keys, indexes and constraints,
the same pg_dump --schema-only, and every object owned by the service role.
MariaDB (the estate's session server): the warehouse file runs twice through the `mariadb` client
as root after `USE <database>;`; same comparison, plus SHOW CREATE TABLE of every table.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, inspect

from estate import schema_sql
from estate.services import SERVICES
from pipelines.stack.postgres import PG_BIN, PgCluster
from tests.support.databases import temp_postgres
from tests.support.estate import bundled_estate

pytestmark = pytest.mark.integration

PG_SERVICES = [name for name, service in SERVICES.items() if service.engine == "postgresql"]


def declared_sql(name: str) -> str:
    """The schema file the bundled estate declares for service `name`, as the local stack reads it."""
    declared = bundled_estate().service(name)
    assert declared.schema_sql == schema_sql.schema_path(SERVICES[name]), (
        f"services.{name}.schema_sql is {declared.schema_sql}, not the generated file")
    return declared.schema_sql.read_text(encoding="utf-8")


def role_of(name: str) -> str:
    """The service's own role: its declared reader (the stack runs schema_sql as it)."""
    return bundled_estate().service(name).reader.user


def describe(url: str, schema: str | None = None) -> dict[str, dict]:
    """Everything SQLAlchemy reflects about each table, in comparable (sorted, plain) form."""
    engine = create_engine(url)
    try:
        insp = inspect(engine)
        out: dict[str, dict] = {}
        for table in sorted(insp.get_table_names(schema=schema)):
            out[table] = {
                "columns": [(c["name"], c["type"].compile(dialect=engine.dialect), c["nullable"],
                             c.get("default"), c.get("comment"), c.get("autoincrement"))
                            for c in insp.get_columns(table, schema=schema)],
                "primary_key": insp.get_pk_constraint(table, schema=schema),
                "indexes": sorted((ix["name"], tuple(ix["column_names"]), bool(ix["unique"]))
                                  for ix in insp.get_indexes(table, schema=schema)),
                "unique": sorted((uc["name"], tuple(uc["column_names"]))
                                 for uc in insp.get_unique_constraints(table, schema=schema)),
                "foreign_keys": sorted((fk["name"], tuple(fk["constrained_columns"]), fk["referred_table"],
                                        tuple(fk["referred_columns"]), tuple(sorted(fk["options"].items())))
                                       for fk in insp.get_foreign_keys(table, schema=schema)),
                "checks": sorted((ck["name"], ck["sqltext"]) for ck in insp.get_check_constraints(table, schema=schema)),
                "comment": insp.get_table_comment(table, schema=schema).get("text"),
            }
        return out
    finally:
        engine.dispose()


def assert_same_schema(from_file: dict[str, dict], from_metadata: dict[str, dict]) -> None:
    assert sorted(from_file) == sorted(from_metadata), "different tables"
    for table, expected in from_metadata.items():
        for aspect, value in expected.items():
            assert from_file[table][aspect] == value, f"{table}: {aspect} differs (schema.sql vs create_all)"


# --- PostgreSQL -------------------------------------------------------------------------------------------


class PgEstate:
    """A throw-away cluster where each PG service gets its declared reader role and databases it owns."""

    def __init__(self, cluster: PgCluster) -> None:
        self.cluster = cluster
        self.passwords: dict[str, str] = {}

    def database(self, service: str, db: str) -> str:
        """Create `db` owned by the service's role (created with a password on first use); its SQLAlchemy URL."""
        role = role_of(service)
        if service not in self.passwords:
            self.passwords[service] = secrets.token_urlsafe(12)
            self.cluster.psql(f"CREATE ROLE {role} LOGIN PASSWORD '{self.passwords[service]}'")
        self.cluster.psql(f"CREATE DATABASE {db} OWNER {role}")
        return f"postgresql+psycopg://{role}:{self.passwords[service]}@127.0.0.1:{self.cluster.port}/{db}"

    def apply_file(self, service: str, db: str) -> None:
        """What the local stack does: psql as superuser, `SET ROLE <reader>;`, then the declared file."""
        self.cluster.psql(f"SET ROLE {role_of(service)};\n{declared_sql(service)}", db=db)

    def pg_dump(self, db: str) -> str:
        """`pg_dump --schema-only` without its per-run random `\\restrict` key lines."""
        cmd = [str(PG_BIN / "pg_dump"), "--schema-only", "-h", str(self.cluster.socket_dir),
               "-p", str(self.cluster.port), db]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout  # noqa: S603
        return "\n".join(line for line in out.splitlines() if not re.match(r"\\(un)?restrict\b", line))

    def storage_and_owners(self, db: str) -> dict[str, object]:
        """Per-column storage (STORAGE EXTERNAL from post_create_ddl) and the owners of every relation."""
        storage = self.cluster.psql(
            "SELECT c.relname || '.' || a.attname || '=' || a.attstorage::text FROM pg_attribute a"
            " JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped"
            " ORDER BY 1", db=db).split()
        owners = self.cluster.psql(
            "SELECT DISTINCT pg_get_userbyid(c.relowner) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'", db=db).split()
        return {"storage": storage, "owners": sorted(owners)}


@pytest.fixture(scope="module")
def pg() -> Iterator[PgEstate]:
    if not (PG_BIN / "postgres").exists():
        pytest.skip(f"PostgreSQL 15 not installed in {PG_BIN}: run `reporting stack install`")
    with temp_postgres("schema-sql") as (cluster, _conninfo):
        yield PgEstate(cluster)


@pytest.mark.parametrize("name", PG_SERVICES)
def test_postgres_schema_file_is_idempotent_and_equals_create_all(pg: PgEstate, name: str):
    service = SERVICES[name]
    file_db, meta_db = name, f"{name}_from_metadata"
    file_url = pg.database(name, file_db)
    meta_url = pg.database(name, meta_db)

    pg.apply_file(name, file_db)
    first_run = pg.pg_dump(file_db)
    pg.apply_file(name, file_db)  # idempotent: the second run neither fails nor changes anything
    assert pg.pg_dump(file_db) == first_run

    service.create_schema(meta_url)

    from_file, from_metadata = describe(file_url, "public"), describe(meta_url, "public")
    assert sorted(from_file) == sorted(service.tables)
    assert_same_schema(from_file, from_metadata)
    assert pg.storage_and_owners(file_db) == pg.storage_and_owners(meta_db)
    assert pg.storage_and_owners(file_db)["owners"] == [role_of(name)]
    assert pg.pg_dump(file_db) == pg.pg_dump(meta_db)

    # a database created earlier by create_schema (an existing stack) takes the file without change
    before = pg.pg_dump(meta_db)
    pg.apply_file(name, meta_db)
    assert pg.pg_dump(meta_db) == before
    # and create_schema on a file-made database finds everything in place
    service.create_schema(file_url)
    assert pg.pg_dump(file_db) == first_run


def test_orders_terms_snapshot_is_stored_external(pg: PgEstate):
    """post_create_ddl made it into the file: the column is out of line, uncompressed."""
    db = "orders_storage"
    pg.database("orders", db)
    pg.apply_file("orders", db)
    assert "orders.terms_snapshot=e" in pg.storage_and_owners(db)["storage"]


# --- MariaDB ----------------------------------------------------------------------------------------------


def _show_create(local_mariadb, db: str, tables: list[str]) -> dict[str, str]:
    return {t: local_mariadb.sql(f"SHOW CREATE TABLE `{db}`.`{t}`").strip() for t in tables}


@pytest.fixture
def maria_databases(local_mariadb) -> Iterator[tuple[str, str]]:
    """Two fresh databases on the estate's MariaDB, writable by warehouse_app.

    Their default character set is deliberately latin1 (the stack's are utf8mb4): the tables' own
    ENGINE/CHARSET options, which only the `mysql` dialect name renders, must make them utf8mb4.
    """
    suffix = secrets.token_hex(4)
    dbs = (f"warehouse_file_{suffix}", f"warehouse_meta_{suffix}")
    for db in dbs:
        local_mariadb.sql(f"CREATE DATABASE `{db}` CHARACTER SET latin1;"
                          f" GRANT ALL PRIVILEGES ON `{db}`.* TO 'warehouse_app'@'127.0.0.1';")
    try:
        yield dbs
    finally:
        for db in dbs:
            local_mariadb.sql(f"DROP DATABASE IF EXISTS `{db}`")


def test_mariadb_schema_file_is_idempotent_and_equals_create_all(local_mariadb, maria_databases):
    service = SERVICES["warehouse"]
    file_db, meta_db = maria_databases
    sql = declared_sql("warehouse")

    local_mariadb.sql(f"USE `{file_db}`;\n{sql}")
    first_run = _show_create(local_mariadb, file_db, service.tables)
    local_mariadb.sql(f"USE `{file_db}`;\n{sql}")  # idempotent
    assert _show_create(local_mariadb, file_db, service.tables) == first_run

    service.create_schema(local_mariadb.url(meta_db))

    from_file, from_metadata = describe(local_mariadb.url(file_db)), describe(local_mariadb.url(meta_db))
    assert sorted(from_file) == sorted(service.tables)
    assert_same_schema(from_file, from_metadata)
    assert first_run == _show_create(local_mariadb, meta_db, service.tables)
    assert all("ENGINE=InnoDB" in ddl and "CHARSET=utf8mb4" in ddl for ddl in first_run.values())

    # an existing create_schema database takes the file unchanged
    local_mariadb.sql(f"USE `{meta_db}`;\n{sql}")
    assert _show_create(local_mariadb, meta_db, service.tables) == first_run
