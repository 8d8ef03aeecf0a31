"""Each service's private schema as a plain, idempotent SQL script: connectors/<service>/schema.sql.

The local stack creates a service's tables from that file (PostgreSQL: psql as the service's
`<service>_app` role in database `<service>`; MariaDB: the `mariadb` client in the service's
database), so a new service can ship a hand-written schema.sql and no Python. For the MusicCorp
services the files are generated from their SQLAlchemy metadata (estate/<service>.py):

    python -m estate.schema_sql           # (re)write connectors/<service>/schema.sql for every service
    python -m estate.schema_sql --check   # exit 1 naming the files that differ from the metadata

`render(service)` emits what `Service.create_schema` does, in the same order, compiled with the
dialect `create_schema` ends up using (PostgreSQL, or the MySQL dialect in MariaDB mode, which keeps
the `mysql_engine`/`mysql_charset` table options that the `mariadb` dialect name would ignore):
per table in dependency order `CREATE TABLE IF NOT EXISTS`, its `CREATE INDEX IF NOT EXISTS`
and, where comments are not inline (PostgreSQL), its `COMMENT ON`; then `post_create_ddl`.
Every statement is safe to repeat and the output is byte-for-byte deterministic.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.mysql import pymysql
from sqlalchemy.engine import Dialect
from sqlalchemy.schema import CreateIndex, CreateTable, SetColumnComment, SetTableComment

from estate.services import SERVICES, Service

REPO = Path(__file__).resolve().parents[1]
COMMAND = "python -m estate.schema_sql"


def dialect_for(service: Service) -> Dialect:
    """The SQLAlchemy dialect that compiles this service's DDL exactly as `create_schema` runs it."""
    if service.engine == "postgresql":
        return postgresql.dialect()
    # what a mysql+pymysql engine becomes once connected to MariaDB: dialect name "mysql" (so the
    # tables' mysql_* options render) with MariaDB's reserved words
    return pymysql.dialect(is_mariadb=True)


def schema_path(service: Service, root: Path | None = None) -> Path:
    """Where the stack finds the service's schema script (under the repository, or `root`)."""
    return (root or REPO) / "connectors" / service.name / "schema.sql"


def _source_of(service: Service) -> str:
    """The module file that defines the service's metadata, relative to the repository."""
    for module in list(sys.modules.values()):
        if getattr(module, "metadata", None) is service.metadata and getattr(module, "__file__", None):
            path = Path(module.__file__).resolve()
            try:
                return path.relative_to(REPO).as_posix()
            except ValueError:
                return path.name
    return f"estate/{service.name}.py"


def statements(service: Service) -> list[str]:
    """The DDL statements (without the trailing `;`) that create the service's private schema."""
    dialect = dialect_for(service)

    def sql(ddl) -> str:
        # SQLAlchemy ends each column line with ", "; drop that trailing blank so the file is clean
        return "\n".join(line.rstrip() for line in str(ddl.compile(dialect=dialect)).strip().splitlines())

    out: list[str] = []
    for table in service.metadata.sorted_tables:
        out.append(sql(CreateTable(table, if_not_exists=True)))
        for index in sorted(table.indexes, key=lambda ix: sql(CreateIndex(ix, if_not_exists=True))):
            out.append(sql(CreateIndex(index, if_not_exists=True)))
        if dialect.supports_comments and not dialect.inline_comments:
            if table.comment is not None:
                out.append(sql(SetTableComment(table)))
            out.extend(sql(SetColumnComment(column)) for column in table.columns if column.comment is not None)
    out.extend(ddl.strip().rstrip(";").rstrip() for ddl in service.post_create_ddl)
    return out


def render(service: Service) -> str:
    """The whole schema.sql for the service: a header comment, then each statement ending in `;`."""
    engine = "PostgreSQL" if service.engine == "postgresql" else "MariaDB"
    runs_as = (f"run by psql as {service.name}_app in database {service.database}"
               if service.engine == "postgresql" else f"run by the mariadb client in database {service.database}")
    header = [
        f"-- Generated from {_source_of(service)} by `{COMMAND}`: do not edit by hand.",
        f"-- The schema the local stack creates for the {service.name} service ({engine}; {runs_as}).",
        "-- Idempotent: every statement can be run again. Edit the Python and regenerate.",
    ]
    body = "\n\n".join(f"{statement};" for statement in statements(service))
    return "\n".join(header) + "\n\n" + body + "\n"


def stale(services: Sequence[Service], root: Path | None = None) -> list[Path]:
    """The schema files that are missing or differ from what `render` produces."""
    return [path for service in services
            if not (path := schema_path(service, root)).is_file()
            or path.read_text(encoding="utf-8") != render(service)]


def write(services: Sequence[Service], root: Path | None = None) -> list[Path]:
    """(Re)write every service's schema file; returns the ones whose content changed."""
    changed = []
    for service in services:
        path = schema_path(service, root)
        text = render(service)
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8", newline="\n")
            changed.append(path)
    return changed


def main(argv: Sequence[str] | None = None, root: Path | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 naming the schema files that are missing or out of date")
    args = parser.parse_args(argv)
    root = root or REPO
    services = list(SERVICES.values())
    if args.check:
        out_of_date = stale(services, root)
        for path in out_of_date:
            print(f"stale: {path.relative_to(root)} (run `{COMMAND}`)", file=sys.stderr)
        return 1 if out_of_date else 0
    changed = write(services, root)
    for service in services:
        path = schema_path(service, root)
        print(f"{'wrote' if path in changed else 'unchanged'}: {path.relative_to(root)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
