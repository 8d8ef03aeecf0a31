"""contracts.lock: the repo's lock is current, check sees edits, publish refuses breaking ones."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
from contract_testkit import REPO_SCHEMA, edit

from pipelines.contract.compat import is_breaking
from pipelines.contract.lock import (
    PublishRefused,
    check,
    content_hash,
    lock_path,
    publish,
    read_lock,
    render_lock,
)
from pipelines.contract.model import ContractError, load_contracts

pytestmark = pytest.mark.unit


def test_repo_contracts_have_no_breaking_change_against_the_lock() -> None:
    """The CI gate: a breaking edit to a published contract fails here, naming table, column and rule."""
    changes = check()
    assert not is_breaking(changes), "breaking contract change(s):\n" + "\n".join(str(c) for c in changes)


def test_repo_lock_is_up_to_date() -> None:
    changes = check()
    assert changes == [], "unpublished contract changes, run `reporting contract publish`:\n" + "\n".join(
        str(c) for c in changes)
    assert lock_path().read_text() == render_lock(load_contracts())


def test_lock_round_trips_every_contract() -> None:
    assert read_lock(lock_path()) == [
        c.__class__(**{**c.__dict__, "path": lock_path()}) for c in load_contracts()
    ]


def test_lock_is_deterministic_and_sorted() -> None:
    contracts = load_contracts()
    text = render_lock(list(reversed(contracts)))
    assert text == render_lock(contracts)
    body = json.loads(text)
    assert [(e["table"], e["major"]) for e in body["contracts"]] == sorted((c.table, c.major) for c in contracts)
    for entry in body["contracts"]:
        assert entry["sha256"] == content_hash(entry["contract"])


def test_compatible_edit_is_reported_then_published(schema_root: Path) -> None:
    edit(schema_root / "orders" / "v2.yaml", "Where the order was placed", "Sales channel where the order was placed")
    changes = check(schema_root)
    assert [(c.rule, c.column) for c in changes] == [("description-changed", "sales_channel")]

    assert [c.rule for c in publish(schema_root)] == ["description-changed"]
    assert check(schema_root) == []


def test_breaking_edit_fails_check_and_publish_refuses(schema_root: Path) -> None:
    path = schema_root / "orders" / "v2.yaml"
    edit(path, "          - value: REFUNDED\n", "")
    before = lock_path(schema_root).read_text()

    changes = check(schema_root)
    assert [(c.table, c.major, c.column, c.rule, c.verdict.value) for c in changes] == [
        ("orders", 2, "order_status", "enum-value-removed", "breaking")]
    with pytest.raises(PublishRefused) as info:
        publish(schema_root)
    assert "enum-value-removed" in str(info.value) and "orders_v2.order_status" in str(info.value)
    assert lock_path(schema_root).read_text() == before


def test_new_major_publishes_side_by_side(schema_root: Path) -> None:
    text = (schema_root / "customers" / "v1.yaml").read_text()
    text = text.replace("version: 1.0.1", "version: 2.0.0").replace("customers_v1", "customers_v2")
    text = text.replace("          - value: ERASED\n", "")
    (schema_root / "customers" / "v2.yaml").write_text(text)
    assert [(c.rule, c.major) for c in publish(schema_root)] == [("table-added", 2)]
    assert [(c.table, c.major) for c in read_lock(lock_path(schema_root)) if c.table == "customers"] == [
        ("customers", 1), ("customers", 2)]


def test_removing_a_deprecated_major_is_allowed_only_after_its_date(schema_root: Path) -> None:
    shutil.rmtree(schema_root / "orders")
    shutil.copytree(REPO_SCHEMA / "orders", schema_root / "orders")
    (schema_root / "orders" / "v1.yaml").unlink()
    with pytest.raises(PublishRefused, match="table-removed"):
        publish(schema_root, today=dt.date(2027, 6, 29))
    assert [c.rule for c in publish(schema_root, today=dt.date(2027, 6, 30))] == ["table-retired"]


def test_missing_lock_means_everything_is_new(schema_root: Path) -> None:
    lock_path(schema_root).unlink()
    changes = check(schema_root)
    assert {c.rule for c in changes} == {"table-added"}
    assert len(changes) == len(list(schema_root.glob("*/v*.yaml")))  # one per contract version file
    publish(schema_root)
    assert lock_path(schema_root).read_text() == (REPO_SCHEMA / "contracts.lock").read_text()


def test_hand_edited_lock_is_rejected(schema_root: Path) -> None:
    edit(lock_path(schema_root), '"varchar(254)"', '"varchar(255)"')
    with pytest.raises(ContractError, match="customers_v1: content hash mismatch"):
        check(schema_root)


def test_malformed_lock_is_one_line_error(schema_root: Path) -> None:
    lock_path(schema_root).write_text("{not json")
    with pytest.raises(ContractError) as info:
        check(schema_root)
    assert "contracts.lock:1: unreadable lock file" in str(info.value)


def test_lock_entry_with_missing_primary_key_column_is_rejected(schema_root: Path) -> None:
    body = json.loads(lock_path(schema_root).read_text())
    entry = body["contracts"][0]
    entry["contract"]["primary_key"] = ["no_such_column"]
    entry["sha256"] = content_hash(entry["contract"])
    lock_path(schema_root).write_text(json.dumps(body))
    with pytest.raises(ContractError, match="customers.no_such_column: primary key column does not exist"):
        read_lock(lock_path(schema_root))


def test_invalid_contract_stops_check_and_publish(schema_root: Path) -> None:
    edit(schema_root / "payments" / "v1.yaml", "physicalType: varchar(20)", "physicalType: varchar(20) injected")
    before = lock_path(schema_root).read_text()
    for action in (check, publish):
        with pytest.raises(ContractError, match=r"payments/v1\.yaml:\d+: payments\.status"):
            action(schema_root)
    assert lock_path(schema_root).read_text() == before
