"""A service's connector file + the estate → the Kafka Connect config that is registered. Pure.

`connectors/<service>/connector.json` says *what* to capture (tables, excluded columns, converters,
snapshot mode); *where* (database host, port, user, Kafka brokers, client security) comes from the
estate file only, so one connector file works in every environment. The password is never a value:
it becomes the config-provider placeholder of the estate's secret reference (`${env:NAME}` or
`${dir:FOLDER:FILE}`), which the Connect worker resolves itself.
"""

from __future__ import annotations

from pathlib import Path

from pipelines.config.model import Kafka, KafkaSecurity, Service

ENDPOINT_KEYS = ("database.hostname", "database.port", "database.user", "database.password", "database.dbname",
                 "topic.prefix", "database.server.id", "schema.history.internal.kafka.bootstrap.servers",
                 "signal.kafka.bootstrap.servers")
"""Keys the estate file owns; a connector file that sets one is refused (it would silently disagree)."""

_KAFKA_CLIENT_PREFIXES = {
    "postgresql": ("signal.consumer.",),
    "mariadb": ("signal.consumer.", "schema.history.internal.producer.", "schema.history.internal.consumer."),
}


class ConnectorSpecError(ValueError):
    """A connector file that cannot be registered as it is; the message names the file and key."""


def check_spec(spec: object, path: Path) -> dict:
    """The parsed connector file, checked: {"name", "config"}, no inline password, no estate-owned key."""
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not isinstance(spec.get("config"), dict):
        raise ConnectorSpecError(f"{path}: a connector file needs 'name' (text) and 'config' (object)")
    for key, value in spec["config"].items():
        if key in ENDPOINT_KEYS:
            raise ConnectorSpecError(f"{path}: config.{key} comes from the estate file (its service entry and "
                                     "kafka section); remove it from the connector file")
        if "password" in key.lower() or "jaas" in key.lower():
            if not str(value).startswith("${"):
                raise ConnectorSpecError(f"{path}: config.{key} must come from a config provider "
                                         "(e.g. ${env:NAME}), not the file")
    return spec


def render_connector(spec: dict, service: Service, kafka: Kafka) -> dict:
    """The config to PUT for `service`: its file's capture settings + endpoints from the estate."""
    config = dict(spec["config"])
    expected = {"postgresql": "PostgresConnector", "mariadb": "MariaDbConnector"}[service.engine]
    if expected not in str(config.get("connector.class", "")):
        raise ConnectorSpecError(f"{service.connector}: connector.class {config.get('connector.class')!r} does not "
                                 f"capture a {service.engine} service (expected io.debezium...{expected})")
    config.update({
        "database.hostname": service.host,
        "database.port": str(service.port),
        "database.user": service.cdc.user,
        "database.password": service.cdc.password.connect_placeholder(),
        "topic.prefix": service.topic_prefix,
    })
    if service.engine == "postgresql":
        config["database.dbname"] = service.database
        config.setdefault("slot.name", service.slot_name)
        config.setdefault("publication.name", service.slot_name)
    else:
        config["database.server.id"] = str(service.server_id or _server_id(service.name))
        config.setdefault("database.include.list", service.database)
        config["schema.history.internal.kafka.bootstrap.servers"] = kafka.bootstrap
        config.setdefault("schema.history.internal.kafka.topic", f"_reporting.schema-history.{service.name}")
    if "kafka" in str(config.get("signal.enabled.channels", "")):
        config["signal.kafka.bootstrap.servers"] = kafka.bootstrap
        config.setdefault("signal.kafka.topic", f"_reporting.signals.{service.name}")
        config.setdefault("signal.kafka.groupId", f"reporting-signals-{service.name}")
    for prefix in _KAFKA_CLIENT_PREFIXES[service.engine]:
        config.update(kafka_client_security(kafka.security, prefix))
    for key, value in topic_creation(kafka).items():
        config.setdefault(key, value)
    return {"name": spec["name"], "config": config}


def topic_creation(kafka: Kafka) -> dict[str, str]:
    """Kafka Connect topic-creation settings for the change topics the connector creates, from the local
    cluster profile (`kafka.local_cluster`, docs/scaling.md): its partitions, replication factor and
    min.insync.replicas. {} without the profile (the broker's defaults apply). Records stay keyed by
    the primary key, so every change of one row lands in one partition, in order. A connector file
    that sets one of these keys keeps its own value."""
    lc = kafka.local_cluster
    if lc is None:
        return {}
    return {"topic.creation.default.partitions": str(lc.partitions),
            "topic.creation.default.replication.factor": str(lc.replication_factor),
            "topic.creation.default.min.insync.replicas": str(lc.min_insync_replicas)}


def kafka_client_security(sec: KafkaSecurity, prefix: str = "") -> dict[str, str]:
    """Kafka client properties (Java client names) for `sec`, each under `prefix`; {} for PLAINTEXT."""
    if sec.protocol == "PLAINTEXT":
        return {}
    props = {"security.protocol": sec.protocol}
    if sec.sasl_mechanism:
        module = ("org.apache.kafka.common.security.plain.PlainLoginModule" if sec.sasl_mechanism == "PLAIN"
                  else "org.apache.kafka.common.security.scram.ScramLoginModule")
        assert sec.password is not None
        props["sasl.mechanism"] = sec.sasl_mechanism
        props["sasl.jaas.config"] = (f'{module} required username="{sec.username}" '
                                     f'password="{sec.password.connect_placeholder()}";')
    if sec.ca_file:
        props["ssl.truststore.type"] = "PEM"
        props["ssl.truststore.location"] = str(sec.ca_file)
    return {prefix + k: v for k, v in props.items()}


def _server_id(name: str) -> int:
    """A stable MariaDB replica server id per service when the estate does not give one."""
    import zlib

    return 5400 + zlib.crc32(name.encode()) % 100_000
