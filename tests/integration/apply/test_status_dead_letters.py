"""Issue 16 point 7, `reporting status` (pipelines/apply/status.py), on both backends:

- a dead letter that failed before its table was known (stage 'decode', no target table) counts for
  the contract tables its topic feeds (`Planner.feeds`), not under its topic where no table shows it;
- one that feeds no contract table (a topic without a projection) is counted as unrouted;
- "last error" is the table's NEWEST pending dead letter (by first_seen_at, then id), shown with its
  topic[partition]@offset, or table_status.last_error when that one is newer.
"""

from __future__ import annotations

import datetime as dt

import pytest

from pipelines.apply.backend import ApplyBatch, DeadLetterRow
from pipelines.apply.runner import load_parts
from pipelines.apply.status import dead_letter_tallies, table_statuses, unrouted_dead_letters
from pipelines.cdc.events import Record
from tests.integration.apply.test_pipeline_dead_letters import captured_records, first_create
from tests.support.estate import bundled_estate

pytestmark = pytest.mark.integration

T = "orders.public.orders"
ORDERS_TABLES = {"orders_v1", "orders_v2"}


@pytest.fixture
def parts(backend):
    parts = load_parts(bundled_estate())
    backend.ensure_schema(list(parts.contracts.values()))
    return parts


def statuses(backend, parts, feeds=None):
    return {s.physical_name: s for s in table_statuses(backend, list(parts.contracts.values()), feeds=feeds)}


def insert_dead_letter(backend, offset, stage, reason, target, seen, topic=T, source="public.orders"):
    id_col, id_val = backend._dead_letter_id()  # DuckLake has no sequences: the insert gives the id
    backend.begin()
    backend.execute(f"INSERT INTO _pipeline.dead_letters ({id_col}topic, kafka_partition, kafka_offset, stage, reason, "
                    f"source_table, target_table, first_seen_at) SELECT {id_val}?, 0, ?, ?, ?, ?, ?, ?",
                    (topic, offset, stage, reason, source, target, seen))
    backend.commit()


def test_decode_dead_letters_count_for_the_tables_their_topic_feeds(backend, parts):
    create = first_create(captured_records())
    records = [
        Record(T, 0, 100, b'{"id": 77}', b'{"before": null, "after": {"id": 7'),      # malformed: decode
        Record(T, 0, 101, b'{"id":99}', create.value),                                 # key names another row
        Record("orders.public.refund_notes", 0, 5, b'{"id":1}', create.value),         # no projection: route
    ]
    backend.apply("g", parts.plan(records))
    feeds = parts.planner.feeds
    assert set(feeds[T]) == ORDERS_TABLES and set(feeds["public.orders"]) == ORDERS_TABLES

    by_table = statuses(backend, parts, feeds)
    for name in ORDERS_TABLES:
        assert by_table[name].dead_letters == 2, name
        # the newest of the two (same batch, same first_seen_at: the later id), with its position
        assert by_table[name].last_error.startswith(f"{T}[0]@101 decode: Kafka key does not match"), \
            by_table[name].last_error
    others = {n: s.dead_letters for n, s in by_table.items() if n not in ORDERS_TABLES}
    assert set(others.values()) == {0}, others  # order_lines is fed by another topic
    unrouted = unrouted_dead_letters(backend, feeds)
    assert unrouted is not None and unrouted.count == 1
    assert unrouted.newest_error.startswith("orders.public.refund_notes[0]@5 route: no projection for topic")


def test_without_feeds_nothing_is_misattributed(backend, parts):
    backend.apply("g", parts.plan([Record(T, 0, 100, b'{"id": 77}', b"{")]))
    by_table = statuses(backend, parts)
    assert all(s.dead_letters == 0 and s.last_error is None for s in by_table.values())
    assert unrouted_dead_letters(backend).count == 1


def test_last_error_is_the_newest_by_time_then_id(backend, parts):
    t0 = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
    # inserted newest first, so insertion order (id) alone would pick the wrong one
    insert_dead_letter(backend, 30, "validate", "newest", "orders_v1", t0 + dt.timedelta(minutes=5))
    insert_dead_letter(backend, 20, "validate", "oldest", "orders_v1", t0)
    insert_dead_letter(backend, 10, "validate", "middle", "orders_v1", t0 + dt.timedelta(minutes=1))
    # same time: the later id is newer
    insert_dead_letter(backend, 40, "project", "first at 10:07", "orders_v2", t0 + dt.timedelta(minutes=7))
    insert_dead_letter(backend, 41, "project", "second at 10:07", "orders_v2", t0 + dt.timedelta(minutes=7))
    by_table = statuses(backend, parts, parts.planner.feeds)
    assert by_table["orders_v1"].last_error == f"{T}[0]@30 validate: newest"
    assert by_table["orders_v1"].dead_letters == 3
    assert by_table["orders_v2"].last_error == f"{T}[0]@41 project: second at 10:07"


def test_an_attributed_decode_dead_letter_competes_on_time(backend, parts):
    t0 = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
    insert_dead_letter(backend, 1, "validate", "a validate failure", "orders_v1", t0)
    insert_dead_letter(backend, 2, "decode", "value is not valid JSON", None, t0 + dt.timedelta(seconds=1))
    insert_dead_letter(backend, 3, "validate", "a later validate failure", "orders_v2", t0 + dt.timedelta(seconds=2))
    tallies = dead_letter_tallies(backend, parts.planner.feeds)
    assert tallies["orders_v1"].count == 2 and tallies["orders_v1"].newest_error == f"{T}[0]@2 decode: value is not valid JSON"
    assert tallies["orders_v2"].count == 2 and tallies["orders_v2"].newest_error == f"{T}[0]@3 validate: a later validate failure"


def test_replayed_dead_letters_are_not_the_last_error(backend, parts):
    t0 = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
    insert_dead_letter(backend, 1, "validate", "still pending", "orders_v1", t0)
    insert_dead_letter(backend, 2, "validate", "fixed by a replay", "orders_v1", t0 + dt.timedelta(minutes=1))
    backend.begin()
    backend.execute("UPDATE _pipeline.dead_letters SET replayed_at = now() WHERE kafka_offset = 2")
    backend.commit()
    s = statuses(backend, parts, parts.planner.feeds)["orders_v1"]
    assert (s.dead_letters, s.last_error) == (1, f"{T}[0]@1 validate: still pending")


def test_table_status_error_against_dead_letters_by_time(backend, parts):
    t0 = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
    insert_dead_letter(backend, 1, "validate", "dead letter at 10:01", "orders_v1", t0 + dt.timedelta(minutes=1))
    backend.begin()
    backend.execute("INSERT INTO _pipeline.table_status (physical_name, last_error, last_error_at) VALUES "
                    "('orders_v1', 'apply error at 10:00', ?), ('orders_v2', 'apply error at 10:02', ?), "
                    "('order_lines_v1', 'apply error, time unknown', NULL)",
                    (t0, t0 + dt.timedelta(minutes=2)))
    backend.commit()
    insert_dead_letter(backend, 2, "validate", "dead letter at 10:01", "orders_v2", t0 + dt.timedelta(minutes=1))
    by_table = statuses(backend, parts, parts.planner.feeds)
    assert by_table["orders_v1"].last_error == f"{T}[0]@1 validate: dead letter at 10:01"
    assert by_table["orders_v2"].last_error == "apply error at 10:02"
    assert by_table["order_lines_v1"].last_error == "apply error, time unknown"


def test_apply_batch_dead_letters_round_trip_through_status(backend, parts):
    """The rows the worker writes (DeadLetterRow via Backend.apply) are what status reads."""
    row = DeadLetterRow(T, 3, 12, "decode", "'after' is a string, expected an object", "public.orders", None,
                        b'{"id":1}', b"{}")
    backend.apply("g", ApplyBatch([], [row], {(T, 3): 13}, events=1))
    by_table = statuses(backend, parts, parts.planner.feeds)
    for name in ORDERS_TABLES:
        assert by_table[name].last_error == f"{T}[3]@12 decode: 'after' is a string, expected an object"
