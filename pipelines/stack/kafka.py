"""Apache Kafka (single node, KRaft combined broker+controller) and a Kafka Connect distributed worker.

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


def broker_properties(settings: Settings, root: Path, password: str | None = None) -> dict[str, str]:
    """server.properties of the single local broker (KRaft, combined broker + controller). Pure.

    PLAINTEXT: one PLAINTEXT client listener. SASL_PLAINTEXT: the client (and inter-broker) listener
    is SASL_PLAINTEXT with the estate's mechanism, and `password` (the resolved
    `kafka.security.password`) goes into the listener's JAAS config: for PLAIN as the one user the
    broker accepts (`user_<name>`), for SCRAM as the broker's own login (the credential itself is
    stored in the KRaft metadata when the storage is formatted, see `scram_format_args`).
    """
    sec = _local_security(settings)
    h, p, c = settings.host, settings.ports["kafka"], settings.ports["kafka_controller"]
    client = sec.protocol  # the listener's name is its protocol: PLAINTEXT or SASL_PLAINTEXT
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{h}:{c}",
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
    return props


def scram_format_args(settings: Settings, password: str | None) -> list[str]:
    """`kafka-storage format` arguments that store the estate's SCRAM user ([] unless SCRAM)."""
    sec = _local_security(settings)
    if sec.protocol != "SASL_PLAINTEXT" or not (sec.sasl_mechanism or "").startswith("SCRAM-"):
        return []
    assert sec.username and password is not None
    return ["--add-scram", f"{sec.sasl_mechanism}=[name={sec.username},password={password}]"]


def connect_properties(settings: Settings) -> dict[str, str]:
    """connect-distributed.properties of the local worker. Pure; holds no secret value.

    With SASL the worker's own clients (group membership, config/offset/status topics) and the
    clients it gives connectors (`producer.`, `consumer.`, `admin.`) log in as the estate's Kafka user;
    the password is the `${env:...}`/`${dir:...}` placeholder of its secret reference, resolved by the
    worker at start through the config providers declared here."""
    from pipelines.connect.render import kafka_client_security

    s = settings
    sec = _local_security(s)
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
        "config.storage.replication.factor": "1",
        "offset.storage.replication.factor": "1",
        "status.storage.replication.factor": "1",
        "offset.flush.interval.ms": "5000",
        "listeners": f"http://{s.host}:{s.ports['connect']}",
        "rest.advertised.host.name": s.host,
        "rest.advertised.port": str(s.ports["connect"]),
        "plugin.path": str(s.jvm_dir / "plugins"),
        "plugin.discovery": "hybrid_warn",
        "config.providers": "env,dir",
        "config.providers.env.class": "org.apache.kafka.common.config.provider.EnvVarConfigProvider",
        "config.providers.dir.class": "org.apache.kafka.common.config.provider.DirectoryConfigProvider",
        "producer.compression.type": "lz4",
        "producer.linger.ms": "5",
        "producer.batch.size": "262144",
    }
    for prefix in ("", "producer.", "consumer.", "admin."):
        props.update(kafka_client_security(sec, prefix))
    return props


def _jvm_cmd(settings: Settings, heap: str, log4j: Path, main: str, *args: str) -> list[str]:
    cp = str(settings.jvm_dir / "runtime" / "kafka" / "*")
    return [java_bin(), f"-Xmx{heap}", "-Xms128m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={log4j}", "-cp", cp, main, *args]


@dataclass(frozen=True)
class KafkaBroker:
    settings: Settings

    component = "kafka"
    root = property(lambda self: self.settings.state_dir / "kafka")
    log = property(lambda self: self.root / "server.log")
    pid_file = property(lambda self: self.root / "kafka.pid")

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
        return _write_props(self.root / "server.properties", broker_properties(self.settings, self.root, password))

    def _log4j(self) -> Path:
        path = self.root / "log4j2.properties"
        path.write_text(LOG4J2.format(log=self.log))
        return path

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
        for port in (s.ports["kafka"], s.ports["kafka_controller"]):
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
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            proc.run(_jvm_cmd(s, "256m", log4j, "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}",  # "=": an id may start with "-"
                              "-c", str(props), *scram), "kafka: format storage (KRaft)")
            if scram:
                _write_private(scram_marker, scram_id)
        elif scram and (scram_marker.read_text() if scram_marker.exists() else "") != scram_id:
            raise StackError(f"kafka: the broker's storage {self.root / 'data'} was formatted without the {scram_user} "
                             "user or with another password (SCRAM users are stored when the storage is formatted); "
                             "stop the stack and `reporting stack reset` to format it again")
        pid = proc.spawn(_jvm_cmd(s, s.kafka_heap, log4j, "kafka.Kafka", str(props)),
                         self.root / "kafka.stdout", self.pid_file)
        proc.wait_until("kafka", self.ready, timeout=90, log=self.log, alive=lambda: proc.pid_alive(pid))
        return True

    def ready(self) -> bool:
        from kafka import KafkaAdminClient

        from pipelines.kafka.security import client_config

        admin = KafkaAdminClient(**client_config(self.settings), request_timeout_ms=3000, bootstrap_timeout_ms=5000)
        try:
            admin.list_topics()
            return True
        finally:
            admin.close()

    def healthy(self) -> bool:
        return self.running_pid() is not None and proc.port_open(self.settings.host, self.settings.ports["kafka"])

    def stop(self) -> bool:
        return proc.stop_pid(self.pid_file, "kafka", timeout=60)


@dataclass(frozen=True)
class ConnectWorker:
    settings: Settings
    env: dict[str, str]

    component = "connect"
    root = property(lambda self: self.settings.state_dir / "connect")
    log = property(lambda self: self.root / "connect.log")
    pid_file = property(lambda self: self.root / "connect.pid")

    def _props(self) -> Path:
        return _write_props(self.root / "connect-distributed.properties", connect_properties(self.settings))

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
        proc.ensure_port_free(self.component, s.host, s.ports["connect"])
        self.root.mkdir(parents=True, exist_ok=True)
        log4j = self.root / "log4j2.properties"
        log4j.write_text(LOG4J2.format(log=self.log))
        env = {**os.environ, **self.env}
        pid = proc.spawn(_jvm_cmd(s, s.connect_heap, log4j, "org.apache.kafka.connect.cli.ConnectDistributed",
                                  str(self._props())), self.root / "connect.stdout", self.pid_file, env=env)
        proc.wait_until("connect", self.ready, timeout=180, log=self.log, alive=lambda: proc.pid_alive(pid))
        return True

    def ready(self) -> bool:
        r = requests.get(f"{self.settings.connect_url}/connector-plugins", timeout=3)
        return r.status_code == 200 and any("PostgresConnector" in p["class"] for p in r.json())

    def healthy(self) -> bool:
        try:
            return requests.get(f"{self.settings.connect_url}/", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def stop(self) -> bool:
        return proc.stop_pid(self.pid_file, "connect", timeout=60)
