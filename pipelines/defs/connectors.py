"""Connector assets: one per service of the estate (its Debezium connector: registration + health).

Materializing a connector asset registers (or updates, idempotent PUT) the service's connector, as its
connector file completed from the estate (`pipelines.connect.client.estate_connectors`), on Kafka
Connect and waits until the connector and its tasks are RUNNING. The `connector_running` check reads
the live state; the connector health sensor reports the same check whenever the state changes, with
Connect's stack trace when something failed.
"""


import dagster as dg

from pipelines.config.model import Estate, Service
from pipelines.connect.client import ConnectorState, estate_connectors
from pipelines.defs.resources import ReportingResource

CONNECTOR_CHECK = "connector_running"


def connector_asset_key(service: str) -> dg.AssetKey:
    return dg.AssetKey(["connectors", service])


def connector_services(estate: Estate) -> list[str]:
    """The estate's services, each captured by its own connector."""
    return list(estate.service_names)


def connector_specs(estate: Estate) -> dict[str, dict]:
    """Service name → its connector config as registered (the file completed from the estate)."""
    return dict(zip(estate.service_names, estate_connectors(estate), strict=True))


def connector_name(estate: Estate, service: str) -> str:
    return connector_specs(estate)[service]["name"]


def _shown_path(estate: Estate, service: Service) -> str:
    """The connector file as the estate names it (relative to the estate file when inside its folder)."""
    try:
        return str(service.connector.relative_to(estate.root))
    except ValueError:
        return str(service.connector)


def connector_asset_spec(estate: Estate, service: Service, spec: dict) -> dg.AssetSpec:
    config = spec["config"]
    name = service.name
    return dg.AssetSpec(
        key=connector_asset_key(name),
        group_name=f"{name}_service",
        description=(f"Debezium connector `{spec['name']}` ({config.get('connector.class', '?')}) on Kafka Connect: "
                     f"captures {config.get('table.include.list', 'its tables')} of the {name} database "
                     f"into topics `{config.get('topic.prefix', name)}.*`."),
        owners=[f"team:{name}"],
        kinds={"debezium", "kafka", service.engine},
        tags={"layer": "connector"},
        metadata={"connector": spec["name"], "connector_class": config.get("connector.class", ""),
                  "topic_prefix": config.get("topic.prefix", ""),
                  "tables": config.get("table.include.list", ""),
                  "file": _shown_path(estate, service)},
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


def build_connector_defs(estate: Estate) -> tuple[dg.AssetsDefinition | None, dg.AssetChecksDefinition | None]:
    """The connector multi-asset and its check, one spec per service of `estate` (read at load)."""
    specs = connector_specs(estate)
    if not specs:
        return None, None

    @dg.multi_asset(specs=[connector_asset_spec(estate, estate.service(s), spec) for s, spec in specs.items()],
                    name="register_connectors", can_subset=True,
                    description="Register each service's connector (its connector file completed from the estate) "
                                "on Kafka Connect and wait for RUNNING.")
    def register_connectors(context: dg.AssetExecutionContext, reporting: ReportingResource):
        settings = reporting.settings()
        client = reporting.connect_client(settings)
        fresh_specs = connector_specs(settings.estate)  # the files as they are now, not as they were at load
        for service in specs:
            if connector_asset_key(service) not in context.selected_asset_keys:
                continue
            fresh = fresh_specs.get(service)
            if fresh is None:
                raise dg.Failure(f"{settings.estate.path} no longer declares service {service!r} "
                                 "(reload the code location)")
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
