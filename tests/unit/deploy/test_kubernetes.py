"""The Kubernetes deployment rendered from the estate: kinds, names, replicas, every connector with its
completed config, no secret value anywhere, the workers' static member ids, refusals naming the key, and
validation against Kubernetes' schemas (kubernetes-validate) and Strimzi's CRD schemas (strimzi_schemas)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from pipelines.config.load import REPO_ROOT, load_estate
from pipelines.config.secrets import SecretResolver
from pipelines.connect.client import estate_connectors
from pipelines.deploy import (
    DeployError,
    apply_instructions,
    cluster_warnings,
    instance_ids,
    render_dagster_values,
    render_kubernetes,
    render_to_folder,
    secret_keys,
)
from pipelines.deploy import strimzi as strimzi_module
from pipelines.deploy.kubernetes import dump_yaml
from pipelines.projection import load_estate_projections
from pipelines.settings import Settings
from tests.support.estate import bundled_estate, write_estate
from tests.unit.deploy.strimzi_schemas import load as load_strimzi_schemas
from tests.unit.deploy.strimzi_schemas import validator

pytestmark = pytest.mark.unit

NS = "reporting-prod"
IMAGE = "registry.example.com/acme/reporting:2.1.0"
K8S_VERSION = "1.37.0"
SASL_SSL = {"protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "username": "reporting-pipeline",
            "password": {"env": "REPORTING_KAFKA_PASSWORD"}, "ca_file": "/mnt/kafka-ca/ca.crt"}


def cluster_changes(security: dict | None = None, **more) -> dict:
    """Changes that turn a copy of the bundled estate into one for the cluster rendered here."""
    port = 9093 if security and security["protocol"].endswith("SSL") else 9092
    changes = {"reporting.backend": "postgres", "reporting.postgres.host": "reporting-pg.data.svc",
               "kafka.bootstrap_servers": [f"musiccorp-kafka-bootstrap.{NS}.svc:{port}"],
               "connect.urls": [f"http://musiccorp-connect-api.{NS}.svc:8083"]}
    for s in bundled_estate().services:
        changes[f"services.{s.name}.host"] = f"{s.name}-db.services.svc.cluster.local"
    if security:
        changes["kafka.security"] = security
    changes.update(more)
    return changes


def cluster_estate(folder: Path, security: dict | None = None, **more):
    return load_estate(write_estate(folder, **cluster_changes(security, **more)), environ={})


@pytest.fixture
def estate(tmp_path):
    return cluster_estate(tmp_path)


def by_kind(resources: list[dict], kind: str) -> list[dict]:
    return [r for r in resources if r["kind"] == kind]


def one(resources: list[dict], kind: str) -> dict:
    found = by_kind(resources, kind)
    assert len(found) == 1, f"{kind}: {len(found)} resources"
    return found[0]


# ------------------------------------------------------------------------------------------ structure
def test_kinds_names_replicas_and_namespace(estate):
    resources = render_kubernetes(estate, IMAGE, NS, 3)
    kinds = {r["kind"] for r in resources}
    assert kinds == {"KafkaNodePool", "Kafka", "KafkaTopic", "KafkaConnect", "KafkaConnector", "ConfigMap", "Service",
                     "StatefulSet", "PodDisruptionBudget"}
    assert all(r["metadata"]["namespace"] == NS for r in resources)
    names = [(r["kind"], r["metadata"]["name"]) for r in resources]
    assert len(names) == len(set(names)), "two resources of one kind share a name"

    kafka = one(resources, "Kafka")
    assert kafka["apiVersion"] == "kafka.strimzi.io/v1"
    assert kafka["metadata"]["name"] == "musiccorp"
    assert kafka["spec"]["kafka"]["version"] == strimzi_module.KAFKA_VERSION
    config = kafka["spec"]["kafka"]["config"]
    assert config["default.replication.factor"] == 3 and config["offsets.topic.replication.factor"] == 3
    assert config["min.insync.replicas"] == 2 and config["transaction.state.log.min.isr"] == 2
    assert "zookeeper" not in kafka["spec"]
    pools = {p["metadata"]["name"]: p for p in by_kind(resources, "KafkaNodePool")}
    assert {n: (p["spec"]["replicas"], p["spec"]["roles"]) for n, p in pools.items()} == {
        "controllers": (3, ["controller"]), "brokers": (3, ["broker"])}
    assert all(p["metadata"]["labels"]["strimzi.io/cluster"] == "musiccorp" for p in pools.values())

    connect = one(resources, "KafkaConnect")
    assert connect["spec"]["replicas"] == 2
    assert connect["metadata"]["annotations"]["strimzi.io/use-connector-resources"] == "true"
    assert connect["spec"]["bootstrapServers"] == f"musiccorp-kafka-bootstrap.{NS}.svc:9092"

    stream = one(resources, "StatefulSet")
    assert stream["metadata"]["name"] == "musiccorp-stream"
    assert stream["spec"]["replicas"] == 3
    assert one(resources, "Service")["spec"]["clusterIP"] == "None"
    assert stream["spec"]["serviceName"] == one(resources, "Service")["metadata"]["name"]


def test_dual_role_pool_and_smaller_cluster(estate):
    resources = render_kubernetes(estate, IMAGE, NS, 1, dedicated_controllers=False, kafka_replicas=1)
    (pool,) = by_kind(resources, "KafkaNodePool")
    assert pool["spec"]["roles"] == ["controller", "broker"] and pool["spec"]["replicas"] == 1
    config = one(resources, "Kafka")["spec"]["kafka"]["config"]
    assert config["default.replication.factor"] == 1 and config["min.insync.replicas"] == 1


def test_every_connector_is_present_with_its_completed_config(estate):
    resources = render_kubernetes(estate, IMAGE, NS, 2)
    rendered = {c["metadata"]["name"]: c for c in by_kind(resources, "KafkaConnector")}
    expected = estate_connectors(estate)
    assert set(rendered) == {c["name"] for c in expected}
    assert len(rendered) == len(estate.services)
    for spec in expected:
        kc = rendered[spec["name"]]
        assert kc["metadata"]["labels"]["strimzi.io/cluster"] == one(resources, "KafkaConnect")["metadata"]["name"]
        config = dict(spec["config"])
        assert kc["spec"]["class"] == config.pop("connector.class")
        assert kc["spec"]["tasksMax"] == int(config.pop("tasks.max", 1))
        assert kc["spec"]["config"] == config
        assert kc["spec"]["autoRestart"] == {"enabled": True}


def test_passwords_stay_config_provider_placeholders(estate):
    resources = render_kubernetes(estate, IMAGE, NS, 2)
    rendered = {c["metadata"]["name"]: c for c in by_kind(resources, "KafkaConnector")}
    env_names = {e["name"] for e in one(resources, "KafkaConnect")["spec"]["template"]["connectContainer"]["env"]}
    for service, spec in zip(estate.services, estate_connectors(estate), strict=True):
        password = rendered[spec["name"]]["spec"]["config"]["database.password"]
        assert password == service.cdc.password.connect_placeholder()
        assert re.fullmatch(r"\$\{env:[A-Za-z_][A-Za-z0-9_]*\}", password)
        assert service.cdc.password.env in env_names  # the Connect pods have the variable the placeholder names
        for key, value in rendered[spec["name"]]["spec"]["config"].items():
            if "password" in key.lower() or "jaas" in key.lower():
                assert str(value).startswith("${") or "${" in str(value), key


def test_connect_builds_the_debezium_plugins_of_connectors_pom(estate):
    props = {el.tag.split("}")[-1]: el.text for el in
             ET.parse(REPO_ROOT / "connectors" / "pom.xml").getroot().find("{*}properties")}
    connect = one(render_kubernetes(estate, IMAGE, NS, 2), "KafkaConnect")
    artifacts = {p["name"]: p["artifacts"] for p in connect["spec"]["build"]["plugins"]}
    pg, = artifacts["debezium-postgres"]
    maria, = artifacts["debezium-mariadb"]
    assert pg["type"] == maria["type"] == "tgz"
    assert pg["url"] == ("https://repo1.maven.org/maven2/io/debezium/debezium-connector-postgres/"
                         f"{props['debezium.version']}/debezium-connector-postgres-{props['debezium.version']}"
                         "-plugin.tar.gz")
    assert maria["url"].endswith(f"/debezium-connector-mariadb-{props['debezium.mariadb.version']}-plugin.tar.gz")
    assert re.fullmatch(r"[0-9a-f]{128}", pg["sha512sum"]) and re.fullmatch(r"[0-9a-f]{128}", maria["sha512sum"])
    assert strimzi_module.KAFKA_VERSION == props["kafka.version"]
    assert connect["spec"]["version"] == props["kafka.version"]
    config = connect["spec"]["config"]
    assert config["config.providers"] == "env,dir"
    assert config["config.providers.env.class"].endswith("EnvVarConfigProvider")
    assert config["config.providers.dir.class"].endswith("DirectoryConfigProvider")
    assert connect["spec"]["build"]["output"] == {"type": "docker", "image": "registry.example.com/acme/reporting-connect:2.1.0"}


def test_topics_change_topics_partitioned_debezium_topics_single(estate):
    resources = render_kubernetes(estate, IMAGE, NS, 2, partitions=12)
    topics = {t["spec"]["topicName"]: t["spec"] for t in by_kind(resources, "KafkaTopic")}
    for topic in load_estate_projections(estate):
        assert topics[topic]["partitions"] == 12 and topics[topic]["replicas"] == 3
    signal_topics = {c["config"]["signal.kafka.topic"] for c in estate_connectors(estate)
                     if "signal.kafka.topic" in c["config"]}
    assert signal_topics, "the bundled connectors use the Kafka signal channel"
    for topic in signal_topics:
        assert topics[topic]["partitions"] == 1  # Debezium reads signals from partition 0 only
    history = [t for t in topics if "schema-history" in t]
    assert all(topics[t]["partitions"] == 1 and topics[t]["config"]["retention.ms"] == -1 for t in history)
    assert topics["_reporting.dead_letters"]["partitions"] == 1
    assert one(resources, "Kafka")["spec"]["kafka"]["config"]["num.partitions"] == 12
    names = [t["metadata"]["name"] for t in by_kind(resources, "KafkaTopic")]
    assert all(re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", n) for n in names) and len(set(names)) == len(names)


# ------------------------------------------------------------------------------------------ workers
def test_workers_are_static_members_named_after_their_pods(estate):
    resources = render_kubernetes(estate, IMAGE, NS, 4)
    stream = one(resources, "StatefulSet")
    container, = stream["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    assert container["command"] == ["reporting"]
    assert args[args.index("stream") - 2:args.index("stream")] == ["--estate", f"/app/{estate.path.name}"]
    assert args[args.index("--instance-id") + 1] == "$(POD_NAME)"
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    # group.instance.id = pod name = <StatefulSet>-<ordinal>: stable across restarts, unique per ordinal
    assert instance_ids(stream["metadata"]["name"], stream["spec"]["replicas"]) == [
        "musiccorp-stream-0", "musiccorp-stream-1", "musiccorp-stream-2", "musiccorp-stream-3"]
    assert stream["spec"]["podManagementPolicy"] == "Parallel"
    assert "volumeClaimTemplates" not in stream["spec"]  # the offsets live in the reporting database


def test_workers_expose_metrics_for_prometheus(estate):
    resources = render_kubernetes(estate, IMAGE, NS, 2, service_monitor=True)
    stream = one(resources, "StatefulSet")
    container, = stream["spec"]["template"]["spec"]["containers"]
    assert container["args"][container["args"].index("--metrics-port") + 1] == "9464"
    assert container["ports"] == [{"name": "metrics", "containerPort": 9464, "protocol": "TCP"}]
    annotations = stream["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {"prometheus.io/scrape": "true", "prometheus.io/port": "9464", "prometheus.io/path": "/metrics"}
    monitor = one(resources, "ServiceMonitor")
    service = one(resources, "Service")
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"] == "metrics"
    assert all(service["metadata"]["labels"][k] == v for k, v in monitor["spec"]["selector"]["matchLabels"].items())
    assert not by_kind(render_kubernetes(estate, IMAGE, NS, 2), "ServiceMonitor")


def test_estate_file_comes_from_its_config_map(estate):
    resources = render_kubernetes(estate, IMAGE, NS, 2, project_dir="/srv/reporting")
    cm = one(resources, "ConfigMap")
    assert cm["data"] == {"reporting.yaml": estate.path.read_text()}
    stream = one(resources, "StatefulSet")
    container, = stream["spec"]["template"]["spec"]["containers"]
    path = f"/srv/reporting/{estate.path.name}"
    assert container["args"][container["args"].index("--estate") + 1] == path
    assert {"name": "REPORTING_ESTATE", "value": path} in container["env"]
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == path)
    volume = next(v for v in stream["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"])
    assert volume["configMap"]["name"] == cm["metadata"]["name"] and mount["subPath"] == "reporting.yaml"


def test_workers_get_only_the_secrets_they_use(estate):
    container, = one(render_kubernetes(estate, IMAGE, NS, 2), "StatefulSet")["spec"]["template"]["spec"]["containers"]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "secretKeyRef" in e.get("valueFrom", {})}
    writer = estate.reporting.postgres.writer.password.env
    assert refs == {writer: {"name": "musiccorp-secrets", "key": writer}}


# ------------------------------------------------------------------------------------------ secrets
def canary_settings(folder: Path, security: dict | None = None) -> tuple[Settings, dict[str, str]]:
    """Settings of a cluster estate whose every secret resolves to a unique canary value; one of them is
    a file secret (the reporting writer's password) holding a canary too."""
    secret_file = folder / "secrets" / "writer"
    secret_file.parent.mkdir(parents=True)
    path = write_estate(folder, **cluster_changes(security, **{
        "reporting.postgres.writer.password": {"file": str(secret_file)}}))
    estate = load_estate(path, environ={})
    canaries = {}
    environ = {}
    for key, ref in estate.secret_refs().items():
        value = f"CANARY-{len(canaries)}-s3cr3t-{key.replace('.', '-')}"
        canaries[key] = value
        if ref.env:
            environ[ref.env] = value
        else:
            ref.file.write_text(value)
    settings = Settings(estate=estate, secrets=SecretResolver(environ, None))
    for key, ref in estate.secret_refs().items():
        assert settings.secret(ref, key) == canaries[key]  # the canaries do resolve
    return settings, canaries


class RecordingResolver(SecretResolver):
    def __init__(self, inner: SecretResolver) -> None:
        super().__init__({}, None)
        self.inner, self.calls = inner, []

    def get(self, ref, key):
        self.calls.append(key)
        return self.inner.get(ref, key)


@pytest.mark.parametrize("security", [None, SASL_SSL], ids=["plaintext", "sasl_ssl"])
def test_no_secret_value_anywhere_and_no_secret_resolved(tmp_path, security):
    settings, canaries = canary_settings(tmp_path, security)
    recorder = RecordingResolver(settings.secrets)
    settings = Settings(estate=settings.estate, secrets=recorder)
    resources = render_kubernetes(settings, IMAGE, NS, 2, service_monitor=True)
    values = render_dagster_values(settings, IMAGE, NS, 2)
    files = render_to_folder(settings, tmp_path / "out", IMAGE, NS, 2)
    text = dump_yaml(resources) + dump_yaml([values]) + "".join(p.read_text() for p in files)
    for key, canary in canaries.items():
        assert canary not in text, f"the value of {key} is in the rendered deployment"
        assert canary.split("-s3cr3t")[0] + "-s3cr3t" not in text
    assert recorder.calls == [], "rendering resolved secrets"


def test_every_secret_is_a_reference_to_a_key_named_after_the_estate_reference(tmp_path):
    settings, _ = canary_settings(tmp_path, SASL_SSL)
    estate = settings.estate
    resources = render_kubernetes(settings, IMAGE, NS, 2)
    values = render_dagster_values(settings, IMAGE, NS, 2)
    refs: list[dict] = []

    def walk(node):
        if isinstance(node, dict):
            if "secretKeyRef" in node:
                refs.append(node["secretKeyRef"])
            if "secret" in node and isinstance(node["secret"], dict) and "items" in node["secret"]:
                refs.extend({"name": node["secret"]["secretName"], "key": i["key"]} for i in node["secret"]["items"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(resources)
    walk(values)
    expected = {ref.env or ref.file.name for ref in estate.secret_refs().values()}
    in_secret = {r["key"] for r in refs if r["name"] == "musiccorp-secrets"}
    assert in_secret == expected
    assert {k for k, _ in secret_keys(estate)} == expected
    assert {r["name"] for r in refs} == {"musiccorp-secrets", "musiccorp-cluster-ca-cert"}


def test_file_secrets_are_mounted_where_the_estate_says(tmp_path):
    settings, _ = canary_settings(tmp_path)
    writer = settings.estate.reporting.postgres.writer.password.file
    container, = one(render_kubernetes(settings, IMAGE, NS, 2), "StatefulSet")["spec"]["template"]["spec"]["containers"]
    # the secret file is under the estate's folder: in the pods that folder is the image's project folder
    rel = writer.relative_to(settings.estate.root)
    mount = next(m for m in container["volumeMounts"] if m["name"].startswith("secret-files"))
    assert mount["mountPath"] == f"/app/{rel.parent.as_posix()}" and mount["readOnly"] is True


def test_sasl_ssl_user_listener_and_connect_authentication(tmp_path):
    estate = cluster_estate(tmp_path, SASL_SSL)
    resources = render_kubernetes(estate, IMAGE, NS, 2)
    listener, = one(resources, "Kafka")["spec"]["kafka"]["listeners"]
    assert listener == {"name": "tls", "port": 9093, "type": "internal", "tls": True,
                        "authentication": {"type": "scram-sha-512"}}
    user = one(resources, "KafkaUser")
    assert user["metadata"]["name"] == "reporting-pipeline"
    assert user["spec"]["authentication"]["password"]["valueFrom"]["secretKeyRef"] == {
        "name": "musiccorp-secrets", "key": "REPORTING_KAFKA_PASSWORD"}
    connect = one(resources, "KafkaConnect")
    assert connect["spec"]["authentication"] == {"type": "scram-sha-512", "username": "reporting-pipeline",
                                                 "passwordSecret": {"secretName": "musiccorp-secrets",
                                                                    "password": "REPORTING_KAFKA_PASSWORD"}}
    assert connect["spec"]["tls"]["trustedCertificates"][0]["secretName"] == "musiccorp-cluster-ca-cert"
    mounts = connect["spec"]["template"]["connectContainer"]["volumeMounts"]
    assert {"name": "kafka-cluster-ca", "mountPath": "/mnt/kafka-ca", "readOnly": True} in mounts
    for c in by_kind(resources, "KafkaConnector"):
        assert "${env:REPORTING_KAFKA_PASSWORD}" in c["spec"]["config"]["signal.consumer.sasl.jaas.config"]
        assert c["spec"]["config"]["signal.consumer.ssl.truststore.location"] == "/mnt/kafka-ca/ca.crt"


# ------------------------------------------------------------------------------------------ refusals
@pytest.mark.parametrize(("changes", "message"), [
    ({"reporting.backend": "duckdb"}, "reporting.backend is 'duckdb'"),
    ({"services.__first__.host": "127.0.0.1"}, "host is 127.0.0.1, a loopback address"),
    ({"reporting.postgres.host": "localhost"}, "reporting.postgres.host is localhost"),
    ({"kafka.bootstrap_servers": ["127.0.0.1:59092"]}, "is not the bootstrap service"),
    ({"kafka.bootstrap_servers": [f"musiccorp-kafka-bootstrap.{NS}.svc:9093"]}, "is not the bootstrap service"),
    ({"connect.urls": ["http://127.0.0.1:58083"]}, "is not the REST API of the Kafka Connect cluster"),
    ({"kafka.security": {**SASL_SSL, "sasl_mechanism": "PLAIN"}}, "SCRAM-SHA-512 only"),
    ({"kafka.security": {**SASL_SSL, "ca_file": None}}, "kafka.security.ca_file is needed"),
    ({"kafka.security": {**SASL_SSL, "ca_file": "/etc/ssl/kafka-ca.pem"}}, "only below /mnt/"),
    ({"services.__first__.cdc.password": {"file": "/run/secrets/cdc"}}, "only below /mnt/"),
])
def test_refusals_name_the_key(tmp_path, changes, message):
    first = bundled_estate().services[0].name
    changes = {k.replace("__first__", first): v for k, v in changes.items()}
    security = changes.pop("kafka.security", None)
    if security is not None and security.get("ca_file") is None:
        security = {k: v for k, v in security.items() if k != "ca_file"}
    estate = cluster_estate(tmp_path, security, **changes)
    with pytest.raises(DeployError, match=re.escape(message)):
        render_kubernetes(estate, IMAGE, NS, 2)


def test_several_problems_first_one_and_a_count(tmp_path):
    estate = cluster_estate(tmp_path, **{"reporting.backend": "duckdb", "connect.urls": ["http://127.0.0.1:1"]})
    with pytest.raises(DeployError, match=r"reporting.backend is 'duckdb'.*\(and 1 more problem\(s\)\)"):
        render_kubernetes(estate, IMAGE, NS, 2)


def test_bad_options_refused(estate):
    with pytest.raises(DeployError, match="namespace"):
        render_kubernetes(estate, IMAGE, "Not_A_Namespace", 2)
    with pytest.raises(DeployError, match="Strimzi API"):
        render_kubernetes(estate, IMAGE, NS, 2, strimzi_api="v1alpha1")
    with pytest.raises(DeployError, match="at least 1"):
        render_kubernetes(estate, IMAGE, NS, 0)
    with pytest.raises(DeployError, match="unexpected keyword"):
        render_kubernetes(estate, IMAGE, NS, 2, wokers=3)


def test_estate_loaded_with_environment_overrides_is_refused(tmp_path):
    path = write_estate(tmp_path, **cluster_changes())
    shifted = load_estate(path, environ={"REPORTING_PORT_OFFSET": "100"})
    with pytest.raises(DeployError, match="differ from the file"):
        render_kubernetes(shifted, IMAGE, NS, 2)


def test_absolute_paths_to_estate_files_are_warned_about(estate):
    warnings = cluster_warnings(estate)  # write_estate makes them absolute
    assert any("contracts is the absolute path" in w for w in warnings)
    assert any(f"services.{estate.services[0].name}.connector is the absolute path" in w for w in warnings)


# ------------------------------------------------------------------------------------------ Dagster
def test_dagster_values_serve_the_code_location_with_the_estate(tmp_path):
    settings, _ = canary_settings(tmp_path, SASL_SSL)
    values = render_dagster_values(settings, IMAGE, NS, 2)
    deployment, = values["dagster-user-deployments"]["deployments"]
    assert values["dagster-user-deployments"]["enabled"] is True
    assert deployment["image"] == {"repository": "registry.example.com/acme/reporting", "tag": "2.1.0",
                                   "pullPolicy": "IfNotPresent"}
    assert deployment["dagsterApiGrpcArgs"] == ["--module-name", "pipelines.definitions", "--attribute", "defs",
                                                "--working-directory", "/app"]
    env = {e["name"]: e for e in deployment["env"]}
    assert env["REPORTING_ESTATE"]["value"] == f"/app/{settings.estate.path.name}"
    cdc = {s.cdc.password.env for s in settings.estate.services}
    assert not cdc & set(env), "Dagster does not need the CDC passwords"
    readers = {s.reader.password.env for s in settings.estate.services}
    assert readers <= set(env), "reconcile reads the sources as their readers"
    mounted = {m["mountPath"] for m in deployment["volumeMounts"]}
    assert f"/app/{settings.estate.path.name}" in mounted and "/mnt/kafka-ca" in mounted


@pytest.mark.parametrize(("image", "expected"), [
    ("reporting", ("reporting", "latest")),
    ("registry:5000/team/reporting:1.2", ("registry:5000/team/reporting", "1.2")),
    ("registry:5000/team/reporting", ("registry:5000/team/reporting", "latest")),
    ("reg/reporting@sha256:abc", ("reg/reporting@sha256", "abc")),
])
def test_image_split_for_the_chart(image, expected):
    from pipelines.deploy.helm import split_image

    repository, tag = split_image(image)
    assert (repository, tag) == expected
    if tag != "latest":
        assert f"{repository}:{tag}" == image  # the chart joins them back to the same image


# ------------------------------------------------------------------------------------------ schemas
@pytest.fixture(scope="module")
def strimzi_schemas():
    return load_strimzi_schemas()


@pytest.mark.parametrize("api", ["v1", "v1beta2"])
@pytest.mark.parametrize("security", [None, SASL_SSL], ids=["plaintext", "sasl_ssl"])
def test_strimzi_resources_match_the_crd_schemas(tmp_path, strimzi_schemas, api, security):
    settings, _ = canary_settings(tmp_path, security)
    resources = render_kubernetes(settings, IMAGE, NS, 2, strimzi_api=api)
    strimzi_kinds = [r for r in resources if r["apiVersion"].startswith("kafka.strimzi.io/")]
    assert {r["kind"] for r in strimzi_kinds} >= {"Kafka", "KafkaNodePool", "KafkaConnect", "KafkaConnector",
                                                   "KafkaTopic"}
    for r in strimzi_kinds:
        assert r["apiVersion"] == f"kafka.strimzi.io/{api}"
        errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
                  for e in validator(strimzi_schemas, r["kind"], api).iter_errors(r)]
        assert not errors, f"{r['kind']}/{r['metadata']['name']}: {errors[:3]}"


def test_the_strict_crd_validation_catches_a_wrong_field(strimzi_schemas, estate):
    connect = one(render_kubernetes(estate, IMAGE, NS, 2), "KafkaConnect")
    connect["spec"]["plugins"] = "not a list"
    connect["spec"]["build"]["outptu"] = {}
    messages = [e.message for e in validator(strimzi_schemas, "KafkaConnect", "v1").iter_errors(connect)]
    assert any("outptu" in m for m in messages) and any("not a list" in m for m in messages)


@pytest.mark.parametrize("security", [None, SASL_SSL], ids=["plaintext", "sasl_ssl"])
def test_core_kinds_match_the_kubernetes_schemas(tmp_path, security):
    settings, _ = canary_settings(tmp_path, security)
    resources = render_kubernetes(settings, IMAGE, NS, 2, service_monitor=True)
    core = [r for r in resources if r["apiVersion"] in ("v1", "apps/v1", "policy/v1")]
    assert {r["kind"] for r in core} == {"ConfigMap", "Service", "StatefulSet", "PodDisruptionBudget"}
    for r in core:
        kubernetes_validate.validate(r, K8S_VERSION, strict=True)


def test_the_dagster_code_server_pod_parts_match_the_kubernetes_schemas(tmp_path):
    """The chart copies env, volumes and volumeMounts into its Deployment as they are: check them in a Pod."""
    settings, _ = canary_settings(tmp_path, SASL_SSL)
    deployment, = render_dagster_values(settings, IMAGE, NS, 2)["dagster-user-deployments"]["deployments"]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "code-server"},
           "spec": {"containers": [{"name": "dagster", "image": IMAGE, "env": deployment["env"],
                                    "volumeMounts": deployment["volumeMounts"]}],
                    "volumes": deployment["volumes"]}}
    kubernetes_validate.validate(pod, K8S_VERSION, strict=True)


def test_kubernetes_validate_rejects_a_wrong_field(estate):
    stream = one(render_kubernetes(estate, IMAGE, NS, 2), "StatefulSet")
    stream["spec"]["replica"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(stream, K8S_VERSION, strict=True)


# ------------------------------------------------------------------------------------------ files
def test_written_files_load_back_and_stale_files_go(estate, tmp_path):
    out = tmp_path / "deploy"
    files = render_to_folder(estate, out, IMAGE, NS, 2, service_monitor=True)
    names = sorted(p.relative_to(out).as_posix() for p in files)
    assert names == ["10-kafka.yaml", "20-topics.yaml", "30-connect.yaml", "40-connectors.yaml", "50-stream.yaml",
                     "60-monitoring.yaml", "helm/dagster-values.yaml"]
    loaded = [d for p in files if p.parent == out for d in yaml.safe_load_all(p.read_text())]
    assert loaded == render_kubernetes(estate, IMAGE, NS, 2, service_monitor=True)
    assert yaml.safe_load((out / "helm/dagster-values.yaml").read_text()) == render_dagster_values(estate, IMAGE, NS, 2)
    assert "&id" not in (out / "50-stream.yaml").read_text()
    (out / "notes.txt").write_text("mine")
    render_to_folder(estate, out, IMAGE, NS, 2)  # without the ServiceMonitor now
    assert not (out / "60-monitoring.yaml").exists()
    assert (out / "notes.txt").read_text() == "mine"


def test_apply_instructions_name_the_secret_keys_and_the_files(estate, tmp_path):
    lines = apply_instructions(estate, tmp_path / "out", IMAGE, NS, 2)
    secret_line = next(line for line in lines if "create secret generic musiccorp-secrets" in line)
    for ref in estate.secret_refs().values():
        assert f"--from-literal={ref.env}=..." in secret_line
    assert f"kubectl -n {NS} apply -f {tmp_path / 'out'}" in lines
    assert any(line.startswith("helm upgrade --install dagster dagster/dagster") and "dagster-values.yaml" in line
               for line in lines)
