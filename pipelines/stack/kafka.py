"""Apache Kafka (KRaft, combined broker+controller nodes) and Kafka Connect distributed workers.

By default one node and one worker. With the estate's cluster profile (`kafka.local_cluster`,
docs/scaling.md) one node per `kafka.bootstrap_servers` entry (node ids 1..N, their controller ports
right after the highest broker port), every topic replicated (`replication_factor`,
`min_insync_replicas`), and one Connect worker per `connect.urls` entry, all in one Connect group;
each node and worker has its own folder (<state>/kafka-<n>, <state>/connect, <state>/connect-<n>).

Both run from the jars Maven resolved into <state>/jvm (see connectors/pom.xml), each as its own
JVM with an explicit heap (-Xmx), its own log file and pid file under <state>/kafka and
<state>/connect. Connect keeps its configs, offsets and status in Kafka topics and resolves
`${env:...}` / `${dir:...}` placeholders in connector configs (and in its own properties) through
Kafka's EnvVarConfigProvider and DirectoryConfigProvider.

Security follows the estate's `kafka.security`: PLAINTEXT (the default) or SASL_PLAINTEXT with PLAIN,
SCRAM-SHA-256 or SCRAM-SHA-512. With SASL the broker's client listener authenticates the estate's
user (its password resolved from the estate's secret reference and written only into the broker's
0600 properties file; for SCRAM also into the KRaft storage when it is formatted), the KRaft
controller listener stays PLAINTEXT on loopback, and the Connect worker and its producer, consumer
and admin clients log in with a config-provider placeholder, never the value. TLS (SSL, SASL_SSL) is
not offered by the local broker.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import requests

from pipelines.config.model import KafkaSecurity
from pipelines.settings import Settings
from pipelines.stack import proc
from pipelines.stack.errors import StackError

LOG4J2 = """status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = kafka
logger.kafka.level = WARN
logger.state.name = state.change.logger
logger.state.level = WARN
logger.reflections.name = org.reflections
logger.reflections.level = ERROR
"""


def java_bin() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if not found:
        raise StackError("Java is missing: install a Java 17+ runtime (e.g. apt-get install openjdk-17-jre-headless) or set JAVA_HOME")
    return found


def _prop_value(value: str) -> str:
    """A value as java.util.Properties reads it back unchanged (backslash is its escape character)."""
    out = value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
    return "\\" + out if out.startswith((" ", "\t")) else out


def _write_private(path: Path, text: str) -> Path:
    """Write a file readable only by its owner (mode 0600, also when it existed with a wider one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        os.fchmod(fh.fileno(), 0o600)
        fh.write(text)
    return path


def _write_props(path: Path, props: dict[str, str]) -> Path:
    """Write a .properties file, 0600: it may hold the broker's JAAS passwords."""
    return _write_private(path, "".join(f"{k}={_prop_value(v)}\n" for k, v in props.items()))


LOCAL_PROTOCOLS = ("PLAINTEXT", "SASL_PLAINTEXT")
"""What the local broker can serve: no TLS (it has no certificate)."""


def _local_security(settings: Settings) -> KafkaSecurity:
    sec = settings.estate.kafka.security
    if sec.protocol not in LOCAL_PROTOCOLS:
        raise StackError(f"{settings.estate.path}: kafka.security.protocol {sec.protocol} is not offered by the local "
                         f"Kafka broker (it serves {' or '.join(LOCAL_PROTOCOLS)}; TLS needs a broker you run yourself)")
    return sec


def _jaas_quote(value: str) -> str:
    """A JAAS option value in double quotes (Kafka's JaasConfig tokenizer honours backslash escapes)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class Node:
    """One local KRaft node (combined broker + controller): its id, client port and controller port."""

    node_id: int
    port: int
    controller_port: int


def cluster_nodes(settings: Settings) -> list[Node]:
    """The local Kafka nodes the estate declares. Pure.

    Without `kafka.local_cluster`: one node at the first bootstrap server's port, its controller on the
    next port (as always). With it: node i (1..N) at the i-th bootstrap server's port, and the
    controllers on the N ports after the highest of them (59092-59094 → controllers 59095-59097)."""
    kafka = settings.estate.kafka
    if kafka.local_cluster is None:
        return [Node(1, settings.ports["kafka"], settings.ports["kafka_controller"])]
    ports = [int(server.rpartition(":")[2]) for server in kafka.bootstrap_servers]
    top = max(ports)
    return [Node(i + 1, port, top + i + 1) for i, port in enumerate(ports)]


def connect_ports(settings: Settings) -> list[int]:
    """REST port of each local Connect worker: one per `connect.urls` entry with the cluster profile,
    else the first URL's only. Pure."""
    from urllib.parse import urlsplit

    c = settings.estate.connect
    urls = c.urls if settings.estate.kafka.local_cluster is not None else c.urls[:1]
    return [urlsplit(u).port or 80 for u in urls]


def broker_properties(settings: Settings, root: Path, password: str | None = None,
                      node: int = 1) -> dict[str, str]:
    """server.properties of local node `node` (KRaft, combined broker + controller). Pure.

    Without the cluster profile exactly the single broker's properties (node 1, replication factor
    1). With it: node `node` of `cluster_nodes`, every node a voter of the controller quorum, and the
    profile's replication factor and min.insync.replicas as the defaults of every topic, internal ones
    included (consumer offsets, transactions, share-group state).

    PLAINTEXT: one PLAINTEXT client listener. SASL_PLAINTEXT: the client (and inter-broker) listener
    is SASL_PLAINTEXT with the estate's mechanism, and `password` (the resolved
    `kafka.security.password`) goes into the listener's JAAS config: for PLAIN as the one user the
    broker accepts (`user_<name>`), for SCRAM as the broker's own login (the credential itself is
    stored in the KRaft metadata when the storage is formatted, see `scram_format_args`).
    """
    sec = _local_security(settings)
    nodes = cluster_nodes(settings)
    me = next((n for n in nodes if n.node_id == node), None)
    if me is None:
        raise StackError(f"kafka: no local node {node} (the estate declares {len(nodes)})")
    h, p, c = settings.host, me.port, me.controller_port
    client = sec.protocol  # the listener's name is its protocol: PLAINTEXT or SASL_PLAINTEXT
    props = {
        "process.roles": "broker,controller",
        "node.id": str(me.node_id),
        "controller.quorum.voters": ",".join(f"{n.node_id}@{h}:{n.controller_port}" for n in nodes),
        "listeners": f"{client}://{h}:{p},CONTROLLER://{h}:{c}",
        "advertised.listeners": f"{client}://{h}:{p}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": client,
        "listener.security.protocol.map": f"CONTROLLER:PLAINTEXT,{client}:{client}",
    }
    if sec.protocol == "SASL_PLAINTEXT":
        mech = sec.sasl_mechanism
        assert mech and sec.username and password is not None, "SASL needs mechanism, username and password"
        user, pw = sec.username, _jaas_quote(password)
        if mech == "PLAIN":
            jaas = (f"org.apache.kafka.common.security.plain.PlainLoginModule required "
                    f"username={_jaas_quote(user)} password={pw} user_{user}={pw};")
        else:
            jaas = (f"org.apache.kafka.common.security.scram.ScramLoginModule required "
                    f"username={_jaas_quote(user)} password={pw};")
        props.update({
            "sasl.enabled.mechanisms": mech,
            "sasl.mechanism.inter.broker.protocol": mech,
            f"listener.name.{client.lower()}.{mech.lower()}.sasl.jaas.config": jaas,
        })
    props.update({
        "log.dirs": str(root / "data"),
        "num.partitions": "1",
        "default.replication.factor": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "4",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "true",
        "message.max.bytes": "2097152",
        "log.retention.hours": "168",
        "log.segment.bytes": "268435456",
    })
    props.update(_replication_properties(settings))
    return props


def _replication_properties(settings: Settings) -> dict[str, str]:
    """The cluster profile's replication as broker defaults ({} without the profile)."""
    lc = settings.estate.kafka.local_cluster
    if lc is None:
        return {}
    rf, isr = str(lc.replication_factor), str(lc.min_insync_replicas)
    return {
        "default.replication.factor": rf,
        "min.insync.replicas": isr,
        "offsets.topic.replication.factor": rf,
        "transaction.state.log.replication.factor": rf,
        "transaction.state.log.min.isr": isr,
        "share.coordinator.state.topic.replication.factor": rf,
        "share.coordinator.state.topic.min.isr": isr,
        "unclean.leader.election.enable": "false",
    }


def scram_format_args(settings: Settings, password: str | None) -> list[str]:
    """`kafka-storage format` arguments that store the estate's SCRAM user ([] unless SCRAM)."""
    sec = _local_security(settings)
    if sec.protocol != "SASL_PLAINTEXT" or not (sec.sasl_mechanism or "").startswith("SCRAM-"):
        return []
    assert sec.username and password is not None
    return ["--add-scram", f"{sec.sasl_mechanism}=[name={sec.username},password={password}]"]


def connect_properties(settings: Settings, worker: int = 1) -> dict[str, str]:
    """connect-distributed.properties of local worker `worker` (1-based). Pure; holds no secret value.

    Every worker joins the one group `reporting-connect` and keeps configs, offsets and status in the
    same topics; with the cluster profile those have its replication factor, and a worker that left
    the group has its connectors and tasks moved to the others after `scheduled.rebalance.max.delay.ms`
    (5 s instead of Connect's default 5 min, which waits for the worker to come back).

    Plugins are found by their ServiceLoader manifests only (`plugin.discovery=service_load`): every
    Debezium plugin the pom installs ships them (Connect itself says so under `hybrid_warn`), and the
    reflection scan it skips took 23 s of each worker's start on 2 cores (2026-12-02).

    With SASL the worker's own clients (group membership, config/offset/status topics) and the
    clients it gives connectors (`producer.`, `consumer.`, `admin.`) log in as the estate's Kafka user;
    the password is the `${env:...}`/`${dir:...}` placeholder of its secret reference, resolved by the
    worker at start through the config providers declared here."""
    from pipelines.connect.render import kafka_client_security

    s = settings
    sec = _local_security(s)
    ports = connect_ports(s)
    if not 1 <= worker <= len(ports):
        raise StackError(f"connect: no local worker {worker} (the estate declares {len(ports)})")
    port = ports[worker - 1]
    lc = s.estate.kafka.local_cluster
    rf = str(lc.replication_factor) if lc else "1"
    props = {
        "bootstrap.servers": s.kafka_bootstrap,
        "group.id": "reporting-connect",
        "key.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "key.converter.schemas.enable": "false",
        "value.converter.schemas.enable": "false",
        "config.storage.topic": "_connect-configs",
        "offset.storage.topic": "_connect-offsets",
        "status.storage.topic": "_connect-status",
        "config.storage.replication.factor": rf,
        "offset.storage.replication.factor": rf,
        "status.storage.replication.factor": rf,
        "offset.flush.interval.ms": "5000",
        "listeners": f"http://{s.host}:{port}",
        "rest.advertised.host.name": s.host,
        "rest.advertised.port": str(port),
        "plugin.path": str(s.jvm_dir / "plugins"),
        "plugin.discovery": "service_load",
        "config.providers": "env,dir",
        "config.providers.env.class": "org.apache.kafka.common.config.provider.EnvVarConfigProvider",
        "config.providers.dir.class": "org.apache.kafka.common.config.provider.DirectoryConfigProvider",
        "producer.compression.type": "lz4",
        "producer.linger.ms": "5",
        "producer.batch.size": "262144",
    }
    if lc is not None:
        props["scheduled.rebalance.max.delay.ms"] = "5000"
        # The worker's shared admin client (reading `_connect-offsets` to its end when a task starts) keeps
        # asking a partition's old leader after that broker died, until its API timeout (60 s by default);
        # its caller then retries with fresh metadata. 20 s (which must not be below the request timeout,
        # 40 s by default) moves a lost worker's tasks in ~25 s instead of ~60 s when a broker died with it.
        props["request.timeout.ms"] = "20000"
        props["default.api.timeout.ms"] = "20000"
    for prefix in ("", "producer.", "consumer.", "admin."):
        props.update(kafka_client_security(sec, prefix))
    return props


def _jvm_cmd(settings: Settings, heap: str, log4j: Path, main: str, *args: str) -> list[str]:
    cp = str(settings.jvm_dir / "runtime" / "kafka" / "*")
    return [java_bin(), f"-Xmx{heap}", "-Xms128m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={log4j}", "-cp", cp, main, *args]


def _meta_cluster_id(data_dir: Path) -> str | None:
    """The cluster.id a formatted KRaft storage holds (None when it is not formatted)."""
    try:
        for line in (data_dir / "meta.properties").read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "cluster.id":
                return value.strip()
    except OSError:
        return None
    return None


@dataclass(frozen=True)
class KafkaBroker:
    """Local KRaft node `node` (1 without the cluster profile: the single broker, in <state>/kafka)."""

    settings: Settings
    node: int = 1

    @property
    def clustered(self) -> bool:
        return self.settings.estate.kafka.local_cluster is not None

    @property
    def component(self) -> str:
        return f"kafka-{self.node}" if self.clustered else "kafka"

    @property
    def root(self) -> Path:
        return self.settings.state_dir / self.component

    log = property(lambda self: self.root / "server.log")
    pid_file = property(lambda self: self.root / "kafka.pid")

    @property
    def spec(self) -> Node:
        return next(n for n in cluster_nodes(self.settings) if n.node_id == self.node)

    @property
    def address(self) -> str:
        return f"{self.settings.host}:{self.spec.port}"

    @property
    def heap(self) -> str:
        lc = self.settings.estate.kafka.local_cluster
        return lc.broker_heap if lc is not None else self.settings.kafka_heap

    def _password(self) -> str | None:
        sec = _local_security(self.settings)
        if sec.protocol == "PLAINTEXT" or sec.password is None:
            return None
        password = self.settings.secret(sec.password, "kafka.security.password")
        if '"' in password or "\\" in password:
            # Connect substitutes the ${...} placeholder into sasl.jaas.config as it is: a quote or a
            # backslash there breaks the JAAS syntax (and the worker logs the rest of the password)
            raise StackError(f"kafka.security.password ({sec.password.describe()}) contains a double quote or a "
                             "backslash, which Kafka clients cannot take from a config provider inside "
                             "sasl.jaas.config; choose a password without them")
        return password

    def _props(self, password: str | None = None) -> Path:
        return _write_props(self.root / "server.properties",
                            broker_properties(self.settings, self.root, password, node=self.node))

    def _log4j(self) -> Path:
        path = self.root / "log4j2.properties"
        path.write_text(LOG4J2.format(log=self.log))
        return path

    def _cluster_id(self) -> str:
        """A new id for the single broker; for a cluster node the id all its nodes share (kept in
        <state>/kafka-cluster.id when the first node is formatted, else read from a formatted node)."""
        new = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not self.clustered:
            return new
        keep = self.settings.state_dir / "kafka-cluster.id"
        if keep.exists() and keep.read_text().strip():
            return keep.read_text().strip()
        for other in cluster_nodes(self.settings):
            found = _meta_cluster_id(self.settings.state_dir / f"kafka-{other.node_id}" / "data")
            if found:
                new = found
                break
        keep.parent.mkdir(parents=True, exist_ok=True)
        keep.write_text(new + "\n")
        return new

    def running_pid(self) -> int | None:
        return proc.live_pid(self.pid_file)

    def start(self, wait: bool = True) -> bool:
        """Start if not running; True when this call started it (retried when its port was taken
        in the meantime, see proc.retry_port_race). `wait=False` returns once the process is spawned
        (a cluster node can only become ready when a majority of the controller quorum runs: start
        them all, then `wait_ready` each)."""
        return proc.retry_port_race(self.log, lambda: self._start_once(wait))

    def _start_once(self, wait: bool = True) -> bool:
        if self.running_pid():
            return False
        s = self.settings
        me = self.spec
        for port in (me.port, me.controller_port):
            proc.ensure_port_free(self.component, s.host, port)
        self.root.mkdir(parents=True, exist_ok=True)
        password = self._password()
        props, log4j = self._props(password), self._log4j()
        scram = scram_format_args(s, password)
        sec = s.estate.kafka.security
        # SCRAM credentials live in the KRaft metadata, written once when the storage is formatted: remember
        # which user and password (a digest) it holds, so a changed estate fails with one line, not a timeout
        scram_user = f"{sec.sasl_mechanism} {sec.username}" if scram else ""
        scram_id = f"{scram_user} {hashlib.sha256(f'{scram_user}:{password}'.encode()).hexdigest()}" if scram else ""
        scram_marker = self.root / "scram-user"
        if not (self.root / "data" / "meta.properties").exists():
            cluster_id = self._cluster_id()
            proc.run(_jvm_cmd(s, "256m", log4j, "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}",  # "=": an id may start with "-"
                              "-c", str(props), *scram), f"{self.component}: format storage (KRaft)")
            if scram:
                _write_private(scram_marker, scram_id)
        elif scram and (scram_marker.read_text() if scram_marker.exists() else "") != scram_id:
            raise StackError(f"{self.component}: the broker's storage {self.root / 'data'} was formatted without the "
                             f"{scram_user} user or with another password (SCRAM users are stored when the storage is "
                             "formatted); stop the stack and `reporting stack reset` to format it again")
        proc.spawn(_jvm_cmd(s, self.heap, log4j, "kafka.Kafka", str(props)),
                   self.root / "kafka.stdout", self.pid_file)
        if wait:
            self.wait_ready()
        return True

    def wait_ready(self, timeout: float = 90) -> None:
        """Wait until this node serves clients; fails with the log's tail when it exits or the time is up."""
        pid = proc.read_pid(self.pid_file)
        proc.wait_until(self.component, self.ready, timeout=timeout, log=self.log,
                        alive=lambda: pid is not None and proc.pid_alive(pid))

    def ready(self) -> bool:
        """Single broker: it answers a metadata request. Cluster node: asked directly, it lists itself
        among the live brokers (registered with the controller quorum and not fenced)."""
        from kafka import KafkaAdminClient

        from pipelines.kafka.security import client_config

        config = client_config(self.settings)
        if self.clustered:
            config["bootstrap_servers"] = [self.address]
        admin = KafkaAdminClient(**config, request_timeout_ms=3000, bootstrap_timeout_ms=5000)
        try:
            if not self.clustered:
                admin.list_topics()
                return True
            return any(b.get("broker_id") == self.node and not b.get("is_fenced")
                       for b in admin.describe_cluster().get("brokers", []))
        finally:
            admin.close()

    def healthy(self) -> bool:
        return self.running_pid() is not None and proc.port_open(self.settings.host, self.spec.port)

    def stop(self) -> bool:
        return proc.stop_pid(self.pid_file, self.component, timeout=60)

    def kill(self) -> int | None:
        """SIGKILL the node (fault tests): no shutdown, no flush. Returns the pid it killed."""
        return _kill9(self.pid_file)


def _kill9(pid_file: Path) -> int | None:
    import signal

    pid = proc.live_pid(pid_file)
    if pid is None:
        return None
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while proc.pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    pid_file.unlink(missing_ok=True)
    return pid


@dataclass(frozen=True)
class ConnectWorker:
    """Local Kafka Connect worker `worker` (1-based; the first keeps <state>/connect)."""

    settings: Settings
    env: dict[str, str]
    worker: int = 1

    @property
    def component(self) -> str:
        return f"connect-{self.worker}" if self.settings.estate.kafka.local_cluster is not None else "connect"

    @property
    def root(self) -> Path:
        return self.settings.state_dir / ("connect" if self.worker == 1 else f"connect-{self.worker}")

    log = property(lambda self: self.root / "connect.log")
    pid_file = property(lambda self: self.root / "connect.pid")

    @property
    def port(self) -> int:
        return connect_ports(self.settings)[self.worker - 1]

    @property
    def url(self) -> str:
        return f"http://{self.settings.host}:{self.port}"

    @property
    def worker_id(self) -> str:
        """How Connect names this worker in /connectors/<name>/status (its advertised REST address)."""
        return f"{self.settings.host}:{self.port}"

    @property
    def heap(self) -> str:
        lc = self.settings.estate.kafka.local_cluster
        return lc.connect_heap if lc is not None else self.settings.connect_heap

    def _props(self) -> Path:
        return _write_props(self.root / "connect-distributed.properties",
                            connect_properties(self.settings, worker=self.worker))

    def running_pid(self) -> int | None:
        return proc.live_pid(self.pid_file)

    def start(self) -> bool:
        """Start if not running; True when this call started it (retried when its port was taken
        in the meantime, see proc.retry_port_race)."""
        return proc.retry_port_race(self.log, self._start_once)

    def _start_once(self) -> bool:
        if self.running_pid():
            return False
        s = self.settings
        proc.ensure_port_free(self.component, s.host, self.port)
        self.root.mkdir(parents=True, exist_ok=True)
        log4j = self.root / "log4j2.properties"
        log4j.write_text(LOG4J2.format(log=self.log))
        env = {**os.environ, **self.env}
        pid = proc.spawn(_jvm_cmd(s, self.heap, log4j, "org.apache.kafka.connect.cli.ConnectDistributed",
                                  str(self._props())), self.root / "connect.stdout", self.pid_file, env=env)
        proc.wait_until(self.component, self.ready, timeout=180, log=self.log, alive=lambda: proc.pid_alive(pid))
        return True

    def ready(self) -> bool:
        r = requests.get(f"{self.url}/connector-plugins", timeout=3)
        return r.status_code == 200 and any("PostgresConnector" in p["class"] for p in r.json())

    def healthy(self) -> bool:
        try:
            return requests.get(f"{self.url}/", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def stop(self) -> bool:
        return proc.stop_pid(self.pid_file, self.component, timeout=60)

    def kill(self) -> int | None:
        """SIGKILL the worker (fault tests): its tasks stop without committing offsets. Returns the pid."""
        return _kill9(self.pid_file)
