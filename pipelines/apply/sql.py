"""SQL that applies one staged batch to one contract table (pure: builds text, runs nothing).

The staged relation `s` holds, per key, the newest change of the batch (see cdc/plan.py):
contract columns, `_source_position`, `_source_ts`, `_op`, `_is_delete`, and `_keep_<col>` flags
for out-of-line (TOAST) values that did not come with the change.

Rules, identical on DuckDB and PostgreSQL (both have MERGE):
- a staged change only touches a stored row when its position is newer (`>`): replays and
  redelivered batches are no-ops;
- a change older than the newest delete of the key (`_pipeline.<table>__deleted`) is dropped, so a
  replayed create cannot resurrect a deleted row, for soft and hard delete semantics alike;
- soft delete: the row stays with `_deleted_at` = the delete's commit time and `_op = 'd'`;
  when the delete superseded an upsert of the same batch it carries that last image, which is
  stored (or inserted, for a key first seen in this batch), so soft-deleted rows do not depend
  on batch boundaries; a later create of the same key revives it (`_deleted_at` back to null);
- hard delete: the row is removed;
- `_keep_<col>` true: the stored value is kept (never overwritten by the TOAST placeholder);
- truncate of the source table (`truncate_statements`, run after the table's MERGE): every stored row
  older than the truncate is deleted, soft (`_deleted_at` = the truncate's commit time, `_op = 'd'`,
  `_source_position` = the truncate's) or hard; rows stored with a newer position stay. The newest
  truncate position per table is kept in `_pipeline.truncates`, and a staged change not newer than it
  is dropped like one older than a key's delete, so a replayed create cannot resurrect a truncated row
  and a replayed truncate changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipelines.apply.pipeline_schema import SCHEMA as PIPELINE_SCHEMA
from pipelines.apply.pipeline_schema import deleted_keys_table
from pipelines.contract.ddl import qualified_name, quote_ident
from pipelines.contract.model import Contract


def _on(contract: Contract, left: str, right: str) -> str:
    return " AND ".join(f"{left}.{quote_ident(k)} = {right}.{quote_ident(k)}" for k in contract.primary_key)


def apply_statements(contract: Contract, staged: str, keep_columns: Sequence[str], has_deletes: bool,
                     deletes_stored: bool = True, truncated: bool = True, keyless: bool = False) -> list[str]:
    """Statements (in order) applying relation `staged` to the contract's table.

    `keyless`: the tables have no primary key (DuckLake), so the deleted keys are recorded by a MERGE
    instead of INSERT ... ON CONFLICT (same effect: the newest delete position per key).

    `deletes_stored=False` / `truncated=False`: the caller knows that `_pipeline.<table>__deleted` is empty /
    that no truncate of the table was ever applied (a single writer, see DuckDbBackend), so the MERGE reads
    the staged rows without the join or the subquery that would drop nothing (~4 ms less planning per
    statement on DuckDB)."""
    q = quote_ident
    target = qualified_name(contract)
    deleted = f"{PIPELINE_SCHEMA}.{q(deleted_keys_table(contract))}"
    keys = [q(k) for k in contract.primary_key]
    cols = [c.name for c in contract.columns]
    keep = set(keep_columns)
    soft = contract.delete_semantics == "soft"

    def value(col: str) -> str:
        if col in keep:
            return f"CASE WHEN s.{q('_keep_' + col)} THEN t.{q(col)} ELSE s.{q(col)} END"
        return f"s.{q(col)}"

    non_key = [c for c in cols if c not in contract.primary_key]
    set_upsert = [f"{q(c)} = {value(c)}" for c in non_key]
    set_upsert += ['"_source_position" = s."_source_position"', '"_source_ts" = s."_source_ts"',
                   '"_ingested_at" = now()', '"_op" = s."_op"']
    if soft:
        set_upsert.append('"_deleted_at" = NULL')
    insert_cols = cols + ["_source_position", "_source_ts", "_ingested_at", "_op"] + (["_deleted_at"] if soft else [])
    insert_vals = [f"s.{q(c)}" for c in cols] + ['s."_source_position"', 's."_source_ts"', "now()", 's."_op"']
    if soft:
        insert_vals.append("NULL")
    no_keep = " AND ".join([f"NOT s.{q('_keep_' + c)}" for c in keep_columns]) or "TRUE"

    conditions = []
    joined = ""
    if deletes_stored:
        joined = f" LEFT JOIN {deleted} d ON {_on(contract, 'd', 's')}"
        conditions.append('(d."_source_position" IS NULL OR s."_source_position" > d."_source_position")')
    if truncated:
        conditions.append(f's."_source_position" > {_truncated_position(contract)}')
    source = (f"(SELECT s.* FROM {staged} s{joined} WHERE {' AND '.join(conditions)})" if conditions else staged)
    branches = []
    if soft and has_deletes and keyless:
        # DuckLake takes one UPDATE action per MERGE: the delete and the upsert branch below as one, by CASE
        image = [f"{q(c)} = CASE WHEN s.\"_is_delete\" AND NOT s.\"_has_values\" THEN t.{q(c)} ELSE {value(c)} END"
                 for c in non_key]
        branches.append(
            'WHEN MATCHED AND s."_source_position" > t."_source_position" THEN UPDATE SET '
            + ", ".join(image + ['"_deleted_at" = CASE WHEN s."_is_delete" THEN s."_source_ts" END',
                                 '"_op" = CASE WHEN s."_is_delete" THEN \'d\' ELSE s."_op" END',
                                 '"_source_position" = s."_source_position"', '"_source_ts" = s."_source_ts"',
                                 '"_ingested_at" = now()']))
    if soft and has_deletes:
        # a delete that superseded an upsert in its batch carries that last image (`_has_values`): the
        # soft-deleted row then holds the same values whatever the batch boundaries were
        image = [f"{q(c)} = CASE WHEN s.\"_has_values\" THEN {value(c)} ELSE t.{q(c)} END" for c in non_key]
        if not keyless:
            branches.append(
                'WHEN MATCHED AND s."_is_delete" AND s."_source_position" > t."_source_position" THEN UPDATE SET '
                + ", ".join(image + ['"_deleted_at" = s."_source_ts"', '"_op" = \'d\'',
                                     '"_source_position" = s."_source_position"', '"_source_ts" = s."_source_ts"',
                                     '"_ingested_at" = now()']))
        deleted_vals = [f"s.{q(c)}" for c in cols] + ['s."_source_position"', 's."_source_ts"', "now()", "'d'",
                                                         's."_source_ts"']
        branches.append(f'WHEN NOT MATCHED AND s."_is_delete" AND s."_has_values" AND {no_keep} THEN INSERT '
                        f"({', '.join(q(c) for c in insert_cols)}) VALUES ({', '.join(deleted_vals)})")
    if not (soft and has_deletes and keyless):
        branches.append('WHEN MATCHED AND NOT s."_is_delete" AND s."_source_position" > t."_source_position" '
                        f"THEN UPDATE SET {', '.join(set_upsert)}")
    branches.append(f'WHEN NOT MATCHED AND NOT s."_is_delete" AND {no_keep} THEN INSERT '
                    f"({', '.join(q(c) for c in insert_cols)}) VALUES ({', '.join(insert_vals)})")
    stmts = [f"MERGE INTO {target} AS t USING {source} AS s ON {_on(contract, 't', 's')}\n" + "\n".join(branches)]
    if has_deletes:
        if not soft:
            stmts.append(f"DELETE FROM {target} AS t USING {staged} AS s WHERE {_on(contract, 't', 's')} "
                         f'AND s."_is_delete" AND s."_source_position" > t."_source_position"')
        if keyless:
            stmts.append(
                f"MERGE INTO {deleted} AS d USING (SELECT {', '.join(keys)}, \"_source_position\" FROM {staged} "
                f"WHERE \"_is_delete\") AS s ON {_on(contract, 'd', 's')} "
                "WHEN MATCHED AND s.\"_source_position\" > d.\"_source_position\" THEN UPDATE SET "
                "\"_source_position\" = s.\"_source_position\" "
                f"WHEN NOT MATCHED THEN INSERT ({', '.join(keys)}, \"_source_position\") "
                f"VALUES ({', '.join('s.' + k for k in keys)}, s.\"_source_position\")")
        else:
            stmts.append(
                f"INSERT INTO {deleted} ({', '.join(keys)}, \"_source_position\") "
                f"SELECT {', '.join(keys)}, \"_source_position\" FROM {staged} WHERE \"_is_delete\" "
                f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET \"_source_position\" = "
                f"GREATEST({deleted}.\"_source_position\", excluded.\"_source_position\")")
    return stmts


def _truncated_position(contract: Contract) -> str:
    """SQL: the newest truncate position applied to the contract's table, -1 when none."""
    name = contract.physical_name.replace("'", "''")
    return (f'coalesce((SELECT max("_source_position") FROM {PIPELINE_SCHEMA}.truncates '
            f"WHERE physical_name = '{name}'), -1)")


def truncate_count_sql(contract: Contract, position: int, since: int = -1) -> tuple[str, list]:
    """(SQL, parameters): the stored live rows a source truncate at `position` deletes, when the batch's
    previous truncate was at `since` (run before the batch's MERGE, so that it counts stored rows)."""
    live = ' AND "_deleted_at" IS NULL' if contract.delete_semantics == "soft" else ""
    return (f'SELECT count(*) FROM {qualified_name(contract)} WHERE "_source_position" >= ? '
            f'AND "_source_position" < ?{live}', [since, position])


def truncate_statements(contract: Contract, position: int, source_ts: object, rows_deleted: int,
                        keyless: bool = False) -> list[tuple[str, list]]:
    """A source truncate at `position` (commit time `source_ts`, may be None) applied to the table, as
    (SQL with `?` placeholders, parameters) pairs.

    Deletes every live row older than `position` (soft: `_deleted_at` = the truncate's time, or now()
    when the event had none, `_op = 'd'`, `_source_position`/`_source_ts` = the truncate's; hard:
    removed) and records the truncate in `_pipeline.truncates` (the newest position wins;
    `rows_deleted` from `truncate_count_sql`). Run after the table's MERGE of the same batch: the
    batch's changes newer than the truncate are then stored with their newer positions and kept.
    """
    target = qualified_name(contract)
    if contract.delete_semantics == "soft":
        delete = (f'UPDATE {target} SET "_deleted_at" = coalesce(CAST(? AS TIMESTAMPTZ), now()), "_op" = \'d\', '
                  f'"_source_position" = ?, "_source_ts" = CAST(? AS TIMESTAMPTZ), "_ingested_at" = now() '
                  f'WHERE "_source_position" < ? AND "_deleted_at" IS NULL', [source_ts, position, source_ts, position])
    else:
        delete = (f'DELETE FROM {target} WHERE "_source_position" < ?', [position])
    t = f"{PIPELINE_SCHEMA}.truncates"
    if keyless:  # no key to conflict on (DuckLake): the same newest-wins upsert as a MERGE
        record = (f"MERGE INTO {t} AS t USING (SELECT CAST(? AS VARCHAR) AS physical_name, CAST(? AS BIGINT) AS p, "
                  "CAST(? AS TIMESTAMPTZ) AS ts, CAST(? AS BIGINT) AS n) AS s ON t.physical_name = s.physical_name "
                  'WHEN MATCHED AND s.p > t."_source_position" THEN UPDATE SET "_source_position" = s.p, '
                  '"_source_ts" = s.ts, applied_at = now(), rows_deleted = s.n '
                  'WHEN NOT MATCHED THEN INSERT (physical_name, "_source_position", "_source_ts", applied_at, '
                  "rows_deleted) VALUES (s.physical_name, s.p, s.ts, now(), s.n)",
                  [contract.physical_name, position, source_ts, rows_deleted])
        return [delete, record]
    record = (f'INSERT INTO {t} (physical_name, "_source_position", "_source_ts", applied_at, rows_deleted) '
              f"VALUES (?, ?, CAST(? AS TIMESTAMPTZ), now(), ?) ON CONFLICT (physical_name) DO UPDATE SET "
              f'"_source_position" = excluded."_source_position", "_source_ts" = excluded."_source_ts", '
              f"applied_at = excluded.applied_at, rows_deleted = excluded.rows_deleted "
              f'WHERE excluded."_source_position" > {t}."_source_position"',
              [contract.physical_name, position, source_ts, rows_deleted])
    return [delete, record]


def missing_toast_count_sql(contract: Contract, staged: str, keep_columns: Sequence[str]) -> str | None:
    """Rows whose out-of-line value is missing and whose key is not stored yet: they cannot be inserted.

    These are reported (dead letters with stage 'toast'), never silently dropped.
    """
    if not keep_columns:
        return None
    anykeep = " OR ".join(f"s.{quote_ident('_keep_' + c)}" for c in keep_columns)
    return (f"SELECT count(*) FROM {staged} s LEFT JOIN {qualified_name(contract)} t ON {_on(contract, 't', 's')} "
            f'WHERE NOT s."_is_delete" AND ({anykeep}) AND t."_source_position" IS NULL')
