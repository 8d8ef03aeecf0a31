"""Connector assets: one per connectors/<service>/connector.json (registration + health).

Materializing a connector asset registers (or updates, idempotent PUT) its config on Kafka Connect
and waits until the connector and its tasks are RUNNING. The `connector_running` check reads the
live state; the connector health sensor reports the same check whenever the state changes, with
Connect's stack trace when something failed.
"""


from pathlib import Path

import dagster as dg

from pipelines.defs.resources import ReportingResource
from pipelines.stack.connect_api import ConnectorState, connector_files, load_connector

CONNECTOR_CHECK = "connector_running"


def connector_asset_key(service: str) -> dg.AssetKey:
    return dg.AssetKey(["connectors", service])


def connector_services(root: Path | None = None) -> list[str]:
    """Services that have a connectors/<service>/connector.json."""
    return [p.parent.name for p in connector_files(root)]


def connector_name(service: str) -> str:
    return connector_spec_file(service)["name"]


def connector_spec_file(service: str) -> dict:
    from pipelines.settings import REPO_ROOT

    return load_connector(REPO_ROOT / "connectors" / service / "connector.json")


def connector_asset_spec(service: str, spec: dict) -> dg.AssetSpec:
    config = spec["config"]
    engine = "mariadb" if "mariadb" in config.get("connector.class", "").lower() else "postgresql"
    return dg.AssetSpec(
        key=connector_asset_key(service),
        group_name=f"{service}_service",
        description=(f"Debezium connector `{spec['name']}` ({config.get('connector.class', '?')}) on Kafka Connect: "
                     f"captures {config.get('table.include.list', 'its tables')} of the {service} database "
                     f"into topics `{config.get('topic.prefix', service)}.*`."),
        owners=[f"team:{service}"],
        kinds={"debezium", "kafka", engine},
        tags={"layer": "connector"},
        metadata={"connector": spec["name"], "connector_class": config.get("connector.class", ""),
                  "topic_prefix": config.get("topic.prefix", ""),
                  "tables": config.get("table.include.list", ""),
                  "file": f"connectors/{service}/connector.json"},
    )


def state_metadata(st: ConnectorState) -> dict:
    meta: dict = {"state": st.state, "tasks": ", ".join(f"{i}:{s}" for i, s in st.tasks) or "none"}
    if st.trace.strip():
        meta["trace"] = dg.MetadataValue.md(f"```\n{st.trace.strip()[:8000]}\n```")
    return meta


def state_description(st: ConnectorState) -> str:
    if st.running:
        return f"{st.name}: RUNNING with {len(st.tasks)} task(s)"
    if st.state == "MISSING":
        return f"{st.name}: not registered on Kafka Connect (materialize the connector asset)"
    first = st.trace.strip().splitlines()[0] if st.trace.strip() else "no trace"
    tasks = ", ".join(f"task {i} {s}" for i, s in st.tasks) or "no tasks"
    return f"{st.name}: {st.state} ({tasks}): {first}"[:1000]


def connector_check_evaluation(service: str, st: ConnectorState) -> dg.AssetCheckEvaluation:
    return dg.AssetCheckEvaluation(asset_key=connector_asset_key(service), check_name=CONNECTOR_CHECK,
                                   passed=st.running, metadata=state_metadata(st),
                                   description=state_description(st))


def unreachable_state(name: str, error: Exception) -> ConnectorState:
    return ConnectorState(name, "UNREACHABLE", (), str(error))


def build_connector_defs() -> tuple[dg.AssetsDefinition | None, dg.AssetChecksDefinition | None]:
    specs = {p.parent.name: load_connector(p) for p in connector_files()}
    if not specs:
        return None, None

    @dg.multi_asset(specs=[connector_asset_spec(s, spec) for s, spec in specs.items()], name="register_connectors",
                    can_subset=True,
                    description="Register connectors/<service>/connector.json on Kafka Connect and wait for RUNNING.")
    def register_connectors(context: dg.AssetExecutionContext, reporting: ReportingResource):
        client = reporting.connect_client()
        for service in specs:
            if connector_asset_key(service) not in context.selected_asset_keys:
                continue
            fresh = connector_spec_file(service)  # the file as it is now, not as it was at load
            client.apply(fresh)
            st = client.wait_running(fresh["name"], timeout=180)
            context.log.info(state_description(st))
            yield dg.MaterializeResult(asset_key=connector_asset_key(service), metadata=state_metadata(st))

    @dg.multi_asset_check(
        specs=[dg.AssetCheckSpec(CONNECTOR_CHECK, asset=connector_asset_key(s),
                                 description="The connector and all its tasks are RUNNING on Kafka Connect.")
               for s in specs],
        name="connectors_running", can_subset=True)
    def connectors_running(context: dg.AssetCheckExecutionContext, reporting: ReportingResource):
        client = reporting.connect_client()
        for service, spec in specs.items():
            key = dg.AssetCheckKey(connector_asset_key(service), CONNECTOR_CHECK)
            if key not in context.selected_asset_check_keys:
                continue
            try:
                st = client.status(spec["name"])
            except Exception as exc:  # noqa: BLE001 - Connect down is a failed check, not a crash
                st = unreachable_state(spec["name"], exc)
            yield dg.AssetCheckResult(asset_key=connector_asset_key(service), check_name=CONNECTOR_CHECK,
                                      passed=st.running, metadata=state_metadata(st),
                                      description=state_description(st))

    return register_connectors, connectors_running
