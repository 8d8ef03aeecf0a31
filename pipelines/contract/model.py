"""The reporting contract model: ODCS v3 YAML files → frozen, validated dataclasses. Pure.

One file per table and major version: `reporting_schema/<table>/v<major>.yaml`. Placement of our
concepts inside ODCS (see docs/contracts.md): the table is the single `schema[0]` object; grain in its
`dataGranularityDescription`; `deleteSemantics` in its `customProperties`; `ownerService` and
`deprecationDate` in the contract's `customProperties`; freshness as the `latency` entry of
`slaProperties`; a closed set of values as the column's ODCS `enum` list (`- value: PAID`); length and
precision in `physicalType` (`varchar(64)`, `decimal(12,2)`).

Two ways to read ODCS: our profile (`load_contract(s)`, `load_contracts_file`: the repo's own
reporting_schema/, for check, publish and docs) and the standard as it is (`load_any`, for
`reporting contract diff` of contracts written by others: any document valid against the ODCS v3
JSON Schema; several tables per contract, any physicalName, types such as `char(n)`, unknown
customProperties kept and ignored). Those are `Contract(strict=False)`: fields our profile requires
may be empty (None) there.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.contract import odcs
from pipelines.contract.errors import ContractError
from pipelines.contract.sqltypes import IDENTIFIER_RE, LOGICAL_TYPES, is_identifier, parse_physical_type

__all__ = [
    "CLASSIFICATIONS", "DELETE_SEMANTICS", "STATUSES", "Column", "Contract", "ContractError",
    "default_root", "load_any", "load_contract", "load_contracts", "load_contracts_file",
]

CLASSIFICATIONS = ("public", "internal", "pii")
DELETE_SEMANTICS = ("soft", "hard")
STATUSES = ("proposed", "draft", "active", "deprecated", "retired")
_DATED_STATUSES = ("deprecated", "retired")
_FILE_RE = re.compile(r"^v(?P<major>[1-9][0-9]*)\.yaml$")
_VERSION_RE = re.compile(r"^(?P<major>0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")
_UNIT_SECONDS = {
    "s": 1, "sec": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
}
_CONTRACT_PROPERTIES = ("ownerService", "deprecationDate")
_TABLE_PROPERTIES = ("deleteSemantics",)
_REPORTING_SCHEMA = "reporting"  # = ddl.SCHEMA (ddl imports this module)
_POSTGRES_SERVERS = ("postgres", "postgresql")
_LOOSE_VERSION_RE = re.compile(r"^\s*[vV]?(?P<major>[0-9]+)")
_LOOSE_TYPE_RE = re.compile(r"^(?P<name>[a-z][a-z0-9_ ]*?)\s*(?:\((?P<args>[^()]*)\))?(?P<rest>(?: [a-z ]+)?)$")
_CHAR_NAMES = ("char", "character", "bpchar", "nchar")

CustomProperties = tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class Column:
    """One contract column. `physical_type` is the canonical spelling of (base_type, length, precision, scale)."""

    name: str
    logical_type: str
    physical_type: str
    base_type: str
    length: int | None
    precision: int | None
    scale: int | None
    required: bool
    primary_key: bool
    classification: str
    description: str
    enum: tuple[str, ...] | None = None
    """The closed set of allowed values; None means the column is open."""
    custom_properties: CustomProperties = field(default=(), compare=False, repr=False)
    """(property, value) pairs of a contract written by others, kept as read; no rule looks at them."""


@dataclass(frozen=True)
class Contract:
    """One published table at one major version: the API BI users and dbt read.

    Invariants (checked on construction, whatever the source: YAML or lock): plain identifiers,
    unique columns, a non-empty primary key made of existing required columns. A table of a contract
    written by others (`strict=False`, from `load_any`) keeps only unique columns and a primary key
    made of existing columns; owner, grain, freshness, status, delete semantics, a column's types and
    classification may be None or empty there, and `physical` is its `physicalName` (or name).
    """

    table: str
    major: int
    version: str
    owner_service: str
    description: str
    grain: str
    primary_key: tuple[str, ...]
    columns: tuple[Column, ...]
    delete_semantics: str
    freshness_seconds: int
    status: str
    deprecation_date: dt.date | None = None
    path: Path | None = None
    physical: str | None = None
    """The physical table when it is not `<table>_v<major>` (contracts written by others only)."""
    strict: bool = True
    """True: our profile (the repo's contracts and the lock); False: ODCS as the standard allows."""
    custom_properties: CustomProperties = field(default=(), compare=False, repr=False)
    """The contract's and the table's customProperties (property, value), for contracts written by others."""

    def __post_init__(self) -> None:
        where = self.physical_name
        if not self.strict:
            self._check_loose()
            return
        if self.physical is not None:
            self._fail(f"{where}: physical is only for contracts written by others (strict=False)")
        if not is_identifier(self.table):
            self._fail(f"table name {self.table!r} is not a plain SQL identifier ({IDENTIFIER_RE.pattern})")
        names = [c.name for c in self.columns]
        for name in names:
            if not is_identifier(name):
                self._fail(f"{self.table}.{name!r}: column name is not a plain SQL identifier ({IDENTIFIER_RE.pattern})")
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            self._fail(f"{self.table}.{dupes[0]}: duplicate column")
        if not self.columns:
            self._fail(f"{where}: no columns")
        if not self.primary_key:
            self._fail(f"{self.table}: missing primary key (mark columns with primaryKey: true)")
        for key in self.primary_key:
            if key not in names:
                self._fail(f"{self.table}.{key}: primary key column does not exist")
            if not self.column(key).required:
                self._fail(f"{self.table}.{key}: primary key column must be required")
        if self.delete_semantics not in DELETE_SEMANTICS:
            self._fail(f"{where}: deleteSemantics must be one of {', '.join(DELETE_SEMANTICS)}")

    def _check_loose(self) -> None:
        names = [c.name for c in self.columns]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            self._fail(f"{self.table}.{dupes[0]}: duplicate column")
        for key in self.primary_key:
            if key not in names:
                self._fail(f"{self.table}.{key}: primary key column does not exist")

    def _fail(self, message: str) -> None:
        raise ContractError(message, path=self.path)

    @property
    def physical_name(self) -> str:
        """The physical table: `<table>_v<major>` in schema `reporting` (or a foreign contract's physicalName)."""
        return self.physical or f"{self.table}_v{self.major}"

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        """The column called `name` (KeyError if absent)."""
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.physical_name} has no column {name!r}")


def default_root() -> Path:
    """The repository's `reporting_schema/` folder."""
    from pipelines.settings import REPO_ROOT

    return REPO_ROOT / "reporting_schema"


def _custom(doc: odcs.Document, loc: tuple, items: list | None, allowed: tuple[str, ...], subject: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for i, item in enumerate(items or []):
        name = item.get("property")
        if name not in allowed:
            doc.fail((*loc, i, "property"), f"{subject}: unknown customProperties entry {name!r} (known here: {', '.join(allowed)})")
        if name in found:
            doc.fail((*loc, i, "property"), f"{subject}: customProperties entry {name!r} given twice")
        found[name] = (item.get("value"), (*loc, i, "value"))
    return found


def _text(doc: odcs.Document, loc: tuple, value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        doc.fail(loc, f"{what} is required (a non-empty text)")
    return " ".join(value.split())


def _column(doc: odcs.Document, loc: tuple, table: str, raw: dict) -> Column:
    name = raw.get("name")
    if not is_identifier(name):
        doc.fail((*loc, "name"), f"{table}.{name!r}: column name is not a plain SQL identifier ({IDENTIFIER_RE.pattern})")
    subject = f"{table}.{name}"
    if name.startswith("_"):
        doc.fail((*loc, "name"), f"{subject}: names starting with '_' are reserved for provenance columns")
    for nested in ("properties", "items"):
        if nested in raw:
            doc.fail((*loc, nested), f"{subject}: nested {nested} are not supported (use physicalType json)")
    try:
        ptype = parse_physical_type(raw.get("physicalType"))
    except ValueError as exc:
        doc.fail((*loc, "physicalType"), f"{subject}: {exc}")
    logical = raw.get("logicalType")
    if logical not in LOGICAL_TYPES[ptype.base]:
        doc.fail((*loc, "logicalType"),
                 f"{subject}: logicalType {logical!r} does not match physicalType {ptype.text} "
                 f"(expected {' or '.join(LOGICAL_TYPES[ptype.base])})")
    classification = raw.get("classification")
    if classification not in CLASSIFICATIONS:
        doc.fail((*loc, "classification"),
                 f"{subject}: classification {classification!r} must be one of {', '.join(CLASSIFICATIONS)}")
    if raw.get("customProperties"):
        doc.fail((*loc, "customProperties"), f"{subject}: no customProperties are defined for columns")
    enum = None
    if raw.get("enum") is not None:
        if ptype.base not in ("varchar", "text"):
            doc.fail((*loc, "enum"), f"{subject}: enum is only supported on varchar/text columns")
        values = []
        for i, entry in enumerate(raw["enum"]):
            value = entry.get("value")
            if not isinstance(value, str) or not value:
                doc.fail((*loc, "enum", i), f"{subject}: enum values must be non-empty strings, got {value!r}")
            if value in values:
                doc.fail((*loc, "enum", i), f"{subject}: duplicate enum value {value!r}")
            if ptype.length is not None and len(value) > ptype.length:
                doc.fail((*loc, "enum", i), f"{subject}: enum value {value!r} is longer than {ptype.text}")
            values.append(value)
        enum = tuple(values)
    return Column(
        name=name,
        logical_type=logical,
        physical_type=ptype.text,
        base_type=ptype.base,
        length=ptype.length,
        precision=ptype.precision,
        scale=ptype.scale,
        required=bool(raw.get("required", False)),
        primary_key=bool(raw.get("primaryKey", False)),
        classification=classification,
        description=_text(doc, (*loc, "description"), raw.get("description"), f"{subject}: description"),
        enum=enum,
    )


def _primary_key(doc: odcs.Document, loc: tuple, table: str, props: list[dict], columns: list[Column]) -> tuple:
    keyed = [(i, c, props[i].get("primaryKeyPosition")) for i, c in enumerate(columns) if c.primary_key]
    if not keyed:
        doc.fail(loc, f"{table}: missing primary key (mark its columns with primaryKey: true)")
    for i, col, pos in keyed:
        if not col.required:
            doc.fail((*loc, "properties", i, "required"), f"{table}.{col.name}: primary key column must be required")
        if len(keyed) > 1 and pos is None:
            doc.fail((*loc, "properties", i), f"{table}.{col.name}: composite primary key needs primaryKeyPosition")
    for i, col in enumerate(columns):
        if not col.primary_key and props[i].get("primaryKeyPosition", -1) != -1:
            doc.fail((*loc, "properties", i, "primaryKeyPosition"),
                     f"{table}.{col.name}: primaryKeyPosition without primaryKey: true")
    ordered = sorted(keyed, key=lambda k: (k[2] if k[2] is not None else 1))
    positions = [k[2] if k[2] is not None else 1 for k in ordered]
    if positions != list(range(1, len(keyed) + 1)):
        doc.fail((*loc, "properties", ordered[0][0]),
                 f"{table}: primaryKeyPosition values must be 1..{len(keyed)}, got {positions}")
    return tuple(k[1].name for k in ordered)


def _freshness(doc: odcs.Document, table: str, columns: list[Column]) -> int:
    found = [(i, sla) for i, sla in enumerate(doc.data.get("slaProperties") or []) if sla.get("property") == "latency"]
    if len(found) != 1:
        doc.fail(("slaProperties",), f"{table}: exactly one slaProperties entry 'latency' (the freshness objective) "
                                     f"is required, found {len(found)}")
    i, sla = found[0]
    value, unit = sla.get("value"), str(sla.get("unit", "s")).lower()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0 or unit not in _UNIT_SECONDS:
        doc.fail(("slaProperties", i), f"{table}: latency needs a positive number value and a unit "
                                       f"({', '.join(_UNIT_SECONDS)}), got {value!r} {unit!r}")
    element = sla.get("element")
    if element is not None:
        col = element.split(".", 1)[1] if element.startswith(f"{table}.") else element
        if col not in [c.name for c in columns]:
            doc.fail(("slaProperties", i, "element"), f"{table}.{col}: latency element names no column of the table")
    return int(round(value * _UNIT_SECONDS[unit]))


def _servers(doc: odcs.Document, table: str) -> None:
    """A PostgreSQL `servers` entry documents where the table lives: schema `reporting`, nowhere else."""
    for i, server in enumerate(doc.data.get("servers") or []):
        if server.get("type") in _POSTGRES_SERVERS and server.get("schema") != _REPORTING_SCHEMA:
            doc.fail(("servers", i, "schema"), f"{table}: server {server.get('server')!r}: the contract's tables live in "
                                               f"schema {_REPORTING_SCHEMA!r}, not {server.get('schema')!r}")


def _contract(doc: odcs.Document) -> Contract:
    odcs.validate(doc)
    data = doc.data
    path = doc.path
    version = data.get("version")
    m = _VERSION_RE.fullmatch(str(version))
    if m is None or int(m["major"]) < 1:
        doc.fail(("version",), f"version {version!r} must be semver MAJOR.MINOR.PATCH with MAJOR >= 1")
    major = int(m["major"])
    if not str(data.get("apiVersion")).startswith("v3."):
        doc.fail(("apiVersion",), f"apiVersion {data.get('apiVersion')!r}: only ODCS v3 contracts are supported")
    schema = data.get("schema") or []
    if len(schema) != 1:
        doc.fail(("schema",), f"a contract describes exactly one table (schema has {len(schema)} objects)")
    raw, loc = schema[0], ("schema", 0)
    table = raw.get("name")
    if not is_identifier(table):
        doc.fail((*loc, "name"), f"table name {table!r} is not a plain SQL identifier ({IDENTIFIER_RE.pattern})")
    file_match = _FILE_RE.fullmatch(path.name)
    if file_match:  # laid out as <table>/v<major>.yaml: the location must agree with the content
        if int(file_match["major"]) != major:
            doc.fail(("version",), f"{table}: version {version} does not match file name {path.name} (major {file_match['major']})")
        if path.parent.name != table:
            doc.fail((*loc, "name"), f"table {table!r} does not match its folder {path.parent.name!r}")
    if raw.get("physicalName", f"{table}_v{major}") != f"{table}_v{major}":
        doc.fail((*loc, "physicalName"), f"{table}: physicalName must be {table}_v{major}")
    if raw.get("physicalType", "table") != "table":
        doc.fail((*loc, "physicalType"), f"{table}: physicalType must be 'table'")
    props = raw.get("properties") or []
    if not props:
        doc.fail((*loc, "properties"), f"{table}: no columns (properties)")
    columns: list[Column] = []
    for i, prop in enumerate(props):
        col = _column(doc, (*loc, "properties", i), table, prop)
        if col.name in [c.name for c in columns]:
            doc.fail((*loc, "properties", i, "name"), f"{table}.{col.name}: duplicate column")
        columns.append(col)
    primary_key = _primary_key(doc, loc, table, props, columns)
    top = _custom(doc, ("customProperties",), data.get("customProperties"), _CONTRACT_PROPERTIES, table)
    here = _custom(doc, (*loc, "customProperties"), raw.get("customProperties"), _TABLE_PROPERTIES, table)
    owner, owner_loc = top.get("ownerService", (None, ("customProperties",)))
    if not is_identifier(owner):
        doc.fail(owner_loc, f"{table}: customProperties ownerService must be a service name (plain identifier), got {owner!r}")
    semantics, sem_loc = here.get("deleteSemantics", (None, (*loc, "customProperties")))
    if semantics not in DELETE_SEMANTICS:
        doc.fail(sem_loc, f"{table}: customProperties deleteSemantics must be one of {', '.join(DELETE_SEMANTICS)}, got {semantics!r}")
    _servers(doc, table)
    status = data.get("status")
    if status not in STATUSES:
        doc.fail(("status",), f"{table}: status {status!r} must be one of {', '.join(STATUSES)}")
    deprecation, dep_loc = top.get("deprecationDate", (None, ("status",)))
    deprecation_date = None
    if (deprecation is None) == (status in _DATED_STATUSES):
        doc.fail(dep_loc, f"{table}: customProperties deprecationDate is required exactly when status is deprecated or retired")
    if deprecation is not None:
        try:
            deprecation_date = dt.date.fromisoformat(str(deprecation))
        except ValueError:
            doc.fail(dep_loc, f"{table}: deprecationDate {deprecation!r} is not a date (YYYY-MM-DD)")
    return Contract(
        table=table,
        major=major,
        version=str(version),
        owner_service=owner,
        description=_text(doc, (*loc, "description"), raw.get("description"), f"{table}: description"),
        grain=_text(doc, (*loc, "dataGranularityDescription"), raw.get("dataGranularityDescription"),
                    f"{table}: dataGranularityDescription (the grain)"),
        primary_key=primary_key,
        columns=tuple(columns),
        delete_semantics=semantics,
        freshness_seconds=_freshness(doc, table, columns),
        status=status,
        deprecation_date=deprecation_date,
        path=path,
    )


def load_contracts_file(path: Path | str) -> list[Contract]:
    """Every contract in one YAML file (multi-document files allowed, an empty file has none)."""
    path = Path(path)
    contracts = [_contract(doc) for doc in odcs.read_documents(path)]
    _unique(contracts)
    return contracts


def load_contract(path: Path | str) -> Contract:
    """The single contract in `path`. Files named `v<major>.yaml` must sit in a folder named after their table."""
    path = Path(path)
    contracts = load_contracts_file(path)
    if len(contracts) != 1:
        raise ContractError(f"expected exactly one contract document, found {len(contracts)}", path=path)
    return contracts[0]


def load_contracts(root: Path | str | None = None) -> list[Contract]:
    """All contracts under `root` (default: the repo's reporting_schema/), sorted by table and major.

    Layout is strict: `<root>/<table>/v<major>.yaml`; any other YAML file below root is an error
    rather than silently ignored.
    """
    root = Path(root) if root is not None else default_root()
    if not root.is_dir():
        raise ContractError("contract folder does not exist", path=root)
    contracts = []
    for path in sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()):
        rel = path.relative_to(root)
        if len(rel.parts) != 2 or not _FILE_RE.fullmatch(path.name):
            raise ContractError("contract files must be laid out as <table>/v<major>.yaml", path=path)
        contracts.append(load_contract(path))
    _unique(contracts)
    return sorted(contracts, key=lambda c: (c.table, c.major))


def _unique(contracts: list[Contract]) -> None:
    """One contract per table and major (the key `diff` matches on)."""
    seen: dict[tuple[str, int], Contract] = {}
    for c in contracts:
        key = (c.table, c.major)
        if key in seen:
            raise ContractError(f"{c.physical_name}: defined twice (also in {seen[key].path})", path=c.path)
        seen[key] = c

# --- ODCS as the standard allows (contracts written by others; `reporting contract diff`) ---------------


def _pairs(items: Any) -> CustomProperties:
    """customProperties as (property, value) pairs, in file order."""
    return tuple((str(item.get("property")), item.get("value")) for item in items or [] if isinstance(item, dict))


def _first(pairs: CustomProperties, name: str) -> Any:
    return next((value for prop, value in pairs if prop == name), None)


def _loose_text(value: Any) -> str:
    return " ".join(str(value).split()) if value is not None else ""


def _loose_type(text: Any) -> tuple[str | None, str | None, int | None, int | None, int | None]:
    """(physical_type, base_type, length, precision, scale) of any physicalType.

    Our types (and aliases) as in our profile; `char(n)`/`character(n)`/`bpchar(n)` become `char(n)`
    (n defaults to 1 as in SQL); `varchar`/`decimal` without a size are unbounded (length/precision
    None); any other type is kept as written (lower case, single spaces), one numeric argument read
    as its length and two as precision and scale. None when the column states no physicalType.
    """
    if text is None or not str(text).strip():
        return None, None, None, None, None
    try:
        t = parse_physical_type(str(text))
    except ValueError:
        pass
    else:
        return t.text, t.base, t.length, t.precision, t.scale
    norm = " ".join(str(text).strip().lower().split())
    m = _LOOSE_TYPE_RE.fullmatch(norm)
    if m is None:
        return norm, norm, None, None, None
    base = f"{m['name'].strip()}{m['rest']}".strip()
    base = {"character varying": "varchar", "numeric": "decimal", **dict.fromkeys(_CHAR_NAMES, "char")}.get(base, base)
    try:
        base = parse_physical_type(base).base  # int8, timestamp with time zone, ...
    except ValueError:
        pass
    args = [a.strip() for a in m["args"].split(",")] if m["args"] is not None else []
    if not all(a.isdigit() for a in args):
        return norm, base, None, None, None
    nums = [int(a) for a in args]
    if base == "char":
        length = nums[0] if nums else 1
        return f"char({length})", "char", length, None, None
    if base == "decimal" and nums:
        scale = nums[1] if len(nums) > 1 else 0
        return f"decimal({nums[0]},{scale})", "decimal", None, nums[0], scale
    text = f"{base}({','.join(args)})" if args else base
    if len(nums) == 1:
        return text, base, nums[0], None, None
    if len(nums) == 2:
        return text, base, None, nums[0], nums[1]
    return text, base, None, None, None


def _loose_column(raw: dict, name: str) -> Column:
    physical, base, length, precision, scale = _loose_type(raw.get("physicalType"))
    enum = None
    if raw.get("enum") is not None:
        values: list[str] = []
        for entry in raw["enum"]:
            value = str(entry.get("value"))
            if value not in values:
                values.append(value)
        enum = tuple(values)
    classification = raw.get("classification")
    return Column(
        name=name,
        logical_type=raw.get("logicalType"),
        physical_type=physical,
        base_type=base,
        length=length,
        precision=precision,
        scale=scale,
        required=bool(raw.get("required", False)),
        primary_key=bool(raw.get("primaryKey", False)),
        classification=str(classification) if classification is not None else None,
        description=_loose_text(raw.get("description")),
        enum=enum,
        custom_properties=_pairs(raw.get("customProperties")),
    )


def _loose_columns(doc: odcs.Document, loc: tuple, table: str, props: Any, prefix: str,
                   out: list[tuple[Column, Any, tuple]]) -> None:
    """Columns of `props`, depth first; nested object properties as `parent.child`, array items as `parent[]`."""
    for i, raw in enumerate(props or []):
        here = (*loc, i)
        name = f"{prefix}{raw.get('name')}"
        if name in [c.name for c, _, _ in out]:
            doc.fail((*here, "name"), f"{table}.{name}: duplicate column")
        out.append((_loose_column(raw, name), raw.get("primaryKeyPosition"), here))
        _loose_columns(doc, (*here, "properties"), table, raw.get("properties"), f"{name}.", out)
        items = raw.get("items")
        if isinstance(items, dict):
            _loose_columns(doc, (*here, "items"), table, [{**items, "name": "[]"}], name, out)


def _loose_freshness(data: dict, table: str) -> int | None:
    """The first usable `latency` SLA that applies to `table` (no element, a bare column or `table.column`)."""
    for sla in data.get("slaProperties") or []:
        element = sla.get("element")
        if sla.get("property") != "latency" or (isinstance(element, str) and "." in element
                                                and not element.startswith(f"{table}.")):
            continue
        value, unit = sla.get("value"), str(sla.get("unit", "s")).lower()
        if not isinstance(value, bool) and isinstance(value, (int, float)) and value > 0 and unit in _UNIT_SECONDS:
            return int(round(value * _UNIT_SECONDS[unit]))
    return None


def _loose_date(value: Any) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(value)) if value is not None else None
    except ValueError:
        return None


def _loose_contracts(doc: odcs.Document) -> list[Contract]:
    """Every table of a valid ODCS v3 document, with what our rules can compare; nothing of our profile required."""
    odcs.validate(doc, model=False)
    data = doc.data
    if not str(data.get("apiVersion")).startswith("v3."):
        doc.fail(("apiVersion",), f"apiVersion {data.get('apiVersion')!r}: only ODCS v3 contracts are supported")
    version = str(data.get("version"))
    m = _LOOSE_VERSION_RE.match(version)
    major = int(m["major"]) if m else 0
    top = _pairs(data.get("customProperties"))
    owner = _first(top, "ownerService")
    status = data.get("status")
    out = []
    for t, raw in enumerate(data.get("schema") or []):
        loc = ("schema", t)
        table = str(raw.get("name"))
        found: list[tuple[Column, Any, tuple]] = []
        _loose_columns(doc, (*loc, "properties"), table, raw.get("properties"), "", found)
        keyed = [(i, c, pos) for i, (c, pos, _) in enumerate(found) if c.primary_key]
        keyed.sort(key=lambda k: (k[2] if isinstance(k[2], int) and k[2] > 0 else len(found) + 1, k[0]))
        here = _pairs(raw.get("customProperties"))
        semantics = _first(here, "deleteSemantics")
        out.append(Contract(
            table=table,
            major=major,
            version=version,
            owner_service=str(owner) if owner is not None else None,
            description=_loose_text(raw.get("description")),
            grain=_loose_text(raw.get("dataGranularityDescription")),
            primary_key=tuple(c.name for _, c, _ in keyed),
            columns=tuple(c for c, _, _ in found),
            delete_semantics=str(semantics) if semantics is not None else None,
            freshness_seconds=_loose_freshness(data, table),
            status=str(status) if status is not None else None,
            deprecation_date=_loose_date(_first(top, "deprecationDate")),
            path=doc.path,
            physical=str(raw.get("physicalName") or table),
            strict=False,
            custom_properties=top + here,
        ))
    return out


def load_any(path: Path | str) -> list[Contract]:
    """Every table of every ODCS v3 contract in a file (several YAML documents allowed) or below a folder
    (every *.yaml / *.yml, any layout), read as the standard allows: for `reporting contract diff`.

    The document must be valid against the ODCS v3 JSON Schema; none of our profile's rules apply.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    elif path.exists():
        files = [path]
    else:
        raise ContractError("no such file or folder", path=path)
    contracts = [c for file in files for doc in odcs.read_documents(file) for c in _loose_contracts(doc)]
    _unique(contracts)
    return sorted(contracts, key=lambda c: (c.table, c.major))
