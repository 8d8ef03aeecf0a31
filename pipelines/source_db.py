"""Read-only questions to a service database, as the service's `reader` login of the estate file."""

from __future__ import annotations

from pipelines.settings import Settings


def source_row_count(settings: Settings, service: str, source_table: str) -> int | None:
    """Rows in the source table now, as the service's reader (None when it cannot be counted)."""
    from sqlalchemy import create_engine, text

    from pipelines.contract.sqltypes import is_identifier

    parts = source_table.split(".")
    if not all(is_identifier(p) for p in parts):
        return None
    engine = create_engine(settings.service_url(service), future=True)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(f"SELECT count(*) FROM {source_table}")).scalar_one())
    except Exception:  # noqa: BLE001 - progress only; the snapshot does not depend on it
        return None
    finally:
        engine.dispose()
