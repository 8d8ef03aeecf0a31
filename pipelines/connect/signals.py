"""Re-snapshot one table: send Debezium an `execute-snapshot` signal through its Kafka signal channel.

Debezium 3.x reads signals from a Kafka topic when the connector has `kafka` in
`signal.enabled.channels` (topic `signal.kafka.topic`, default `<topic.prefix>-signal`, one
partition; the message key must equal `topic.prefix`). A *blocking* snapshot (the default) pauses
streaming while it re-reads the table and needs nothing else. An *incremental* snapshot re-reads the
table in chunks while streaming goes on and needs watermarks: a signal table in the source database
(`signal.data.collection`), or `read.only=true` (which Debezium 3.6.1's PostgreSQL connector cannot
combine with a non-transactional heartbeat.action.query: NullPointerException). Either way
the rows arrive as `op=r` events that the pipeline applies like any change (positions decide, so
nothing goes backwards); rows deleted in the source meanwhile are not deleted by a snapshot.
"""


import json
import uuid
from dataclasses import dataclass

SNAPSHOT_TYPES = ("incremental", "blocking")


class SnapshotSignalError(RuntimeError):
    """The signal cannot be sent (unknown table, connector not configured for Kafka signals)."""


@dataclass(frozen=True)
class SnapshotTarget:
    service: str
    source_tables: tuple[str, ...]
    """Debezium data-collection names, e.g. `public.orders` (PG) or `warehouse.catalog_items` (MariaDB)."""
    contract_tables: tuple[str, ...]


def resolve_target(name: str, projections) -> SnapshotTarget:
    """A contract table (`orders_v1`), a contract name (`orders`: all its majors) or a source table
    (`public.orders`) → the source table(s) to snapshot and the service whose connector reads them."""
    hits = []
    for tp in projections.values():
        targets = [t.physical_name for t in tp.targets]
        tables = {t.physical_name.rsplit("_v", 1)[0] for t in tp.targets}
        if name in targets or name in tables or name in (tp.source_table, tp.topic):
            hits.append((tp, targets))
    if not hits:
        known = sorted({t.physical_name for tp in projections.values() for t in tp.targets})
        raise SnapshotSignalError(f"no projection feeds {name!r}: nothing to snapshot (fed tables: {', '.join(known)})")
    services = {tp.service for tp, _ in hits}
    if len(services) > 1:
        raise SnapshotSignalError(f"{name!r} is fed by several services ({', '.join(sorted(services))}); name one table")
    return SnapshotTarget(services.pop(), tuple(sorted({tp.source_table for tp, _ in hits})),
                          tuple(sorted({n for _, names in hits for n in names})))


def signal_topic(config: dict) -> str:
    return config.get("signal.kafka.topic") or f"{config['topic.prefix']}-signal"


def config_problems(config: dict, snapshot_type: str) -> list[str]:
    """What the live connector config lacks for a Kafka-signalled snapshot of this type."""
    problems = []
    channels = [c.strip() for c in config.get("signal.enabled.channels", "source").split(",")]
    if "kafka" not in channels:
        problems.append("signal.enabled.channels must include 'kafka'")
    if not config.get("signal.kafka.bootstrap.servers"):
        problems.append("signal.kafka.bootstrap.servers must be set (the estate's kafka.bootstrap_servers: "
                        "register the connector again)")
    if (snapshot_type == "incremental" and str(config.get("read.only", "false")).lower() != "true"
            and not config.get("signal.data.collection")):
        problems.append("an incremental snapshot needs read.only=true (no signal table) or signal.data.collection")
    return problems


def snapshot_signal(source_tables: tuple[str, ...], snapshot_type: str, signal_id: str | None = None) -> dict:
    """The signal message value Debezium expects on its Kafka signal topic."""
    if snapshot_type not in SNAPSHOT_TYPES:
        raise SnapshotSignalError(f"snapshot type {snapshot_type!r}: expected one of {', '.join(SNAPSHOT_TYPES)}")
    return {"id": signal_id or str(uuid.uuid4()), "type": "execute-snapshot",
            "data": {"data-collections": list(source_tables), "type": snapshot_type}}


def ensure_signal_topic(bootstrap: str | dict, topic: str) -> None:
    """Create the signal topic with ONE partition if missing (Debezium reads partition 0 only), replicated
    as the cluster's `default.replication.factor` says (replication factor -1, KIP-464: one replica on a
    single broker, the cluster's usual 3 elsewhere; a signal topic on one broker of a cluster would be lost
    with it). `bootstrap`: `pipelines.kafka.security.client_config(settings)` (or a bare bootstrap string)."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    from pipelines.kafka.security import as_client_kwargs

    admin = KafkaAdminClient(**as_client_kwargs(bootstrap), request_timeout_ms=15000)
    try:
        if topic not in admin.list_topics():
            try:
                admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=-1)])
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()


def send_signal(bootstrap: str | dict, topic: str, key: str, value: dict) -> int:
    """Produce the signal (acks=all); returns its offset. `bootstrap` as for ensure_signal_topic."""
    from kafka import KafkaProducer

    from pipelines.kafka.security import as_client_kwargs

    producer = KafkaProducer(**as_client_kwargs(bootstrap), acks="all")
    try:
        meta = producer.send(topic, key=key.encode(), value=json.dumps(value).encode()).get(timeout=30)
    finally:
        producer.close()
    return meta.offset


def live_connector_config(client, name: str) -> dict:
    """The config Kafka Connect runs connector `name` with; `client`: a pipelines.connect.client.ConnectClient
    (its URL and credentials)."""
    import requests

    try:
        r = requests.get(f"{client.url}/connectors/{name}/config", auth=client.auth, timeout=15)
    except requests.RequestException as exc:
        raise SnapshotSignalError(f"Kafka Connect at {client.url} is not reachable: {exc.__class__.__name__}") from exc
    if r.status_code == 401:
        raise SnapshotSignalError(f"Kafka Connect at {client.url} refused the credentials (401): check "
                                  "connect.username and connect.password in the estate file")
    if r.status_code == 404:
        raise SnapshotSignalError(f"connector {name} is not registered on Kafka Connect (materialize its asset)")
    r.raise_for_status()
    return r.json()


def send_execute_snapshot(settings, service: str, source_tables: tuple[str, ...],
                          snapshot_type: str = "blocking") -> tuple[str, str, int]:
    """Signal `service`'s connector to snapshot `source_tables`; returns (signal id, topic, offset).

    The signal topic and key come from the connector config as the estate registers it (no Connect
    REST call), so this works wherever the pipeline reaches Kafka."""
    from pipelines.connect.client import estate_connectors
    from pipelines.kafka.security import client_config

    specs = dict(zip(settings.estate.service_names, estate_connectors(settings.estate), strict=True))
    config = specs[service]["config"]
    problems = config_problems(config, snapshot_type)
    if problems:
        raise SnapshotSignalError(f"{settings.estate.service(service).connector}: not set up for Kafka signals: "
                                  f"{'; '.join(problems)}")
    kafka = client_config(settings)
    topic = signal_topic(config)
    ensure_signal_topic(kafka, topic)
    signal = snapshot_signal(source_tables, snapshot_type)
    offset = send_signal(kafka, topic, config["topic.prefix"], signal)
    return signal["id"], topic, offset
