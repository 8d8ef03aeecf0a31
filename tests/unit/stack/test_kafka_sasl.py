"""The local broker's and Connect worker's properties for PLAINTEXT (unchanged) and SASL estates."""

from __future__ import annotations

import os

import pytest

from pipelines.stack.errors import StackError
from pipelines.stack.kafka import (
    KafkaBroker,
    _prop_value,
    _write_props,
    broker_properties,
    connect_properties,
    scram_format_args,
)
from tests.support.estate import settings_for

pytestmark = pytest.mark.unit

PLAINTEXT_BROKER = {
    "process.roles": "broker,controller",
    "node.id": "1",
    "controller.quorum.voters": "1@127.0.0.1:59093",
    "listeners": "PLAINTEXT://127.0.0.1:59092,CONTROLLER://127.0.0.1:59093",
    "advertised.listeners": "PLAINTEXT://127.0.0.1:59092",
    "controller.listener.names": "CONTROLLER",
    "inter.broker.listener.name": "PLAINTEXT",
    "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
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
"""What the broker was configured with before SASL support: a PLAINTEXT estate keeps exactly this."""


def _sasl(tmp_path, mechanism="PLAIN", password=None):
    return settings_for(tmp_path, **{"kafka.security": {
        "protocol": "SASL_PLAINTEXT", "sasl_mechanism": mechanism, "username": "rep",
        "password": password or {"file": str(tmp_path / "kafka_pw")}}})


def test_plaintext_broker_and_worker_are_unchanged(tmp_path):
    s = settings_for(tmp_path)
    props = broker_properties(s, tmp_path / "kafka")
    assert props.pop("log.dirs") == str(tmp_path / "kafka" / "data")
    assert props == PLAINTEXT_BROKER
    assert scram_format_args(s, None) == []
    worker = connect_properties(s)
    assert not [k for k in worker if "security" in k or "sasl" in k]
    assert worker["config.providers"] == "env,dir"
    assert worker["bootstrap.servers"] == "127.0.0.1:59092"


def test_sasl_plain_broker_accepts_the_estate_user(tmp_path):
    s = _sasl(tmp_path)
    props = broker_properties(s, tmp_path / "kafka", password="pw-1")
    assert props["listeners"] == "SASL_PLAINTEXT://127.0.0.1:59092,CONTROLLER://127.0.0.1:59093"
    assert props["advertised.listeners"] == "SASL_PLAINTEXT://127.0.0.1:59092"
    assert props["listener.security.protocol.map"] == "CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT"
    assert props["inter.broker.listener.name"] == "SASL_PLAINTEXT"
    assert props["sasl.enabled.mechanisms"] == props["sasl.mechanism.inter.broker.protocol"] == "PLAIN"
    assert props["listener.name.sasl_plaintext.plain.sasl.jaas.config"] == (
        'org.apache.kafka.common.security.plain.PlainLoginModule required username="rep" password="pw-1" '
        'user_rep="pw-1";')
    assert scram_format_args(s, "pw-1") == []  # PLAIN users live in the JAAS config only


def test_sasl_scram_broker_logs_in_and_stores_the_user_at_format(tmp_path):
    s = _sasl(tmp_path, "SCRAM-SHA-256")
    props = broker_properties(s, tmp_path / "kafka", password='p"w\\2')
    jaas = props["listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config"]
    assert jaas == ('org.apache.kafka.common.security.scram.ScramLoginModule required username="rep" '
                    'password="p\\"w\\\\2";')  # quotes and backslashes escaped for Kafka's JAAS parser
    assert "user_rep" not in jaas
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-256"
    assert scram_format_args(s, "pw-2") == ["--add-scram", "SCRAM-SHA-256=[name=rep,password=pw-2]"]


def test_sasl_worker_and_its_clients_log_in_with_a_placeholder(tmp_path):
    s = _sasl(tmp_path, "SCRAM-SHA-512")
    props = connect_properties(s)
    placeholder = "${dir:" + str(tmp_path) + ":kafka_pw}"
    for prefix in ("", "producer.", "consumer.", "admin."):
        assert props[prefix + "security.protocol"] == "SASL_PLAINTEXT"
        assert props[prefix + "sasl.mechanism"] == "SCRAM-SHA-512"
        assert props[prefix + "sasl.jaas.config"] == (
            'org.apache.kafka.common.security.scram.ScramLoginModule required username="rep" '
            f'password="{placeholder}";')
    assert props["config.providers"] == "env,dir"  # what resolves the placeholder in the worker itself
    env = connect_properties(_sasl(tmp_path, "PLAIN", {"env": "KAFKA_PW"}))
    assert 'password="${env:KAFKA_PW}";' in env["producer.sasl.jaas.config"]


def test_tls_protocols_are_refused_with_one_line(tmp_path):
    s = settings_for(tmp_path, **{"kafka.security": {"protocol": "SASL_SSL", "sasl_mechanism": "PLAIN",
                                                     "username": "rep", "password": {"env": "X"}}})
    with pytest.raises(StackError, match="kafka.security.protocol SASL_SSL is not offered by the local Kafka broker"):
        broker_properties(s, tmp_path)
    with pytest.raises(StackError, match="SASL_SSL"):
        connect_properties(s)


def test_broker_properties_file_holds_the_resolved_password_readable_by_its_owner_only(tmp_path):
    (tmp_path / "kafka_pw").write_text("from-the-file")
    s = _sasl(tmp_path)
    broker = KafkaBroker(s)
    path = broker._props(broker._password())
    assert path == s.state_dir / "kafka" / "server.properties"
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert 'user_rep="from-the-file";' in path.read_text()
    path.chmod(0o644)  # rewritten: the mode is tightened again
    broker._props(broker._password())
    assert os.stat(path).st_mode & 0o777 == 0o600


def test_property_values_survive_java_properties_escaping(tmp_path):
    assert _prop_value("C:\\dir\\x") == "C:\\\\dir\\\\x"
    assert _prop_value(" lead") == "\\ lead"
    assert _prop_value("a\nb") == "a\\nb"
    assert _prop_value("${dir:/run/s:kafka}") == "${dir:/run/s:kafka}"  # placeholders pass unchanged
    path = _write_props(tmp_path / "x.properties", {"a": "1", "b": "x=y"})
    assert path.read_text() == "a=1\nb=x=y\n"


def test_a_password_the_worker_could_not_use_is_refused_before_the_broker_starts(tmp_path):
    (tmp_path / "kafka_pw").write_text('a"b')
    with pytest.raises(StackError, match="contains a double quote or a backslash"):
        KafkaBroker(_sasl(tmp_path))._password()


def test_scram_storage_formatted_for_another_user_or_password_fails_with_one_line(tmp_path, monkeypatch):
    from pipelines.stack import proc

    monkeypatch.setattr(proc, "ensure_port_free", lambda *a: None)
    (tmp_path / "kafka_pw").write_text("new-password")
    broker = KafkaBroker(_sasl(tmp_path, "SCRAM-SHA-256"))
    (broker.root / "data").mkdir(parents=True)
    (broker.root / "data" / "meta.properties").write_text("formatted earlier\n")
    (broker.root / "scram-user").write_text("SCRAM-SHA-256 rep 0123")  # the digest of another password
    with pytest.raises(StackError, match="formatted without the SCRAM-SHA-256 rep user or with another password"):
        broker._start_once()
    assert not broker.pid_file.exists()  # nothing was started
