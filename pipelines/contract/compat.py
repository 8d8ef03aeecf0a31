"""Compatibility rules for contract changes, from the reader's side. Pure.

`diff(old, new)` compares two sets of contracts table by table and major by major. A new major
version is a new table (`orders_v2` next to `orders_v1`), so it is never a breaking change of the
old major. `diff(..., across_majors=True)` (two files given to `reporting contract diff`) also
compares a table's lone old major with its lone new major column by column: what a reader moving
from one to the other must handle. The rule table with the reasons is in docs/contracts.md; every
Change names its rule. Contracts written by others (`Contract.strict` false) may leave fields
empty (None); a physical type may be one we do not know, compared as far as its size goes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from pipelines.contract.model import Column, Contract


class Verdict(StrEnum):
    COMPATIBLE = "compatible"
    BREAKING = "breaking"


class ChangeKind(StrEnum):
    TABLE_ADDED = "table.added"
    TABLE_REMOVED = "table.removed"
    TABLE_MAJOR = "table.major"
    PHYSICAL_NAME = "table.physical_name"
    COLUMN_ADDED = "column.added"
    COLUMN_REMOVED = "column.removed"
    COLUMN_RENAMED = "column.renamed"
    COLUMNS_REORDERED = "table.column_order"
    TYPE = "column.type"
    REQUIRED = "column.required"
    ENUM = "column.enum"
    PRIMARY_KEY = "table.primary_key"
    DELETE_SEMANTICS = "table.delete_semantics"
    GRAIN = "table.grain"
    DESCRIPTION = "docs.description"
    CLASSIFICATION = "column.classification"
    METADATA = "table.metadata"


B, C = Verdict.BREAKING, Verdict.COMPATIBLE

RULES: dict[str, tuple[ChangeKind, Verdict]] = {
    "table-added": (ChangeKind.TABLE_ADDED, C),
    "table-removed": (ChangeKind.TABLE_REMOVED, B),
    "table-retired": (ChangeKind.TABLE_REMOVED, C),
    "major-changed": (ChangeKind.TABLE_MAJOR, C),
    "physical-name-changed": (ChangeKind.PHYSICAL_NAME, B),
    "column-added-optional": (ChangeKind.COLUMN_ADDED, C),
    "column-added-required": (ChangeKind.COLUMN_ADDED, C),
    "column-removed": (ChangeKind.COLUMN_REMOVED, B),
    "column-renamed": (ChangeKind.COLUMN_RENAMED, B),
    "columns-reordered": (ChangeKind.COLUMNS_REORDERED, C),
    "type-family-changed": (ChangeKind.TYPE, B),
    "type-widened": (ChangeKind.TYPE, C),
    "type-narrowed": (ChangeKind.TYPE, B),
    "column-made-required": (ChangeKind.REQUIRED, C),
    "column-made-optional": (ChangeKind.REQUIRED, B),
    "enum-value-added": (ChangeKind.ENUM, B),
    "enum-value-removed": (ChangeKind.ENUM, B),
    "enum-closed": (ChangeKind.ENUM, C),
    "enum-opened": (ChangeKind.ENUM, B),
    "primary-key-changed": (ChangeKind.PRIMARY_KEY, B),
    "delete-semantics-changed": (ChangeKind.DELETE_SEMANTICS, B),
    "grain-changed": (ChangeKind.GRAIN, B),
    "description-changed": (ChangeKind.DESCRIPTION, C),
    "classification-changed": (ChangeKind.CLASSIFICATION, C),
    "owner-changed": (ChangeKind.METADATA, C),
    "freshness-changed": (ChangeKind.METADATA, C),
    "status-changed": (ChangeKind.METADATA, C),
    "deprecation-date-changed": (ChangeKind.METADATA, C),
    "version-changed": (ChangeKind.METADATA, C),
}
"""Every rule id → (kind, verdict). The single source of truth; docs/contracts.md explains each."""

_FAMILY = {"smallint": "integer", "integer": "integer", "bigint": "integer",
           "varchar": "string", "text": "string", "char": "string"}
_INT_RANK = {"smallint": 1, "integer": 2, "bigint": 3}


@dataclass(frozen=True)
class Change:
    """One difference between two contract versions, judged by one rule."""

    table: str
    major: int
    column: str | None
    kind: ChangeKind
    verdict: Verdict
    rule: str
    message: str

    @property
    def breaking(self) -> bool:
        return self.verdict is Verdict.BREAKING

    def __str__(self) -> str:
        return f"{self.verdict.upper()} [{self.rule}] {self.message}"


def _change(c: Contract, column: str | None, rule: str, message: str) -> Change:
    kind, verdict = RULES[rule]
    subject = f"{c.physical_name}.{column}" if column else c.physical_name
    return Change(c.table, c.major, column, kind, verdict, rule, f"{subject}: {message}")


def _type_rule(old: Column, new: Column) -> str | None:
    """None when the type is unchanged, else the rule judging the type change.

    Sizes: None means unbounded (`text`, and `varchar`/`decimal` without a size in contracts written
    by others); `char(n)` is a string of size n whose values are blank-padded, so char(n) → varchar(n)
    widens and varchar(n) → char(n) narrows. A physical type stated on one side only narrows (added)
    or widens (dropped). Types we do not know compare by their single size argument, if any.
    """
    same_logical = old.logical_type == new.logical_type or None in (old.logical_type, new.logical_type)
    if old.physical_type == new.physical_type and same_logical:
        return None
    if not same_logical:
        return "type-family-changed"
    if old.base_type is None or new.base_type is None:
        return "type-narrowed" if old.base_type is None else "type-widened"
    fam_old, fam_new = _FAMILY.get(old.base_type, old.base_type), _FAMILY.get(new.base_type, new.base_type)
    if fam_old != fam_new:
        return "type-family-changed"
    if fam_old == "integer":
        rank_old, rank_new = _INT_RANK[old.base_type], _INT_RANK[new.base_type]
        if rank_old == rank_new:  # e.g. MySQL's display width bigint(20): no change to the values
            return None
        return "type-widened" if rank_new > rank_old else "type-narrowed"
    if fam_old == "string":
        size_old = None if old.base_type == "text" else old.length
        size_new = None if new.base_type == "text" else new.length
        if size_old == size_new:
            return "type-widened" if old.base_type == "char" or size_new is None else "type-narrowed"
        if size_new is None or (size_old is not None and size_new > size_old):
            return "type-widened"
        return "type-narrowed"
    if fam_old == "decimal":
        if new.precision is None or old.precision is None:
            return "type-widened" if new.precision is None else "type-narrowed"
        wider = new.scale >= old.scale and new.precision - new.scale >= old.precision - old.scale
        return "type-widened" if wider else "type-narrowed"
    if old.length is not None and new.length is not None and old.length != new.length:
        return "type-widened" if new.length > old.length else "type-narrowed"
    return "type-family-changed"


def _enum_changes(c: Contract, old: Column, new: Column) -> list[Change]:
    if old.enum == new.enum:
        return []
    if old.enum is None:
        return [_change(c, new.name, "enum-closed", f"now a closed set {list(new.enum)}")]
    if new.enum is None:
        return [_change(c, new.name, "enum-opened", f"no longer a closed set (was {list(old.enum)})")]
    out = []
    added = [v for v in new.enum if v not in old.enum]
    removed = [v for v in old.enum if v not in new.enum]
    if added:
        out.append(_change(c, new.name, "enum-value-added", f"enum value(s) {added} added to a closed set"))
    if removed:
        out.append(_change(c, new.name, "enum-value-removed", f"enum value(s) {removed} removed from a closed set"))
    return out


def _column_changes(c: Contract, old: Column, new: Column) -> list[Change]:
    out = []
    rule = _type_rule(old, new)
    if rule:
        out.append(_change(c, new.name, rule, f"type {old.physical_type} -> {new.physical_type}"))
    if old.required != new.required:
        if new.required:
            out.append(_change(c, new.name, "column-made-required", "optional -> required (no more nulls)"))
        else:
            out.append(_change(c, new.name, "column-made-optional", "required -> optional (readers may now see nulls)"))
    out += _enum_changes(c, old, new)
    if old.classification != new.classification:
        out.append(_change(c, new.name, "classification-changed",
                           f"classification {old.classification} -> {new.classification}"))
    if old.description != new.description:
        out.append(_change(c, new.name, "description-changed", "description changed"))
    return out


def _renames(removed: list[Column], added: list[Column]) -> dict[str, Column]:
    """Removed column name → the added column that looks like its new name (same type, one-to-one match)."""

    def signature(col: Column) -> tuple:
        return col.physical_type, col.enum is None

    pairs = {}
    for r in removed:
        same = [a for a in added if signature(a) == signature(r)]
        rivals = [x for x in removed if signature(x) == signature(r)]
        if len(same) == 1 and len(rivals) == 1:
            pairs[r.name] = same[0]
    return pairs


def _grain(text: str) -> str:
    return " ".join(text.lower().split()).rstrip(".")


def _table_changes(old: Contract, new: Contract) -> list[Change]:
    out = []
    if old.major != new.major:
        out.append(_change(new, None, "major-changed",
                           f"compared with {old.physical_name} (major {old.major} -> {new.major}: a new table "
                           f"next to the old one; the changes below are what readers moving to it must handle)"))
    elif old.physical_name != new.physical_name:
        out.append(_change(new, None, "physical-name-changed",
                           f"physical table {old.physical_name} -> {new.physical_name} (queries name the old one)"))
    if old.version != new.version:
        out.append(_change(new, None, "version-changed", f"version {old.version} -> {new.version}"))
    if _grain(old.grain) != _grain(new.grain):
        out.append(_change(new, None, "grain-changed", f"grain {old.grain!r} -> {new.grain!r}"))
    if old.primary_key != new.primary_key:
        out.append(_change(new, None, "primary-key-changed",
                           f"primary key ({', '.join(old.primary_key)}) -> ({', '.join(new.primary_key)})"))
    if old.delete_semantics != new.delete_semantics:
        out.append(_change(new, None, "delete-semantics-changed",
                           f"delete semantics {old.delete_semantics} -> {new.delete_semantics}"))
    if old.owner_service != new.owner_service:
        out.append(_change(new, None, "owner-changed", f"owner {old.owner_service} -> {new.owner_service}"))
    if old.freshness_seconds != new.freshness_seconds:
        out.append(_change(new, None, "freshness-changed",
                           f"freshness objective {old.freshness_seconds}s -> {new.freshness_seconds}s"))
    if old.status != new.status:
        out.append(_change(new, None, "status-changed", f"status {old.status} -> {new.status}"))
    if old.deprecation_date != new.deprecation_date:
        out.append(_change(new, None, "deprecation-date-changed",
                           f"deprecation date {old.deprecation_date} -> {new.deprecation_date}"))
    if old.description != new.description:
        out.append(_change(new, None, "description-changed", "table description changed"))

    new_names, old_names = set(new.column_names), set(old.column_names)
    removed = [col for col in old.columns if col.name not in new_names]
    added = [col for col in new.columns if col.name not in old_names]
    renames = _renames(removed, added)
    for col in old.columns:
        if col.name in renames:
            out.append(_change(new, col.name, "column-renamed",
                               f"looks renamed to {renames[col.name].name} (readers selecting {col.name} break)"))
            out += _column_changes(new, col, renames[col.name])  # under its new name: e.g. an enum value added
        elif col.name not in new_names:
            out.append(_change(new, col.name, "column-removed", "column removed"))
        else:
            out += _column_changes(new, col, new.column(col.name))
    renamed_to = {a.name for a in renames.values()}
    for col in added:
        if col.name in renamed_to:
            continue
        rule = "column-added-required" if col.required else "column-added-optional"
        out.append(_change(new, col.name, rule, f"new {'required' if col.required else 'optional'} column "
                                                f"{col.physical_type}"))
    common_old = [n for n in old.column_names if n in new_names]
    common_new = [n for n in new.column_names if n in old_names]
    if common_old != common_new:
        out.append(_change(new, None, "columns-reordered", "column order changed (select columns by name)"))
    return out


def diff(old: list[Contract], new: list[Contract], *, today: dt.date | None = None,
         across_majors: bool = False) -> list[Change]:
    """Every change from `old` to `new`, matched by (table, major), each with its verdict and rule.

    A removed table is breaking unless it was deprecated and its deprecation date is on or before
    `today` (default: the current date), in which case it is a planned retirement.

    `across_majors`: a table left with exactly one unmatched major on each side (old orders v1, new
    orders v2) is compared column by column, as within a major, instead of being reported as removed
    and added. For two contract files (`reporting contract diff v1.yaml v2.yaml`); never for the lock,
    where removing a major is a removal whatever replaces it.
    """
    today = today or dt.date.today()
    olds = {(c.table, c.major): c for c in old}
    news = {(c.table, c.major): c for c in new}
    paired: dict[tuple[str, int], tuple[str, int]] = {}
    if across_majors:
        lone_old = [k for k in olds if k not in news]
        lone_new = [k for k in news if k not in olds]
        for table in {t for t, _ in lone_old}:
            o = [k for k in lone_old if k[0] == table]
            n = [k for k in lone_new if k[0] == table]
            if len(o) == 1 and len(n) == 1:
                paired[o[0]] = n[0]
    out: list[Change] = []
    for key in sorted(olds.keys() | news.keys()):
        o, n = olds.get(key), news.get(key)
        if key in paired:
            out += _table_changes(o, news[paired[key]])
        elif key in paired.values():
            continue
        elif o is None:
            out.append(_change(n, None, "table-added", f"new table ({n.status}, version {n.version})"))
        elif n is None:
            due = o.deprecation_date is not None and o.status in ("deprecated", "retired") and o.deprecation_date <= today
            if due:
                out.append(_change(o, None, "table-retired", f"removed after its deprecation date {o.deprecation_date}"))
            else:
                out.append(_change(o, None, "table-removed", "table removed (consumers lose it; publish a "
                                                             "deprecation date and keep it until then)"))
        else:
            out += _table_changes(o, n)
    return out


def is_breaking(changes: list[Change]) -> bool:
    """True when any change is breaking."""
    return any(c.breaking for c in changes)
