"""The JSON Schema of the estate file, generated from the typed model (`python -m pipelines.config.schema`).

Editors and CI tools can validate `reporting.yaml` with it (e.g. a `# yaml-language-server: $schema=`
line). The loader validates with the model itself, so the two cannot disagree: a unit test checks that
the committed `estate.schema.json` is what this module generates and that the bundled file passes it.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

from pipelines.config.model import NAME_PATTERN, Estate

SCHEMA_FILE = Path(__file__).with_name("estate.schema.json")


def estate_file_schema() -> dict[str, Any]:
    """The schema of the file as written: `services` is a mapping keyed by service name, and the keys
    the loader fills (`path`, a service's `name`) are not part of it."""
    schema = copy.deepcopy(Estate.model_json_schema(mode="validation"))
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Estate file of the CDC reporting database (reporting.yaml)"
    props = schema["properties"]
    props.pop("path")
    # keys the loader fills or defaults are optional in the file
    defaulted = {"path", "state_dir", "contracts", "dbt_project", "dagster"}
    schema["required"] = [r for r in schema["required"] if r not in defaulted]
    dagster = schema["$defs"]["Dagster"]
    dagster["required"] = [r for r in dagster.get("required", []) if r != "home"]
    if not dagster["required"]:
        dagster.pop("required")
    props["services"] = {
        "type": "object", "minProperties": 1, "propertyNames": {"pattern": NAME_PATTERN},
        "additionalProperties": {"$ref": "#/$defs/Service"},
        "description": "Source services by name (the name is the Debezium topic prefix).",
    }
    service = schema["$defs"]["Service"]
    service["properties"].pop("name")
    service["required"] = [r for r in service["required"] if r != "name"]
    return schema


def render() -> str:
    return json.dumps(estate_file_schema(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    if "--check" in argv:
        if SCHEMA_FILE.read_text() != render():
            print(f"stale: {SCHEMA_FILE} (run `python -m pipelines.config.schema`)")
            return 1
        return 0
    SCHEMA_FILE.write_text(render())
    print(f"wrote {SCHEMA_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
