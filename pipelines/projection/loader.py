"""Load and check `connectors/<service>/projection.yaml` files (format: docs/projection.md).

Every problem is a ProjectionError naming `file:line` and what is wrong, raised at load time, so a bad
projection never reaches the stream. YAML is read with YAML 1.2 booleans (only true/false; `NO`, `on`,
`yes` stay strings) and duplicate keys are errors.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from pipelines.cdc.types import UNAVAILABLE, canonical_type, decoder_for
from pipelines.projection.errors import ProjectionError
from pipelines.projection.expr import CompiledExpr, compile_expression
from pipelines.projection.model import Projection, TableProjection, TargetProjection

__all__ = ["ENGINES", "load_projection", "load_projections", "parse_projection"]

ENGINES = ("postgresql", "mariadb")
IDENTIFIER_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
TARGET_RE = re.compile(r"^(?P<table>[a-z_][a-z0-9_]*)_v(?P<major>[1-9][0-9]*)$")
_INT_TYPES = ("tinyint", "smallint", "mediumint", "integer", "bigint")
_TOP_KEYS = ("service", "engine", "topic_prefix", "tables")
_TABLE_KEYS = ("key", "columns", "targets")
_MAP_KEYS = ("map", "values", "default")


# --- YAML with line numbers -------------------------------------------------------------------------

class _Map(dict):
    """A YAML mapping that remembers the line of itself and of each value."""

    line: int = 0
    lines: dict[Any, int]


class _Loader(yaml.SafeLoader):
    pass


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _Map:
    loader.flatten_mapping(node)
    out = _Map()
    out.line = node.start_mark.line + 1
    out.lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        try:
            duplicate = key in out
        except TypeError:
            raise ProjectionError(f"mapping key {key!r} is not a scalar", loader.name, line) from None
        if duplicate:
            raise ProjectionError(f"duplicate key {key!r}", loader.name, line)
        out[key] = loader.construct_object(value_node, deep=True)
        out.lines[key] = line
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


# --- checks -----------------------------------------------------------------------------------------

class _File:
    def __init__(self, path: Path | str) -> None:
        self.path = path

    def fail(self, reason: str, line: int | None) -> ProjectionError:
        return ProjectionError(reason, self.path, line)

    def mapping(self, value: Any, what: str, line: int | None) -> _Map:
        if not isinstance(value, _Map) or not value:
            raise self.fail(f"{what} must be a non-empty mapping", line)
        return value

    def identifier(self, name: Any, what: str, line: int | None) -> str:
        if not isinstance(name, str) or not IDENTIFIER_RE.fullmatch(name):
            raise self.fail(f"{what} {name!r} is not a plain identifier ({IDENTIFIER_RE.pattern})", line)
        return name

    def known_keys(self, m: _Map, allowed: tuple[str, ...], what: str) -> None:
        for k in m:
            if k not in allowed:
                raise self.fail(f"unknown key {k!r} in {what} (allowed: {', '.join(allowed)})", m.lines[k])


def _yaml_scalar(value: Any) -> Any:
    """A map value/default as the target value: floats become exact Decimals."""
    if isinstance(value, float):
        return Decimal(repr(value))
    return value


def _compile_map(f: _File, spec: _Map, where: str, columns: Mapping[str, str]) -> CompiledExpr:
    f.known_keys(spec, _MAP_KEYS, where)
    if "map" not in spec or "values" not in spec:
        raise f.fail(f"{where}: a map needs 'map: <column or expression>' and 'values: {{...}}'", spec.line)
    try:
        source = compile_expression(spec["map"], columns)
    except ProjectionError as exc:
        raise f.fail(f"{where}: {exc.reason}", spec.lines["map"]) from None
    values = f.mapping(spec["values"], f"{where}: values", spec.lines["values"])
    source_type = columns.get(source.plain_column) if source.plain_column else None
    table: dict[Any, Any] = {}
    for k, v in values.items():
        line = values.lines[k]
        if isinstance(k, bool):
            raise f.fail(f"{where}: map key {k!r} is a boolean; quote it", line)
        if source_type in _INT_TYPES and type(k) is not int:
            raise f.fail(f"{where}: map key {k!r} must be an integer ({source.plain_column} is {source_type})", line)
        if source_type == "text":
            if type(k) is int:
                k = str(k)
            elif type(k) is not str:
                raise f.fail(f"{where}: map key {k!r} must be text ({source.plain_column} is text)", line)
        if isinstance(v, (list, dict)):
            raise f.fail(f"{where}: map value for {k!r} must be a scalar", line)
        table[k] = _yaml_scalar(v)
    has_default = "default" in spec
    default = _yaml_scalar(spec.get("default"))
    if isinstance(default, (list, dict)):
        raise f.fail(f"{where}: default must be a scalar", spec.lines["default"])
    src = source.fn
    unav = UNAVAILABLE
    subject = source.text

    def fn(row: dict[str, Any]) -> Any:
        v = src(row)
        if v is unav:
            return unav
        try:
            return table[v]
        except (KeyError, TypeError):
            if v is None:
                return None
            if has_default:
                return default
            raise ProjectionError(f"{where}: {subject} value {v!r} has no mapping (add it to values: or set default:)")\
                from None

    return CompiledExpr(f"map({source.text})", fn, source.columns)


def _compile_target(f: _File, name: str, spec: _Map, line: int, table: str, key: tuple[str, ...],
                    columns: Mapping[str, str]) -> TargetProjection:
    m = TARGET_RE.fullmatch(name) if isinstance(name, str) else None
    if m is None or len(name) > 63:
        raise f.fail(f"target {name!r} must be named <contract table>_v<major> (e.g. sales_v1)", line)
    spec = f.mapping(spec, f"target {name}", line)
    names, exprs = [], []
    for col, col_spec in spec.items():
        col_line = spec.lines[col]
        f.identifier(col, f"target column of {name}", col_line)
        if col.startswith("_"):
            raise f.fail(f"{name}.{col}: names starting with '_' are provenance columns, set by the pipeline",
                         col_line)
        where = f"{name}.{col}"
        if isinstance(col_spec, str):
            try:
                expr = compile_expression(col_spec, columns)
            except ProjectionError as exc:
                raise f.fail(f"{where}: {exc.reason}", col_line) from None
        elif isinstance(col_spec, _Map):
            expr = _compile_map(f, col_spec, where, columns)
        else:
            raise f.fail(f"{where}: expected a column name, an expression string or a {{map: ...}} mapping, "
                         f"got {col_spec!r} (quote literals inside an expression: \"'EUR'\")", col_line)
        names.append(col)
        exprs.append(expr)
    key_columns = []
    for k in key:
        carriers = [c for c, e in zip(names, exprs, strict=True) if e.plain_column == k]
        if len(carriers) != 1:
            raise f.fail(f"target {name} must copy source key column {table}.{k} into exactly one column by plain "
                         f"reference (found {len(carriers)}): the key identifies rows for updates and deletes",
                         line)
        key_columns.append(carriers[0])
    return TargetProjection(name, tuple(names), tuple(exprs), tuple(key_columns), line)


def _compile_table(f: _File, service: str, engine: str, prefix: str, source_table: Any, spec: Any,
                   line: int) -> TableProjection:
    parts = source_table.split(".") if isinstance(source_table, str) else []
    kind = "schema" if engine == "postgresql" else "database"
    if len(parts) != 2 or not all(IDENTIFIER_RE.fullmatch(p) for p in parts):
        raise f.fail(f"source table {source_table!r} must be <{kind}>.<table> as Debezium names it "
                     f"(plain identifiers)", line)
    spec = f.mapping(spec, f"table {source_table}", line)
    f.known_keys(spec, _TABLE_KEYS, f"table {source_table}")
    for required in _TABLE_KEYS:
        if required not in spec:
            raise f.fail(f"table {source_table}: '{required}' is required", spec.line)
    cols = f.mapping(spec["columns"], f"{source_table}: columns", spec.lines["columns"])
    column_types: dict[str, str] = {}
    decoders = {}
    for col, type_name in cols.items():
        col_line = cols.lines[col]
        f.identifier(col, f"source column of {source_table}", col_line)
        try:
            column_types[col] = canonical_type(type_name)
            decoders[col] = decoder_for(type_name, f"{source_table}.{col}")
        except ValueError as exc:
            raise f.fail(f"{source_table}.{col}: {exc}", col_line) from None
    key_line = spec.lines["key"]
    raw_key = spec["key"]
    if isinstance(raw_key, str):
        raw_key = [raw_key]
    if not isinstance(raw_key, list) or not raw_key:
        raise f.fail(f"{source_table}: key must be a non-empty list of source columns", key_line)
    for k in raw_key:
        if k not in column_types:
            raise f.fail(f"{source_table}: key column {k!r} is not declared under columns:", key_line)
    if len(set(raw_key)) != len(raw_key):
        raise f.fail(f"{source_table}: key lists a column twice", key_line)
    key = tuple(raw_key)
    targets_spec = f.mapping(spec["targets"], f"{source_table}: targets", spec.lines["targets"])
    targets = tuple(
        _compile_target(f, name, t_spec, targets_spec.lines[name], source_table, key, column_types)
        for name, t_spec in targets_spec.items()
    )
    used = set(key).union(*(e.columns for t in targets for e in t.expressions))
    for col in column_types:
        if col not in used:
            raise f.fail(f"{source_table}.{col} is declared but no target uses it (remove it: every declared "
                         f"column must be present in each event)", cols.lines[col])
    return TableProjection(
        service=service,
        engine=engine,
        topic=f"{prefix}.{source_table}",
        source_table=source_table,
        key=key,
        column_types=MappingProxyType(column_types),
        targets=targets,
        path=Path(f.path),
        decoders=tuple(decoders.items()),
        key_decoders=tuple((k, decoders[k]) for k in key),
    )


def parse_projection(text: str, path: Path | str = "<projection>") -> Projection:
    """Parse and compile projection YAML text; `path` is used in error messages."""
    f = _File(path)
    loader = _Loader(text)
    loader.name = str(path)
    try:
        doc = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        # a scanner error (e.g. an unterminated quote) is best located where the token started
        scanning = isinstance(exc, yaml.scanner.ScannerError) and exc.context_mark is not None
        mark = exc.context_mark if scanning else (exc.problem_mark or exc.context_mark)
        what = f"{exc.context}: {exc.problem}" if exc.context else exc.problem
        raise f.fail(f"invalid YAML: {what}", mark.line + 1 if mark else None) from None
    except yaml.YAMLError as exc:
        raise f.fail(f"invalid YAML: {exc}", None) from None
    finally:
        loader.dispose()
    doc = f.mapping(doc, "the file", 1)
    f.known_keys(doc, _TOP_KEYS, "the file")
    for required in ("service", "engine", "tables"):
        if required not in doc:
            raise f.fail(f"'{required}' is required", doc.line)
    service = f.identifier(doc["service"], "service", doc.lines["service"])
    engine = doc["engine"]
    if engine not in ENGINES:
        raise f.fail(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}", doc.lines["engine"])
    prefix = doc.get("topic_prefix", service)
    if not isinstance(prefix, str) or not re.fullmatch(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*", prefix):
        raise f.fail(f"topic_prefix {prefix!r} is not a valid Kafka topic prefix", doc.lines.get("topic_prefix"))
    tables_spec = f.mapping(doc["tables"], "tables", doc.lines["tables"])
    tables = {}
    seen_targets: dict[str, str] = {}
    for source_table, spec in tables_spec.items():
        table = _compile_table(f, service, engine, prefix, source_table, spec, tables_spec.lines[source_table])
        for t in table.targets:
            if t.physical_name in seen_targets:
                raise f.fail(f"target {t.physical_name} is fed by both {seen_targets[t.physical_name]} and "
                             f"{source_table} (a contract table has exactly one source table)", t.line)
            seen_targets[t.physical_name] = source_table
        tables[source_table] = table
    return Projection(service, engine, prefix, MappingProxyType(tables), Path(path))


def load_projection(path: Path | str) -> Projection:
    """Load one projection file. ProjectionError (`file:line: reason`) when anything is wrong."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProjectionError(f"cannot read: {exc.strerror or exc}", path) from None
    return parse_projection(text, path)


def load_projections(connectors_root: Path | str) -> dict[str, TableProjection]:
    """Load every `<connectors_root>/<service>/projection.yaml` (the service is its folder's name)."""
    root = Path(connectors_root)
    return load_service_projections([(p.parent.name, p) for p in sorted(root.glob("*/projection.yaml"))])


def load_service_projections(files: Iterable[tuple[str, Path]]) -> dict[str, TableProjection]:
    """Load each (service, projection file) → {Kafka topic: TableProjection}.

    The topic (`<topic prefix>.<source table>`, e.g. `orders.public.orders`) is the routing key the
    consumer and the planner use. Checks across files: a file's `service:` is the service it is
    declared for, a topic and a target table appear once (a contract is fed by one service).
    """
    routes: dict[str, TableProjection] = {}
    targets: dict[str, Path] = {}
    for service, path in files:
        path = Path(path)
        projection = load_projection(path)
        if projection.service != service:
            raise ProjectionError(f"service {projection.service!r} does not match the service it is declared for "
                                  f"({service!r})", path, 1)
        for table in projection.tables.values():
            if table.topic in routes:
                raise ProjectionError(f"topic {table.topic} is already projected by {routes[table.topic].path}", path)
            for t in table.targets:
                if t.physical_name in targets:
                    raise ProjectionError(f"target {t.physical_name} is already fed by {targets[t.physical_name]}",
                                          path, t.line)
                targets[t.physical_name] = path
            routes[table.topic] = table
    return routes


def load_estate_projections(estate) -> dict[str, TableProjection]:
    """Every projection the estate declares (`services.<name>.projection`)."""
    return load_service_projections([(s.name, s.projection) for s in estate.services])
