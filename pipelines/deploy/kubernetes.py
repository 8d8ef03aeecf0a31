"""The estate file → a Kubernetes deployment: Strimzi Kafka and Kafka Connect, the connectors, the
pipeline workers and the Dagster code location (docs/deploy.md).

`render_kubernetes` is pure apart from reading the estate's own files (the estate file for its ConfigMap,
the connector files, the projections for the change topics); it never resolves a secret: every
password stays a reference to a key of one Kubernetes Secret that the operator creates, and the
connector configs keep their config-provider placeholders. `write_kubernetes` writes the result as a
folder of YAML files for `kubectl apply -f` and the Dagster chart's values for `helm install -f`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import yaml

from pipelines.config.model import Estate
from pipelines.deploy import strimzi
from pipelines.deploy.helm import dagster_values
from pipelines.deploy.secrets import DeployError, check_secret_keys, env_vars, file_mounts, secret_uses
from pipelines.deploy.workers import estate_config_map, instance_ids, stream_resources

METRICS_PORT = 9464
CONNECT_REST_PORT = 8083
DEFAULT_WORKER_RESOURCES = {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"memory": "2Gi"}}

_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_LOOPBACK = re.compile(r"^(localhost|127\.\d+\.\d+\.\d+|::1|\[::1\]|0\.0\.0\.0)$")


@dataclass(frozen=True)
class KubernetesOptions:
    """How the estate is laid out on the cluster (every field has a command-line option)."""

    image: str
    """The product's image: `reporting` on PATH, the estate's folder (connectors, contracts, dbt project) at `project_dir`."""
    namespace: str
    workers: int = 2
    """Pipeline workers (StatefulSet replicas); more than the change topics' partitions leaves some idle."""
    name: str | None = None
    """Prefix of every resource name; default: the estate's `name` with '_' as '-'."""
    strimzi_api: str = "v1"
    """`v1` (Strimzi 0.49+, required from 1.0) or `v1beta2` (Strimzi 0.4x up to 0.48)."""
    kafka_version: str = strimzi.KAFKA_VERSION
    kafka_replicas: int = 3
    """Brokers, and controllers (KRaft): replication factor min(3, this), min.insync.replicas one less."""
    dedicated_controllers: bool = True
    """Separate controller and broker node pools (else one pool of dual-role nodes)."""
    kafka_storage: str = "100Gi"
    controller_storage: str = "20Gi"
    partitions: int = 6
    """Partitions of the change topics (and the brokers' num.partitions): the most workers that share the work."""
    connect_replicas: int = 2
    connect_image: str | None = None
    """Where Strimzi pushes the Connect image it builds; default: `<image repository>-connect:<tag>`."""
    connect_push_secret: str | None = None
    secret_name: str | None = None
    """The Kubernetes Secret holding every secret of the estate; default `<name>-secrets`."""
    project_dir: str = "/app"
    """The estate file's folder inside the image; the estate file is mounted there from its ConfigMap."""
    pull_policy: str = "IfNotPresent"
    metrics_port: int = METRICS_PORT
    service_monitor: bool = False
    """Also render a Prometheus-operator ServiceMonitor (needs its CRD on the cluster)."""
    worker_resources: dict = field(default_factory=lambda: dict(DEFAULT_WORKER_RESOURCES))
    instance_flag: str = "--instance-id"
    """The `reporting stream` option that sets the worker's group.instance.id."""
    metrics_flag: str = "--metrics-port"
    """The `reporting stream` option that serves the worker's metrics on a port."""


@dataclass(frozen=True)
class Names:
    prefix: str
    namespace: str

    @property
    def kafka(self) -> str:
        return self.prefix

    @property
    def connect(self) -> str:
        return self.prefix

    @property
    def stream(self) -> str:
        return f"{self.prefix}-stream"

    @property
    def estate_config_map(self) -> str:
        return f"{self.prefix}-estate"

    def bootstrap_hosts(self) -> set[str]:
        return _service_hosts(f"{self.kafka}-kafka-bootstrap", self.namespace)

    def connect_hosts(self) -> set[str]:
        return _service_hosts(f"{self.connect}-connect-api", self.namespace)


def _service_hosts(service: str, namespace: str) -> set[str]:
    return {service, f"{service}.{namespace}", f"{service}.{namespace}.svc", f"{service}.{namespace}.svc.cluster.local"}


def _estate_of(settings_or_estate) -> Estate:
    return settings_or_estate if isinstance(settings_or_estate, Estate) else settings_or_estate.estate


def names_for(estate: Estate, opts: KubernetesOptions) -> Names:
    prefix = opts.name or estate.name.replace("_", "-")
    if not _NAME.match(prefix):
        raise DeployError(f"resource name prefix {prefix!r}: lower-case letters, digits and '-', at most 40 "
                          "characters, starting with a letter (pass --name)")
    return Names(prefix, opts.namespace)


def cluster_problems(estate: Estate, opts: KubernetesOptions) -> list[str]:
    """What keeps this estate file from working on the cluster, one line each naming the key."""
    names = names_for(estate, opts)
    problems = []
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", opts.namespace):
        problems.append(f"namespace {opts.namespace!r} is not a valid Kubernetes namespace")
    if opts.strimzi_api not in strimzi.API_VERSIONS:
        problems.append(f"Strimzi API {opts.strimzi_api!r}: expected one of {', '.join(strimzi.API_VERSIONS)}")
    if opts.workers < 1 or opts.connect_replicas < 1 or opts.kafka_replicas < 1 or opts.partitions < 1:
        problems.append("workers, connect replicas, Kafka replicas and partitions must each be at least 1")
    if estate.reporting.backend != "postgres":
        problems.append(f"{estate.path}: reporting.backend is {estate.reporting.backend!r}; on Kubernetes the workers "
                        "and Dagster run in separate pods and a DuckDB file has one writing process: declare "
                        "reporting.postgres and select backend postgres")
    for s in estate.services:
        if _LOOPBACK.match(s.host):
            problems.append(f"{estate.path}: services.{s.name}.host is {s.host}, a loopback address; give the "
                            "address the Connect and worker pods reach the database at")
    pg = estate.reporting.postgres
    if pg is not None and _LOOPBACK.match(pg.host):
        problems.append(f"{estate.path}: reporting.postgres.host is {pg.host}, a loopback address; give the address "
                        "the pods reach the reporting PostgreSQL at")
    sec = estate.kafka.security
    port = strimzi.listener(sec.protocol)["port"]
    wanted = f"{names.kafka}-kafka-bootstrap.{opts.namespace}.svc:{port}"
    for server in estate.kafka.bootstrap_servers:
        host, _, p = server.rpartition(":")
        if host not in names.bootstrap_hosts() or int(p) != port:
            problems.append(f"{estate.path}: kafka.bootstrap_servers has {server}, which is not the bootstrap service "
                            f"of the Kafka cluster rendered here; use [{wanted}]")
            break
    url = urlsplit(estate.connect.url)
    if url.scheme != "http" or url.hostname not in names.connect_hosts() or (url.port or 80) != CONNECT_REST_PORT:
        problems.append(f"{estate.path}: connect.urls starts with {estate.connect.url}, which is not the REST API of the "
                        f"Kafka Connect cluster rendered here; use "
                        f"[http://{names.connect}-connect-api.{opts.namespace}.svc:{CONNECT_REST_PORT}]")
    if sec.protocol.startswith("SASL_") and sec.sasl_mechanism != "SCRAM-SHA-512":
        problems.append(f"{estate.path}: kafka.security.sasl_mechanism is {sec.sasl_mechanism}; Strimzi listeners "
                        "authenticate SASL clients with SCRAM-SHA-512 only")
    if sec.protocol.startswith("SASL_") and sec.username and not _DNS_SUBDOMAIN.match(sec.username):
        problems.append(f"{estate.path}: kafka.security.username {sec.username!r} cannot be a KafkaUser name "
                        "(lower-case letters, digits, '-' and '.')")
    if sec.protocol in ("SSL", "SASL_SSL") and sec.ca_file is None:
        problems.append(f"{estate.path}: kafka.security.ca_file is needed with {sec.protocol}: the brokers' "
                        f"certificates are signed by the Strimzi cluster CA (Secret {names.kafka}-cluster-ca-cert), "
                        "which the pods get at that path")
    return problems


def cluster_warnings(estate: Estate) -> list[str]:
    """Things that render but may not work: absolute paths to the estate's own files, which the pods
    look for inside the image."""
    try:
        raw = yaml.safe_load(estate.path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return []
    out = []
    for key in ("contracts", "dbt_project"):
        if isinstance(raw.get(key), str) and Path(raw[key]).is_absolute():
            out.append(f"{estate.path}: {key} is the absolute path {raw[key]}; the pods look for it inside the image "
                       "(write it relative to the estate file)")
    for name, svc in (raw.get("services") or {}).items():
        for key in ("connector", "projection"):
            value = (svc or {}).get(key)
            if isinstance(value, str) and Path(value).is_absolute():
                out.append(f"{estate.path}: services.{name}.{key} is the absolute path {value}; the pods look for it "
                           "inside the image (write it relative to the estate file)")
    return out


def _check_file_matches(estate: Estate) -> None:
    """The pods read the estate FILE without environment overrides: refuse an estate object that
    differs from it where it matters (e.g. loaded with REPORTING_BACKEND or REPORTING_PORT_OFFSET)."""
    from pipelines.config.load import load_estate

    fresh = load_estate(estate.path, environ={})
    keys = {"services", "kafka", "connect", "pipeline"}
    differ = sorted(k for k in keys if getattr(fresh, k) != getattr(estate, k))
    if fresh.reporting.backend != estate.reporting.backend or fresh.reporting.postgres != estate.reporting.postgres:
        differ.append("reporting")
    if differ:
        raise DeployError(f"{estate.path}: {', '.join(differ)} as loaded differ from the file (environment overrides "
                          "such as REPORTING_BACKEND or REPORTING_PORT_OFFSET?); the pods read the file without them: "
                          "write the values into the file")


def _raise_first(problems: list[str]) -> None:
    if problems:
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise DeployError(problems[0] + more)


@dataclass(frozen=True)
class _Plan:
    estate: Estate
    opts: KubernetesOptions
    names: Names
    labels: dict
    secret_name: str
    estate_path: str

    def pod_path(self, p: PurePosixPath) -> PurePosixPath:
        """A path as loaded here → in the pods: under the estate's folder it moves to the project folder."""
        root = PurePosixPath(self.estate.root.as_posix())
        try:
            return PurePosixPath(self.opts.project_dir) / p.relative_to(root)
        except ValueError:
            return p

    def ca(self) -> tuple[str, str] | None:
        sec = self.estate.kafka.security
        if sec.protocol in ("SSL", "SASL_SSL") and sec.ca_file is not None:
            return sec.ca_file.as_posix(), f"{self.names.kafka}-cluster-ca-cert"
        return None


def _plan(settings_or_estate, opts: KubernetesOptions) -> _Plan:
    estate = _estate_of(settings_or_estate)
    _check_file_matches(estate)
    _raise_first(cluster_problems(estate, opts))
    check_secret_keys(estate)
    names = names_for(estate, opts)
    labels = {"app.kubernetes.io/part-of": "reporting", "app.kubernetes.io/instance": names.prefix,
              "app.kubernetes.io/managed-by": "reporting-deploy"}
    return _Plan(estate, opts, names, labels, opts.secret_name or f"{names.prefix}-secrets",
                 f"{opts.project_dir.rstrip('/')}/{estate.path.name}")


def _options(image: str, namespace: str, workers: int, options: dict) -> KubernetesOptions:
    try:
        return KubernetesOptions(image=image, namespace=namespace, workers=workers, **options)
    except TypeError as exc:
        raise DeployError(f"render_kubernetes: {exc}") from exc


def render_kubernetes(settings_or_estate, image: str, namespace: str, workers: int = 2, **options) -> list[dict]:
    """Every Kubernetes resource of the estate, in apply order (options: `KubernetesOptions`).

    Raises DeployError (one line naming the estate key) when the estate cannot work on the cluster:
    a DuckDB backend, loopback addresses, Kafka/Connect addresses other than the services rendered here,
    a SASL mechanism Strimzi does not offer, secret files Connect cannot mount."""
    from pipelines.apply.runner import DEAD_LETTER_TOPIC
    from pipelines.connect.client import estate_connectors
    from pipelines.projection import load_estate_projections

    opts = _options(image, namespace, workers, options)
    plan = _plan(settings_or_estate, opts)
    estate, names, labels, api, ns = plan.estate, plan.names, plan.labels, opts.strimzi_api, opts.namespace
    sec = estate.kafka.security
    connectors = estate_connectors(estate)
    for c in connectors:
        if not _DNS_SUBDOMAIN.match(c["name"]):
            raise DeployError(f"connector {c['name']!r}: a KafkaConnector needs a lower-case name of letters, digits, "
                              "'-' and '.' (the 'name' of its connector file)")

    out = strimzi.kafka_resources(api=api, name=names.kafka, namespace=ns, labels=labels,
                                  kafka_version=opts.kafka_version, replicas=opts.kafka_replicas,
                                  storage=opts.kafka_storage, controller_storage=opts.controller_storage,
                                  dedicated_controllers=opts.dedicated_controllers, protocol=sec.protocol,
                                  partitions=opts.partitions)
    scram = None
    if sec.protocol.startswith("SASL_"):
        assert sec.password is not None and sec.username is not None
        key = next(u.secret_key for u in secret_uses(estate, "connect") if u.key_path == "kafka.security.password")
        scram = (sec.username, plan.secret_name, key)
        out.append(strimzi.kafka_user(api=api, user=sec.username, kafka_cluster=names.kafka, namespace=ns,
                                      labels=labels, secret_name=plan.secret_name, key=key))
    out += _topics(plan, connectors, sorted(load_estate_projections(estate)), DEAD_LETTER_TOPIC)

    connect_uses = secret_uses(estate, "connect")
    out.append(strimzi.kafka_connect(
        api=api, name=names.connect, namespace=ns, labels=labels, kafka_version=opts.kafka_version,
        replicas=opts.connect_replicas, bootstrap=estate.kafka.bootstrap, protocol=sec.protocol,
        kafka_cluster=names.kafka, output_image=opts.connect_image or _connect_image(opts.image),
        push_secret=opts.connect_push_secret, env=env_vars(connect_uses, plan.secret_name),
        mounts=file_mounts(connect_uses, plan.secret_name, "connect", ca=plan.ca()), scram=scram))
    out += [strimzi.kafka_connector(api=api, connector=c, connect_cluster=names.connect, namespace=ns, labels=labels)
            for c in connectors]

    out.append(estate_config_map(name=names.estate_config_map, namespace=ns, labels=labels,
                                 estate_text=estate.path.read_text()))
    worker_uses = secret_uses(estate, "worker")
    out += stream_resources(
        name=names.stream, namespace=ns, labels=labels, image=opts.image, pull_policy=opts.pull_policy,
        workers=opts.workers, estate_path=plan.estate_path, config_map=names.estate_config_map,
        env=env_vars(worker_uses, plan.secret_name),
        mounts=file_mounts(worker_uses, plan.secret_name, "worker", ca=plan.ca(), pod_path=plan.pod_path),
        metrics_port=opts.metrics_port, service_monitor=opts.service_monitor, instance_flag=opts.instance_flag,
        metrics_flag=opts.metrics_flag, resources=opts.worker_resources)
    return out


def _topics(plan: _Plan, connectors: list[dict], change_topics: list[str], dead_letter_topic: str) -> list[dict]:
    """KafkaTopics: the change topics with `partitions`; single-partition topics Debezium needs that way
    (schema history, Kafka signal channel); the dead letters."""
    opts, names = plan.opts, plan.names
    rf = min(3, opts.kafka_replicas)

    def topic(name: str, partitions: int, config: dict | None = None) -> dict:
        return strimzi.kafka_topic(api=opts.strimzi_api, topic=name, kafka_cluster=names.kafka,
                                   namespace=opts.namespace, labels=plan.labels, partitions=partitions,
                                   replicas=rf, config=config)

    out = [topic(t, opts.partitions) for t in change_topics]
    for c in connectors:
        cfg = c["config"]
        if cfg.get("schema.history.internal.kafka.topic"):
            out.append(topic(cfg["schema.history.internal.kafka.topic"], 1,
                             {"cleanup.policy": "delete", "retention.ms": -1, "retention.bytes": -1}))
        if cfg.get("signal.kafka.topic"):
            out.append(topic(cfg["signal.kafka.topic"], 1))
    out.append(topic(dead_letter_topic, 1))
    return out


def _connect_image(image: str) -> str:
    from pipelines.deploy.helm import split_image

    repository, tag = split_image(image)
    repository = repository.split("@", 1)[0]
    return f"{repository}-connect:{tag if '@' not in image else 'latest'}"


def render_dagster_values(settings_or_estate, image: str, namespace: str, workers: int = 2, **options) -> dict:
    """Values for the dagster/dagster Helm chart: the user code deployment of `pipelines.definitions`
    with REPORTING_ESTATE pointing at the estate file from its ConfigMap."""
    opts = _options(image, namespace, workers, options)
    plan = _plan(settings_or_estate, opts)
    uses = secret_uses(plan.estate, "dagster")
    return dagster_values(deployment=plan.names.prefix, image=opts.image, pull_policy=opts.pull_policy,
                          estate_path=plan.estate_path, config_map=plan.names.estate_config_map,
                          project_dir=opts.project_dir, env=env_vars(uses, plan.secret_name),
                          mounts=file_mounts(uses, plan.secret_name, "dagster", ca=plan.ca(), pod_path=plan.pod_path))


def secret_keys(settings_or_estate, **options) -> list[tuple[str, str]]:
    """(key of the Kubernetes Secret, estate key it serves) for every secret the deployment reads: what the
    operator puts into `kubectl create secret generic <name>-secrets`."""
    estate = _estate_of(settings_or_estate)
    seen: dict[str, str] = {}
    for use in secret_uses(estate, "connect") + secret_uses(estate, "dagster"):
        seen.setdefault(use.secret_key, use.key_path)
    return sorted(seen.items())


def apply_instructions(settings_or_estate, out_dir: str | Path, image: str, namespace: str, workers: int = 2,
                       **options) -> list[str]:
    """What the operator runs after rendering, in order (printed by `reporting deploy render`)."""
    opts = _options(image, namespace, workers, options)
    estate = _estate_of(settings_or_estate)
    names = names_for(estate, opts)
    secret = opts.secret_name or f"{names.prefix}-secrets"
    literals = " ".join(f"--from-literal={key}=..." for key, _ in secret_keys(estate))
    return [
        f"kubectl create namespace {namespace}   # Strimzi's operator must watch it",
        f"kubectl -n {namespace} create secret generic {secret} {literals}",
        f"kubectl -n {namespace} apply -f {out_dir}",
        "helm repo add dagster https://dagster-io.github.io/helm   # once",
        f"helm upgrade --install dagster dagster/dagster -n {namespace} -f {Path(out_dir) / HELM_VALUES}",
    ]


# ------------------------------------------------------------------------------------------------ files
FILES = ("10-kafka.yaml", "20-topics.yaml", "30-connect.yaml", "40-connectors.yaml", "50-stream.yaml",
         "60-monitoring.yaml")
HELM_VALUES = "helm/dagster-values.yaml"
_FILE_OF_KIND = {"KafkaNodePool": FILES[0], "Kafka": FILES[0], "KafkaUser": FILES[0], "KafkaTopic": FILES[1],
                 "KafkaConnect": FILES[2], "KafkaConnector": FILES[3], "ConfigMap": FILES[4], "Service": FILES[4],
                 "StatefulSet": FILES[4], "PodDisruptionBudget": FILES[4], "ServiceMonitor": FILES[5]}


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data) -> bool:  # no &id001 anchors: every resource reads on its own
        return True


def _str(dumper: yaml.SafeDumper, value: str):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump_yaml(documents: list[dict]) -> str:
    """Multi-document YAML, keys in the order rendered, multi-line text as literal blocks."""
    return yaml.dump_all(documents, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120)


def write_kubernetes(out_dir: str | Path, resources: list[dict], helm_values: dict | None = None) -> list[Path]:
    """Write `resources` as numbered YAML files (`kubectl apply -f DIR` applies them in order) and the
    Dagster values under helm/ (not picked up by `kubectl apply -f DIR`). Files of an earlier render
    that this one does not produce are removed; other files in the folder are left alone."""
    out = Path(out_dir)
    by_file: dict[str, list[dict]] = {}
    for r in resources:
        by_file.setdefault(_FILE_OF_KIND.get(r["kind"], "70-other.yaml"), []).append(r)
    (out / "helm").mkdir(parents=True, exist_ok=True)
    for stale in (*FILES, "70-other.yaml", HELM_VALUES):
        if stale not in by_file and (out / stale).exists():
            (out / stale).unlink()
    written = []
    for name in sorted(by_file):
        path = out / name
        path.write_text(dump_yaml(by_file[name]))
        written.append(path)
    if helm_values is not None:
        path = out / HELM_VALUES
        path.write_text(yaml.dump(helm_values, Dumper=_Dumper, sort_keys=False, width=120))
        written.append(path)
    return written


def render_to_folder(settings_or_estate, out_dir: str | Path, image: str, namespace: str, workers: int = 2,
                     **options) -> list[Path]:
    """`reporting deploy render --target kubernetes`: render everything and write it to `out_dir`."""
    resources = render_kubernetes(settings_or_estate, image, namespace, workers, **options)
    values = render_dagster_values(settings_or_estate, image, namespace, workers, **options)
    return write_kubernetes(out_dir, resources, values)


__all__ = ["DeployError", "KubernetesOptions", "apply_instructions", "cluster_problems", "cluster_warnings", "dump_yaml", "instance_ids",
           "render_dagster_values", "render_kubernetes", "render_to_folder", "secret_keys", "write_kubernetes"]
