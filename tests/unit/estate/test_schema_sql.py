"""connectors/<service>/schema.sql: committed, up to date with the SQLAlchemy metadata, idempotent DDL."""

from __future__ import annotations

import re

import pytest

from estate import schema_sql
from estate.services import SERVICES

pytestmark = pytest.mark.unit

SERVICE_NAMES = sorted(SERVICES)


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_committed_schema_file_matches_the_metadata(name: str):
    service = SERVICES[name]
    path = schema_sql.schema_path(service)
    assert path.is_file(), f"{path} is missing: run `python -m estate.schema_sql`"
    assert path.read_text(encoding="utf-8") == schema_sql.render(service), (
        f"{path} is stale (estate/{name}.py changed): run `python -m estate.schema_sql`")


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_every_create_is_guarded_by_if_not_exists(name: str):
    service = SERVICES[name]
    sql = schema_sql.render(service)
    # DO $$ ... $$ blocks (post_create_ddl) guard themselves; everything else must be a guarded CREATE
    plain = re.sub(r"\$\$.*?\$\$", "", sql, flags=re.S)
    plain = "\n".join(line for line in plain.splitlines() if not line.lstrip().startswith("--"))
    creates = re.findall(r"\bCREATE\s+(?:UNIQUE\s+)?\w+(?:\s+IF\s+NOT\s+EXISTS)?", plain, flags=re.I)
    assert creates, "no CREATE statement rendered"
    unguarded = [c for c in creates if not c.upper().endswith("IF NOT EXISTS")]
    assert not unguarded, f"CREATE without IF NOT EXISTS in {name}: {unguarded}"
    tables = len(re.findall(r"^CREATE TABLE IF NOT EXISTS ", sql, flags=re.M))
    indexes = len(re.findall(r"^CREATE (?:UNIQUE )?INDEX IF NOT EXISTS ", sql, flags=re.M))
    assert tables == len(service.metadata.tables)
    assert indexes == sum(len(t.indexes) for t in service.metadata.tables.values())


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_render_is_deterministic_and_well_formed(name: str):
    service = SERVICES[name]
    sql = schema_sql.render(service)
    assert sql == schema_sql.render(service)
    assert sql.startswith(f"-- Generated from estate/{name}.py by `python -m estate.schema_sql`")
    assert "Edit the Python and regenerate" in sql
    assert sql.endswith(";\n")
    # one statement per `;` at a line end, in metadata order, then post_create_ddl last
    assert sql.count(";\n") == len(schema_sql.statements(service))
    first_tables = [line.split()[5] for line in sql.splitlines() if line.startswith("CREATE TABLE")]
    assert [t.rsplit(".", 1)[-1] for t in first_tables] == service.tables
    for ddl in service.post_create_ddl:
        assert f"{ddl};\n" in sql


def test_engine_dialects():
    """PostgreSQL services compile for PostgreSQL; warehouse keeps its InnoDB/utf8mb4 table options."""
    pg = schema_sql.render(SERVICES["customers"])
    assert "BIGSERIAL" in pg and "COMMENT ON COLUMN public.customers.password_hash" in pg
    maria = schema_sql.render(SERVICES["warehouse"])
    assert maria.count("ENGINE=InnoDB CHARSET=utf8mb4;") == len(SERVICES["warehouse"].tables)
    assert "AUTO_INCREMENT" in maria and "COMMENT 'INTERNAL: purchase price'" in maria


def test_check_reports_stale_and_missing_files(tmp_path):
    services = [SERVICES["customers"], SERVICES["warehouse"]]
    assert [p.name for p in schema_sql.stale(services, tmp_path)] == ["schema.sql", "schema.sql"]
    assert schema_sql.write(services, tmp_path) == [schema_sql.schema_path(s, tmp_path) for s in services]
    assert schema_sql.stale(services, tmp_path) == []
    assert schema_sql.write(services, tmp_path) == []
    edited = schema_sql.schema_path(services[1], tmp_path)
    edited.write_text(edited.read_text() + "-- hand edit\n")
    assert schema_sql.stale(services, tmp_path) == [edited]


def test_check_command_passes_on_the_committed_files(capsys):
    assert schema_sql.main(["--check"]) == 0
    assert capsys.readouterr().err == ""


def test_command_writes_then_check_names_stale_files(tmp_path, capsys):
    assert schema_sql.main(["--check"], root=tmp_path) == 1
    err = capsys.readouterr().err
    assert all(f"stale: connectors/{name}/schema.sql" in err for name in SERVICES)
    assert "python -m estate.schema_sql" in err
    assert schema_sql.main([], root=tmp_path) == 0
    assert capsys.readouterr().out.count("wrote: connectors/") == len(SERVICES)
    assert schema_sql.main(["--check"], root=tmp_path) == 0
    (tmp_path / "connectors" / "orders" / "schema.sql").write_text("-- hand edit\n")
    assert schema_sql.main(["--check"], root=tmp_path) == 1
    assert capsys.readouterr().err.strip() == ("stale: connectors/orders/schema.sql (run `python -m estate.schema_sql`)")
