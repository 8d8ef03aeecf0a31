"""contracts.lock: the published state of every contract, and the check / publish workflow.

The lock is deterministic JSON (sorted keys, contracts sorted by table and major) holding, per
table and major, the normalised contract content the compatibility rules need plus its sha256.
`check` compares the working tree with it; `publish` is the only writer and refuses any breaking
change inside a published major. Never edit the lock by hand: a hash mismatch is an error.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from pipelines.contract.compat import Change, diff
from pipelines.contract.model import Column, Contract, ContractError, default_root, load_contracts

LOCK_NAME = "contracts.lock"
LOCK_FORMAT = 1
_ABOUT = "Published reporting contracts. Written by `reporting contract publish`; never edit by hand."


class PublishRefused(Exception):
    """publish found breaking changes inside a major version; the lock was not touched."""

    def __init__(self, changes: list[Change]) -> None:
        self.changes = [c for c in changes if c.breaking]
        first = self.changes[0]
        super().__init__(
            f"publish refused: {len(self.changes)} breaking change(s) inside a published major, first "
            f"[{first.rule}] {first.message}; publish it as a new major instead (copy v{first.major}.yaml "
            f"to v{first.major + 1}.yaml)"
        )


def lock_path(root: Path | str | None = None) -> Path:
    """The lock file of a contract folder (default: the repo's reporting_schema/contracts.lock)."""
    return (Path(root) if root is not None else default_root()) / LOCK_NAME


def contract_to_dict(contract: Contract) -> dict[str, Any]:
    """The normalised content of `contract` stored in the lock (everything the rules compare)."""
    return {
        "table": contract.table,
        "major": contract.major,
        "version": contract.version,
        "owner_service": contract.owner_service,
        "description": contract.description,
        "grain": contract.grain,
        "primary_key": list(contract.primary_key),
        "delete_semantics": contract.delete_semantics,
        "freshness_seconds": contract.freshness_seconds,
        "status": contract.status,
        "deprecation_date": contract.deprecation_date.isoformat() if contract.deprecation_date else None,
        "columns": [
            {
                "name": c.name,
                "logical_type": c.logical_type,
                "physical_type": c.physical_type,
                "base_type": c.base_type,
                "length": c.length,
                "precision": c.precision,
                "scale": c.scale,
                "required": c.required,
                "primary_key": c.primary_key,
                "classification": c.classification,
                "description": c.description,
                "enum": list(c.enum) if c.enum is not None else None,
            }
            for c in contract.columns
        ],
    }


def contract_from_dict(data: dict[str, Any], path: Path | None = None) -> Contract:
    """Inverse of contract_to_dict (KeyError/TypeError/ValueError on malformed data)."""
    columns = tuple(
        Column(**{**col, "enum": tuple(col["enum"]) if col["enum"] is not None else None}) for col in data["columns"]
    )
    date = data["deprecation_date"]
    return Contract(
        **{k: v for k, v in data.items() if k not in ("columns", "primary_key", "deprecation_date")},
        primary_key=tuple(data["primary_key"]),
        columns=columns,
        deprecation_date=dt.date.fromisoformat(date) if date else None,
        path=path,
    )


def content_hash(data: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of a contract_to_dict() result."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def render_lock(contracts: list[Contract]) -> str:
    """The lock file text for `contracts` (byte-for-byte deterministic)."""
    entries = []
    for c in sorted(contracts, key=lambda c: (c.table, c.major)):
        data = contract_to_dict(c)
        entries.append({"table": c.table, "major": c.major, "sha256": content_hash(data), "contract": data})
    body = {"about": _ABOUT, "format": LOCK_FORMAT, "contracts": entries}
    return json.dumps(body, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def read_lock(path: Path | str) -> list[Contract]:
    """The published contracts recorded in the lock at `path`; an absent lock means nothing is published."""
    path = Path(path)
    if not path.exists():
        return []
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        line = getattr(exc, "lineno", None)
        raise ContractError(f"unreadable lock file: {exc}", path=path, line=line) from exc
    if not isinstance(body, dict) or body.get("format") != LOCK_FORMAT:
        raise ContractError(f"unknown lock format (expected format {LOCK_FORMAT})", path=path)
    contracts = []
    for i, entry in enumerate(body.get("contracts") or []):
        name = f"{entry.get('table')}_v{entry.get('major')}" if isinstance(entry, dict) else f"contracts[{i}]"
        try:
            data = entry["contract"]
            if content_hash(data) != entry["sha256"]:
                raise ContractError(f"{name}: content hash mismatch (the lock is written by publish, never by hand)",
                                    path=path)
            contract = contract_from_dict(data, path)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ContractError(f"{name}: malformed lock entry ({exc.__class__.__name__}: {exc})", path=path) from exc
        if (contract.table, contract.major) != (entry.get("table"), entry.get("major")):
            raise ContractError(f"{name}: entry does not match its contract", path=path)
        contracts.append(contract)
    return contracts


def check(root: Path | str | None = None, *, today: dt.date | None = None) -> list[Change]:
    """Changes from the lock (published) to the working tree. Any breaking one must fail CI.

    An empty list means the lock is up to date; compatible changes mean `publish` should be run.
    """
    return diff(read_lock(lock_path(root)), load_contracts(root), today=today)


def publish(root: Path | str | None = None, *, today: dt.date | None = None) -> list[Change]:
    """Record the working tree in the lock and return what changed.

    Raises PublishRefused, leaving the lock untouched, when any change is breaking inside a
    published major: a consumer-visible break must ship as a new major table instead.
    """
    root = Path(root) if root is not None else default_root()
    contracts = load_contracts(root)
    changes = diff(read_lock(lock_path(root)), contracts, today=today)
    if any(c.breaking for c in changes):
        raise PublishRefused(changes)
    text = render_lock(contracts)
    target = lock_path(root)
    fd, tmp = tempfile.mkstemp(prefix=".contracts.lock.", dir=root)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; the lock is a normal, committed file
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return changes
