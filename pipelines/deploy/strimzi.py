"""Strimzi custom resources of the estate: Kafka (KRaft, node pools), Kafka Connect with the Debezium
plugins, one KafkaConnector per service, the topics the product needs, and the SCRAM user. Pure.

API version: `kafka.strimzi.io/v1` (served by Strimzi 0.49 and later; the only one from Strimzi 1.0 on)
or `v1beta2` for Strimzi up to 0.48. The two differ here only in where Kafka Connect's group id and
internal topics go (`spec.groupId`... in v1, `spec.config.group.id`... in v1beta2).
"""

from __future__ import annotations

import hashlib
import re

from pipelines.deploy.secrets import Mount

STRIMZI_GROUP = "kafka.strimzi.io"
API_VERSIONS = ("v1", "v1beta2")

KAFKA_VERSION = "4.3.0"
"""Kafka of the local stack (connectors/pom.xml `kafka.version`); Strimzi 1.1 and later run it."""

DEBEZIUM_PLUGINS = {
    # engine: (plugin name, Maven artifact, version as in connectors/pom.xml, sha512 of the -plugin.tar.gz)
    "postgresql": ("debezium-postgres", "debezium-connector-postgres", "3.6.1.Final",
                   "774f6854a6c1c9a7ad3bdb6ddd367e9479a0b80e511ea27fc361320a955f9bf57a72393ff0e045b868b63589e7e16c"
                   "27266cda296d9b1419bb071e914ee4d212"),
    "mariadb": ("debezium-mariadb", "debezium-connector-mariadb", "3.5.0.Final",
                "94309fdfdb9744b586f3a0825ac48d05d241bb79b4218cedb42c04831e4844262bf26bcfa32fd4a60551614ddcfc57b5b"
                "5a1a4a9dd26a85341d7623cda883de1"),
}
"""The connector plugins Strimzi downloads into the Connect image it builds (checksums verified by the build)."""

MAVEN_CENTRAL = "https://repo1.maven.org/maven2"


def plugin_url(artifact: str, version: str) -> str:
    return f"{MAVEN_CENTRAL}/io/debezium/{artifact}/{version}/{artifact}-{version}-plugin.tar.gz"


def _meta(name: str, namespace: str, labels: dict, **extra) -> dict:
    return {"name": name, "namespace": namespace, "labels": dict(labels), **extra}


def listener(protocol: str) -> dict:
    """The internal listener the estate's `kafka.security.protocol` talks to (SASL = SCRAM-SHA-512)."""
    tls = protocol in ("SSL", "SASL_SSL")
    out = {"name": "tls" if tls else "plain", "port": 9093 if tls else 9092, "type": "internal", "tls": tls}
    if protocol.startswith("SASL_"):
        out["authentication"] = {"type": "scram-sha-512"}
    return out


def kafka_resources(*, api: str, name: str, namespace: str, labels: dict, kafka_version: str, replicas: int,
                    storage: str, controller_storage: str, dedicated_controllers: bool, protocol: str,
                    partitions: int) -> list[dict]:
    """The KafkaNodePool(s) and the Kafka cluster: KRaft, `replicas` brokers and as many controllers,
    replication factor 3 (or `replicas` when smaller) and min.insync.replicas one less."""
    api_version = f"{STRIMZI_GROUP}/{api}"
    pool_labels = {**labels, "strimzi.io/cluster": name}
    rf = min(3, replicas)
    min_isr = max(1, rf - 1)

    def pool(pool_name: str, roles: list[str], size: str) -> dict:
        return {"apiVersion": api_version, "kind": "KafkaNodePool",
                "metadata": _meta(pool_name, namespace, pool_labels),
                "spec": {"replicas": replicas, "roles": roles,
                         "storage": {"type": "jbod", "volumes": [
                             {"id": 0, "type": "persistent-claim", "size": size, "deleteClaim": False,
                              "kraftMetadata": "shared"}]}}}

    if dedicated_controllers:
        pools = [pool("controllers", ["controller"], controller_storage), pool("brokers", ["broker"], storage)]
    else:
        pools = [pool("dual-role", ["controller", "broker"], storage)]
    kafka = {
        "apiVersion": api_version, "kind": "Kafka",
        "metadata": _meta(name, namespace, labels),
        "spec": {
            "kafka": {
                "version": kafka_version,
                "listeners": [listener(protocol)],
                "config": {
                    "default.replication.factor": rf,
                    "min.insync.replicas": min_isr,
                    "offsets.topic.replication.factor": rf,
                    "transaction.state.log.replication.factor": rf,
                    "transaction.state.log.min.isr": min_isr,
                    "num.partitions": partitions,
                },
            },
            "entityOperator": {"topicOperator": {}, "userOperator": {}},
        },
    }
    return [*pools, kafka]


def kafka_connect(*, api: str, name: str, namespace: str, labels: dict, kafka_version: str, replicas: int,
                  bootstrap: str, protocol: str, kafka_cluster: str, output_image: str, push_secret: str | None,
                  env: list[dict], mounts: list[Mount], scram: tuple[str, str, str] | None) -> dict:
    """Kafka Connect built by Strimzi with the Debezium plugins, the `env` and `dir` config providers
    (the connectors' password placeholders), the secrets as env/volumes from the Kubernetes Secret, and
    connectors managed as KafkaConnector resources. `scram` = (user, Secret name, key)."""
    group = {"groupId": f"{name}-connect", "configStorageTopic": f"{name}-connect-configs",
             "offsetStorageTopic": f"{name}-connect-offsets", "statusStorageTopic": f"{name}-connect-status"}
    config = {
        "config.providers": "env,dir",
        "config.providers.env.class": "org.apache.kafka.common.config.provider.EnvVarConfigProvider",
        "config.providers.dir.class": "org.apache.kafka.common.config.provider.DirectoryConfigProvider",
        # -1: the broker's default.replication.factor
        "config.storage.replication.factor": -1,
        "offset.storage.replication.factor": -1,
        "status.storage.replication.factor": -1,
    }
    spec: dict = {"version": kafka_version, "replicas": replicas, "bootstrapServers": bootstrap}
    if api == "v1":
        spec.update(group)
    else:  # v1beta2 (Strimzi <= 0.48): the same settings as worker configuration
        config = {"group.id": group["groupId"], "config.storage.topic": group["configStorageTopic"],
                  "offset.storage.topic": group["offsetStorageTopic"],
                  "status.storage.topic": group["statusStorageTopic"], **config}
    if protocol in ("SSL", "SASL_SSL"):
        spec["tls"] = {"trustedCertificates": [{"secretName": f"{kafka_cluster}-cluster-ca-cert", "pattern": "*.crt"}]}
    if scram is not None:
        user, secret, key = scram
        spec["authentication"] = {"type": "scram-sha-512", "username": user,
                                  "passwordSecret": {"secretName": secret, "password": key}}
    spec["config"] = config
    output = {"type": "docker", "image": output_image}
    if push_secret:
        output["pushSecret"] = push_secret
    spec["build"] = {"output": output, "plugins": [
        {"name": plugin, "artifacts": [{"type": "tgz", "url": plugin_url(artifact, version), "sha512sum": sha}]}
        for plugin, artifact, version, sha in DEBEZIUM_PLUGINS.values()]}
    container: dict = {}
    if env:
        container["env"] = env
    if mounts:
        container["volumeMounts"] = [m.mount_spec() for m in mounts]
        spec["template"] = {"pod": {"volumes": [m.volume_spec() for m in mounts]}, "connectContainer": container}
    elif container:
        spec["template"] = {"connectContainer": container}
    return {"apiVersion": f"{STRIMZI_GROUP}/{api}", "kind": "KafkaConnect",
            "metadata": _meta(name, namespace, labels, annotations={"strimzi.io/use-connector-resources": "true"}),
            "spec": spec}


def kafka_connector(*, api: str, connector: dict, connect_cluster: str, namespace: str, labels: dict) -> dict:
    """One service's connector, its config exactly as `reporting connectors apply` registers it (passwords
    are config-provider placeholders). Strimzi restarts a failed connector or task (autoRestart)."""
    config = dict(connector["config"])
    cls = config.pop("connector.class")
    tasks = int(config.pop("tasks.max", 1))
    return {"apiVersion": f"{STRIMZI_GROUP}/{api}", "kind": "KafkaConnector",
            "metadata": _meta(connector["name"], namespace, {**labels, "strimzi.io/cluster": connect_cluster}),
            "spec": {"class": cls, "tasksMax": tasks, "autoRestart": {"enabled": True}, "state": "running",
                     "config": config}}


def kafka_topic(*, api: str, topic: str, kafka_cluster: str, namespace: str, labels: dict, partitions: int,
                replicas: int, config: dict | None = None) -> dict:
    spec: dict = {"topicName": topic, "partitions": partitions, "replicas": replicas}
    if config:
        spec["config"] = config
    return {"apiVersion": f"{STRIMZI_GROUP}/{api}", "kind": "KafkaTopic",
            "metadata": _meta(topic_resource_name(topic), namespace, {**labels, "strimzi.io/cluster": kafka_cluster}),
            "spec": spec}


def kafka_user(*, api: str, user: str, kafka_cluster: str, namespace: str, labels: dict, secret_name: str,
               key: str) -> dict:
    """The SCRAM-SHA-512 user of the estate's `kafka.security`, its password taken from the Kubernetes Secret."""
    return {"apiVersion": f"{STRIMZI_GROUP}/{api}", "kind": "KafkaUser",
            "metadata": _meta(user, namespace, {**labels, "strimzi.io/cluster": kafka_cluster}),
            "spec": {"authentication": {"type": "scram-sha-512", "password": {
                "valueFrom": {"secretKeyRef": {"name": secret_name, "key": key}}}}}}


_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


def topic_resource_name(topic: str) -> str:
    """A KafkaTopic's metadata.name for `topic`: the topic itself when it is a valid Kubernetes name,
    else a lower-case form with a short hash (so `_reporting.x` and `reporting.x` never collide)."""
    if _DNS_SUBDOMAIN.match(topic):
        return topic
    slug = re.sub(r"[^a-z0-9.-]+", "-", topic.lower()).strip("-.")[:200] or "topic"
    return f"{slug}-{hashlib.sha1(topic.encode()).hexdigest()[:8]}"
