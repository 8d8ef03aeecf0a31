"""Strimzi's CRD schemas, offline: the OpenAPI schema of each custom resource the deployment renders, for
Strimzi 1.2.0 (API `v1`) and 0.48.0 (API `v1beta2`), stored in strimzi-crd-schemas.json.gz.

No PyPI package ships them (kubernetes-validate has the core Kubernetes kinds only), so the file is cut
from Strimzi's installation files (`packaging/install/cluster-operator/04x-Crd-*.yaml` of the
strimzi/strimzi-kafka-operator repository, Apache-2.0): each version's `openAPIV3Schema`, without
`description`s and `status`. Regenerate from a clone of that repository:

    python -m tests.unit.deploy.strimzi_schemas /path/to/strimzi-kafka-operator

`validator(kind, api)` validates like `kubectl apply` (server-side field validation is strict by default):
an object schema (`type: object` with `properties`) that does not preserve unknown fields rejects
properties it does not declare; `oneOf` branches only say which properties are required.
"""

from __future__ import annotations

import copy
import gzip
import json
import subprocess
import sys
from pathlib import Path

import jsonschema

SCHEMAS = Path(__file__).with_name("strimzi-crd-schemas.json.gz")
SOURCES = {"v1": "1.2.0", "v1beta2": "0.48.0"}
CRDS = ("040-Crd-kafka", "041-Crd-kafkaconnect", "043-Crd-kafkatopic", "044-Crd-kafkauser",
        "045-Crd-kafkanodepool", "047-Crd-kafkaconnector")


def load() -> dict[str, dict]:
    """{"Kind/api": schema}."""
    return json.loads(gzip.decompress(SCHEMAS.read_bytes()))


def _strict(schema):
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if (out.get("type") == "object" and "properties" in out and "additionalProperties" not in out
                and not out.get("x-kubernetes-preserve-unknown-fields")):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


def validator(schemas: dict[str, dict], kind: str, api: str) -> jsonschema.Validator:
    schema = copy.deepcopy(schemas[f"{kind}/{api}"])
    schema["properties"].setdefault("apiVersion", {"type": "string"})
    schema["properties"].setdefault("kind", {"type": "string"})
    schema["properties"].setdefault("metadata", {"type": "object"})
    return jsonschema.Draft7Validator(_strict(schema))


def _strip(node):
    if isinstance(node, dict):
        return {k: _strip(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


def generate(strimzi_repo: Path) -> dict[str, dict]:  # pragma: no cover - maintenance tool
    import yaml

    out = {}
    for api, tag in SOURCES.items():
        for crd in CRDS:
            text = subprocess.check_output(["git", "-C", str(strimzi_repo), "show",
                                            f"{tag}:packaging/install/cluster-operator/{crd}.yaml"], text=True)
            doc = yaml.safe_load(text)
            for version in doc["spec"]["versions"]:
                if version["name"] == api:
                    schema = _strip(version["schema"]["openAPIV3Schema"])
                    schema["properties"].pop("status", None)
                    out[f"{doc['spec']['names']['kind']}/{api}"] = schema
    return out


if __name__ == "__main__":  # pragma: no cover
    data = json.dumps(generate(Path(sys.argv[1])), sort_keys=True, separators=(",", ":")).encode()
    SCHEMAS.write_bytes(gzip.compress(data, mtime=0))
    print(f"wrote {SCHEMAS} ({len(data):,} bytes of JSON)")
