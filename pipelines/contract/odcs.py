"""Read ODCS v3 YAML documents with line numbers and validate them against the standard. Pure.

Two validations, because each alone is too lax: the JSON Schema shipped with the
`open-data-contract-standard` package (it rejects unknown nested keys such as a `requird` typo,
which the package's pydantic model silently drops) and the pydantic model itself (types).
Contracts written by others (`reporting contract diff`) are held to the JSON Schema only: it is the
standard's own definition of a valid document, while the pydantic model is a convenience of the
package. Every error is a ContractError naming file:line of the offending key.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, NoReturn

import jsonschema
import pydantic
import yaml
from open_data_contract_standard.model import OpenDataContractStandard

from pipelines.contract.errors import ContractError

Loc = tuple[str | int, ...]


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps dates and times as strings (JSON Schema knows no date objects)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass(frozen=True)
class Document:
    """One YAML document: its plain data and the line of every key / sequence item (1-based)."""

    path: Path
    data: Any
    lines: dict[Loc, int] = field(repr=False)

    def line(self, loc: Loc) -> int | None:
        """Line of `loc`, or of its nearest existing parent."""
        while True:
            if loc in self.lines:
                return self.lines[loc]
            if not loc:
                return None
            loc = loc[:-1]

    def fail(self, loc: Loc, message: str) -> NoReturn:
        """Raise a ContractError for `loc` in this document."""
        raise ContractError(message, path=self.path, line=self.line(loc))


def _index(node: yaml.Node, loc: Loc, lines: dict[Loc, int], path: Path) -> None:
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen:
                raise ContractError(f"duplicate key {key!r}", path=path, line=key_node.start_mark.line + 1)
            seen.add(key)
            lines[(*loc, key)] = key_node.start_mark.line + 1
            _index(value_node, (*loc, key), lines, path)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index(item, (*loc, i), lines, path)


def read_documents(path: Path) -> list[Document]:
    """All YAML documents of `path` (zero for an empty file), with line numbers; duplicate keys rejected."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ContractError(f"cannot read contract: {exc.__class__.__name__}: {exc}", path=path) from exc
    loader = _Loader(text)
    documents = []
    try:
        while loader.check_node():
            node = loader.get_node()
            lines: dict[Loc, int] = {}
            _index(node, (), lines, path)
            documents.append(Document(path, loader.construct_document(node), lines))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ContractError(f"invalid YAML: {problem}", path=path, line=mark.line + 1 if mark else None) from exc
    finally:
        loader.dispose()
    return documents


@functools.cache
def _validator() -> jsonschema.protocols.Validator:
    text = resources.files("open_data_contract_standard").joinpath("schema.json").read_text(encoding="utf-8")
    schema = json.loads(text)
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema)


def _describe(doc: Document, loc: Loc) -> str:
    """`table.column` (or `table`) for a location under schema[i].properties[j], else the key path."""
    data = doc.data
    parts: list[str] = []
    try:
        if loc[:1] == ("schema",) and len(loc) >= 2:
            table = data["schema"][loc[1]]
            parts.append(str(table.get("name", f"schema[{loc[1]}]")))
            if len(loc) >= 4 and loc[2] == "properties":
                parts.append(str(table["properties"][loc[3]].get("name", f"properties[{loc[3]}]")))
    except (KeyError, IndexError, TypeError, AttributeError):
        parts = []
    dotted = ".".join(parts)
    keys = ".".join(str(k) if isinstance(k, str) else f"[{k}]" for k in loc).replace(".[", "[")
    if dotted and dotted != keys:
        return f"{dotted} ({keys})"
    return keys or "contract"


def validate(doc: Document, *, model: bool = True) -> OpenDataContractStandard | None:
    """Validate `doc` as ODCS v3 (JSON Schema, then unless `model` is false the pydantic model);
    ContractError on the first problem. Returns the pydantic model (None when not asked for)."""
    if not isinstance(doc.data, dict):
        doc.fail((), "a contract must be a YAML mapping (an ODCS v3 data contract)")
    errors = list(_validator().iter_errors(doc.data))
    for error in errors:  # an unknown key (a typo) explains most other errors: report it first
        if error.validator in ("additionalProperties", "unevaluatedProperties") and isinstance(error.instance, dict):
            loc: Loc = tuple(error.absolute_path)
            unknown = [k for k in re.findall(r"'([^']+)'", error.message) if k in error.instance]
            if unknown:
                doc.fail((*loc, unknown[0]), f"{_describe(doc, loc)}: unknown key {unknown[0]!r} (not in the ODCS v3 schema)")
    if errors:
        error = jsonschema.exceptions.best_match(errors)
        loc = tuple(error.absolute_path)
        doc.fail(loc, f"{_describe(doc, loc)}: {error.message} (ODCS v3 schema)")
    if not model:
        return None
    try:
        return OpenDataContractStandard.model_validate(doc.data)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(x for x in first["loc"] if isinstance(x, (str, int)))
        doc.fail(loc, f"{_describe(doc, loc)}: {first['msg']} (ODCS v3 model)")
