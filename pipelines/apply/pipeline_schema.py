"""DDL of the pipeline's own bookkeeping schema `_pipeline` (pure: returns SQL text per dialect).

- offsets:       next Kafka offset per consumer group / topic / partition, written in the same
                 transaction as the rows (the source of truth for where to resume).
- dead_letters:  events that could not be decoded, projected or validated, with the reason and
                 the raw key/value, until replayed.
- table_status:  per contract table: newest source timestamp applied, rows applied, last error.
- batches:       one row per applied batch (events, rows, dead letters) for rates in `reporting status`.
- deleted_keys:  per contract table `<physical>__deleted`: the newest delete position per key, so a
                 replayed older create cannot resurrect a deleted row (see apply/sql.py).
- backfills:     contract tables that appeared after their source was streamed, and the snapshot
                 requested to fill them (apply/backfill.py), with the source's row count then.
- truncates:     per contract table: the newest source truncate applied (position, source time, when,
                 rows it deleted). It extends the deleted keys to the whole table: a change older than
                 it is never applied, so a replayed create cannot resurrect a truncated row.
"""

from __future__ import annotations

import re

from pipelines.contract.ddl import provenance_columns, quote_ident, sql_type
from pipelines.contract.model import Contract

SCHEMA = "_pipeline"


def pipeline_ddl(dialect: str) -> list[str]:
    """DuckLake has neither constraints nor sequences: its tables are the same without keys, and a dead
    letter's id is given by the insert (the writer's max + 1, see DuckLakeBackend)."""
    stmts = [_unconstrained(s) for s in _pipeline_ddl(dialect)] if dialect == "ducklake" else _pipeline_ddl(dialect)
    return stmts


def _unconstrained(stmt: str) -> str:
    """A CREATE TABLE of `_pipeline` without its PRIMARY KEY (inline or as a table constraint)."""
    stmt = stmt.replace(" PRIMARY KEY,", " NOT NULL,")
    return re.sub(r",\s*PRIMARY KEY \([^)]*\)\)$", ")", stmt)


def _pipeline_ddl(dialect: str) -> list[str]:
    big = "BIGINT"
    ts = "TIMESTAMPTZ"
    seq = {"postgres": "BIGSERIAL", "duckdb": "BIGINT DEFAULT nextval('_pipeline.dead_letter_seq')"}.get(dialect, "BIGINT")
    blob = "BYTEA" if dialect == "postgres" else "BLOB"
    stmts = [f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"]
    if dialect == "duckdb":
        stmts.append(f"CREATE SEQUENCE IF NOT EXISTS {SCHEMA}.dead_letter_seq")
    stmts += [
        f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.offsets (
  consumer_group VARCHAR NOT NULL, topic VARCHAR NOT NULL, kafka_partition INTEGER NOT NULL,
  next_offset {big} NOT NULL, updated_at {ts} NOT NULL,
  PRIMARY KEY (consumer_group, topic, kafka_partition))""",
        f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.dead_letters (
  id {seq} PRIMARY KEY, topic VARCHAR NOT NULL, kafka_partition INTEGER NOT NULL, kafka_offset {big} NOT NULL,
  stage VARCHAR NOT NULL, reason VARCHAR NOT NULL, source_table VARCHAR, target_table VARCHAR,
  record_key {blob}, record_value {blob}, first_seen_at {ts} NOT NULL, retries INTEGER NOT NULL DEFAULT 0,
  replayed_at {ts})""",
        f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.table_status (
  physical_name VARCHAR PRIMARY KEY, newest_source_ts {ts}, last_applied_at {ts},
  rows_applied {big} NOT NULL DEFAULT 0, last_error VARCHAR, last_error_at {ts})""",
        f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.truncates (
  physical_name VARCHAR PRIMARY KEY, "_source_position" {big} NOT NULL, "_source_ts" {ts}, applied_at {ts} NOT NULL,
  rows_deleted {big} NOT NULL)""",
        f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.backfills (
  physical_name VARCHAR PRIMARY KEY, source_table VARCHAR NOT NULL, requested_at {ts} NOT NULL,
  signal_id VARCHAR NOT NULL, source_rows {big})""",
        f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.batches (
  consumer_group VARCHAR NOT NULL, applied_at {ts} NOT NULL, events INTEGER NOT NULL, rows_applied INTEGER NOT NULL,
  dead_letters INTEGER NOT NULL)""",
    ]
    return stmts


def deleted_keys_table(contract: Contract) -> str:
    return f"{contract.physical_name}__deleted"


def deleted_keys_ddl(contract: Contract, dialect: str) -> str:
    cols = [f"  {quote_ident(c.name)} {sql_type(c, dialect)} NOT NULL" for c in contract.columns
            if c.name in contract.primary_key]
    cols.append('  "_source_position" BIGINT NOT NULL')
    pk = ", ".join(quote_ident(k) for k in contract.primary_key)
    if dialect != "ducklake":
        cols.append(f"  PRIMARY KEY ({pk})")
    return (f"CREATE TABLE IF NOT EXISTS {SCHEMA}.{quote_ident(deleted_keys_table(contract))} (\n"
            + ",\n".join(cols) + "\n)")


def all_columns(contract: Contract) -> list[str]:
    return [c.name for c in contract.columns + provenance_columns(contract)]
