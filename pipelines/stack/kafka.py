"""Apache Kafka (single node, KRaft combined broker+controller) and a Kafka Connect distributed worker.

Both run from the jars Maven resolved into <state>/jvm (see connectors/pom.xml), each as its own
JVM with an explicit heap (-Xmx), its own log file and pid file under <state>/kafka and
<state>/connect. Connect keeps its configs, offsets and status in Kafka topics and resolves
`${env:...}` placeholders in connector configs through Kafka's EnvVarConfigProvider.
"""

from __future__ import annotations

import base64
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import requests

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


def _write_props(path: Path, props: dict[str, str]) -> Path:
    path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
    return path


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

    def _props(self) -> Path:
        s = self.settings
        h, p, c = s.host, s.ports["kafka"], s.ports["kafka_controller"]
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{h}:{c}",
            "listeners": f"PLAINTEXT://{h}:{p},CONTROLLER://{h}:{c}",
            "advertised.listeners": f"PLAINTEXT://{h}:{p}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.root / "data"),
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
        }
        return _write_props(self.root / "server.properties", props)

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
        props, log4j = self._props(), self._log4j()
        if not (self.root / "data" / "meta.properties").exists():
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            proc.run(_jvm_cmd(s, "256m", log4j, "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}",  # "=": an id may start with "-"
                              "-c", str(props)), "kafka: format storage (KRaft)")
        pid = proc.spawn(_jvm_cmd(s, s.kafka_heap, log4j, "kafka.Kafka", str(props)),
                         self.root / "kafka.stdout", self.pid_file)
        proc.wait_until("kafka", self.ready, timeout=90, log=self.log, alive=lambda: proc.pid_alive(pid))
        return True

    def ready(self) -> bool:
        from kafka import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=self.settings.kafka_bootstrap, request_timeout_ms=3000)
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
        s = self.settings
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
        return _write_props(self.root / "connect-distributed.properties", props)

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
