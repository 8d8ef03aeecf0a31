"""The estate's secret references → Kubernetes Secret references (never values).

Every secret of the estate lives in ONE Kubernetes Secret that the operator creates (docs/deploy.md):
an `{env: NAME}` reference is the key `NAME`, a `{file: /dir/name}` reference the key `name`. The pods
get an `{env: NAME}` secret as the environment variable NAME (`valueFrom.secretKeyRef`) and a
`{file: ...}` secret as that file, from a Secret volume mounted at its folder, so the estate file
and the connectors' config-provider placeholders (`${env:NAME}`, `${dir:/dir:name}`) work unchanged.

Each component gets only the secrets it uses:

| component | secrets |
|---|---|
| Kafka Connect | `services.*.cdc.password` (the connectors' `database.password`), `kafka.security.password` |
| pipeline workers | `reporting.postgres.writer.password`, `kafka.security.password` |
| Dagster | every secret except the CDC passwords (reconcile and status read the sources as `reader`) |
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

from pipelines.config.model import Estate, SecretRef

Component = Literal["connect", "worker", "dagster"]

STRIMZI_MOUNT_ROOT = "/mnt"
"""Strimzi mounts additional volumes into Kafka Connect only below this folder (TemplateUtils.ALLOWED_MOUNT_PATH)."""


class DeployError(ValueError):
    """The estate cannot be deployed as asked; the message names the estate key and what to change."""


@dataclass(frozen=True)
class SecretUse:
    key_path: str
    """Where the estate declares it, e.g. services.orders.cdc.password."""
    ref: SecretRef

    @property
    def secret_key(self) -> str:
        """Its key in the Kubernetes Secret."""
        return self.ref.env if self.ref.env else self.ref.file.name  # type: ignore[union-attr]


def _wanted(key_path: str, component: Component) -> bool:
    cdc = key_path.startswith("services.") and key_path.endswith(".cdc.password")
    if component == "connect":
        return cdc or key_path == "kafka.security.password"
    if component == "worker":
        return key_path in ("reporting.postgres.writer.password", "kafka.security.password")
    return not cdc


def secret_uses(estate: Estate, component: Component) -> list[SecretUse]:
    """The estate's secret references that `component` resolves, in the estate's order."""
    return [SecretUse(k, ref) for k, ref in estate.secret_refs().items() if _wanted(k, component)]


def check_secret_keys(estate: Estate) -> None:
    """Two different references must not map to the same key of the Kubernetes Secret."""
    seen: dict[str, SecretUse] = {}
    for use in secret_uses(estate, "connect") + secret_uses(estate, "dagster") + secret_uses(estate, "worker"):
        key = use.secret_key
        other = seen.setdefault(key, use)
        if other.ref != use.ref:
            raise DeployError(f"{use.key_path} ({use.ref.describe()}) and {other.key_path} ({other.ref.describe()}) "
                              f"would both be the key {key!r} of the Kubernetes Secret; rename one of them")
        if not re.fullmatch(r"[-._a-zA-Z0-9]+", key):
            raise DeployError(f"{use.key_path}: {key!r} is not a valid key of a Kubernetes Secret "
                              "(letters, digits, '-', '_', '.')")


def env_vars(uses: Iterable[SecretUse], secret_name: str) -> list[dict]:
    """`valueFrom.secretKeyRef` environment entries of the `{env: NAME}` references (one per name)."""
    out, names = [], set()
    for use in uses:
        name = use.ref.env
        if name and name not in names:
            names.add(name)
            out.append({"name": name, "valueFrom": {"secretKeyRef": {"name": secret_name, "key": name}}})
    return out


@dataclass(frozen=True)
class Mount:
    """One Secret volume mounted at a folder, holding some of its keys as files."""

    volume: str
    folder: str
    secret_name: str
    items: tuple[tuple[str, str], ...]  # (key in the Secret, file name in the folder)

    def volume_spec(self) -> dict:
        return {"name": self.volume, "secret": {"secretName": self.secret_name,
                                                "items": [{"key": k, "path": p} for k, p in self.items]}}

    def mount_spec(self) -> dict:
        return {"name": self.volume, "mountPath": self.folder, "readOnly": True}


def file_mounts(uses: Iterable[SecretUse], secret_name: str, component: Component,
                ca: tuple[str, str] | None = None,
                pod_path: Callable[[PurePosixPath], PurePosixPath] = lambda p: p) -> list[Mount]:
    """Secret volumes for the `{file: ...}` references, one per folder; `ca` = (CA file path, Secret
    holding it under `ca.crt`) adds the Kafka cluster CA at the estate's `kafka.security.ca_file`.
    `pod_path` maps a path as loaded here to the path the pod sees (a relative path in the estate file is
    relative to the estate file, which the pods read from the image's project folder).
    Kafka Connect (Strimzi) accepts mounts only below /mnt: anything else is refused with the key."""
    by_folder: dict[str, list[tuple[str, str]]] = {}
    where: dict[str, str] = {}
    for use in uses:
        if use.ref.file is None:
            continue
        path = pod_path(PurePosixPath(use.ref.file.as_posix()))
        folder = str(path.parent)
        if component == "connect" and not _below(folder, STRIMZI_MOUNT_ROOT):
            raise DeployError(f"{use.key_path}: secret file {path} is read by Kafka Connect, and Strimzi mounts "
                              f"files into Connect only below {STRIMZI_MOUNT_ROOT}/; use a path such as "
                              f"{STRIMZI_MOUNT_ROOT}/reporting-secrets/{path.name}, or an {{env: NAME}} reference")
        item = (use.secret_key, path.name)
        if item not in by_folder.setdefault(folder, []):
            by_folder[folder].append(item)
        where.setdefault(folder, use.key_path)
    mounts = [Mount(f"secret-files-{i}", folder, secret_name, tuple(items))
              for i, (folder, items) in enumerate(sorted(by_folder.items()))]
    if ca is not None:
        ca_path, ca_secret = pod_path(PurePosixPath(ca[0])), ca[1]
        folder = str(ca_path.parent)
        if component == "connect" and not _below(folder, STRIMZI_MOUNT_ROOT):
            raise DeployError(f"kafka.security.ca_file: {ca_path} is read by the connectors' Kafka clients in Kafka "
                              f"Connect, and Strimzi mounts files into Connect only below {STRIMZI_MOUNT_ROOT}/; use "
                              f"e.g. {STRIMZI_MOUNT_ROOT}/kafka-ca/ca.crt")
        if folder in by_folder:
            raise DeployError(f"kafka.security.ca_file: {ca_path} is in the folder of the secret file of "
                              f"{where[folder]}; put the CA file in a folder of its own")
        mounts.append(Mount("kafka-cluster-ca", folder, ca_secret, (("ca.crt", ca_path.name),)))
    return mounts


def _below(folder: str, root: str) -> bool:
    return folder == root or folder.startswith(root.rstrip("/") + "/")
