"""Descriptions of the marts from the dbt project's model YAML files (what `dbt docs` shows): the model's
description and each column's, per relation name. A versioned model `m` (versions 1, 2) gives the
relations `m_v1`, `m_v2` and the pointer view `m` (latest version); a version's columns follow its
`include`/`exclude` and its own column entries override the model's."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml


@dataclass(frozen=True)
class RelationDocs:
    description: str = ""
    columns: dict[str, str] = field(default_factory=dict)


def _text(value) -> str:
    return " ".join(str(value or "").split())


def _columns(entries) -> dict[str, str]:
    return {c["name"]: _text(c.get("description")) for c in entries or [] if isinstance(c, dict) and "name" in c}


def model_docs(dbt_project: Path, folder: str = "models") -> dict[str, RelationDocs]:
    """{relation name: docs} for every model declared in a YAML file under `<dbt_project>/<folder>`."""
    out: dict[str, RelationDocs] = {}
    for path in sorted((dbt_project / folder).rglob("*.yml")):
        data = yaml.safe_load(path.read_text()) or {}
        for model in data.get("models") or []:
            if not isinstance(model, dict) or "name" not in model:
                continue
            name, description = model["name"], _text(model.get("description"))
            base = _columns(model.get("columns"))
            versions = model.get("versions") or []
            if not versions:
                out[name] = RelationDocs(description, base)
                continue
            for version in versions:
                cols = dict(base)
                own = []
                for entry in version.get("columns") or []:
                    if isinstance(entry, dict) and "include" in entry:
                        include = entry.get("include")
                        keep = set(base) if include in ("all", "*") else set(include or [])
                        cols = {k: v for k, v in base.items() if k in keep and k not in set(entry.get("exclude") or [])}
                    else:
                        own.append(entry)
                cols.update(_columns(own))
                docs = RelationDocs(description, cols)
                out[f"{name}_v{version['v']}"] = docs
                if str(version["v"]) == str(model.get("latest_version", max(v["v"] for v in versions))):
                    out[name] = docs
    return out
