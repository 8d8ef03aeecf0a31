"""The local cluster profile's pure parts: node layout, broker and Connect worker properties, the
connectors' topic-creation settings, the estate checks, and the worker group's command lines."""

from __future__ import annotations

import sys

import pytest

from pipelines.apply.workers import WorkerGroup, WorkersError, check_workers, instance_ids, worker_command
from pipelines.config.load import EstateError
from pipelines.connect.render import render_connector, topic_creation
from pipelines.stack.errors import StackError
from pipelines.stack.kafka import Node, broker_properties, cluster_nodes, connect_ports, connect_properties
from tests.support.estate import settings_for

pytestmark = pytest.mark.unit

CLUSTER = {
    "kafka.bootstrap_servers": ["127.0.0.1:59092", "127.0.0.1:59093", "127.0.0.1:59094"],
    "kafka.local_cluster": {"partitions": 4},
    "connect.urls": ["http://127.0.0.1:58083", "http://127.0.0.1:58084"],
}


def _cluster(tmp_path, environ=None, **more):
    return settings_for(tmp_path, environ=environ, **{**CLUSTER, **more})


def test_without_the_profile_one_node_and_one_worker(tmp_path):
    s = settings_for(tmp_path, **{"connect.urls": ["http://127.0.0.1:58083", "http://127.0.0.1:58084"]})
    assert cluster_nodes(s) == [Node(1, 59092, 59093)]
    assert connect_ports(s) == [58083]  # a second URL alone starts no second local worker
    props = broker_properties(s, tmp_path / "kafka")
    assert props["default.replication.factor"] == "1" and "min.insync.replicas" not in props
    assert "scheduled.rebalance.max.delay.ms" not in connect_properties(s)
    assert "default.api.timeout.ms" not in connect_properties(s)  # Kafka's defaults without the profile
    assert topic_creation(s.estate.kafka) == {}


def test_three_nodes_on_the_declared_ports_with_controllers_after_them(tmp_path):
    s = _cluster(tmp_path)
    assert cluster_nodes(s) == [Node(1, 59092, 59095), Node(2, 59093, 59096), Node(3, 59094, 59097)]
    assert connect_ports(s) == [58083, 58084]


def test_port_offset_moves_every_node_and_worker(tmp_path):
    s = _cluster(tmp_path, environ={"REPORTING_PORT_OFFSET": "800"})
    assert [n.port for n in cluster_nodes(s)] == [59892, 59893, 59894]
    assert [n.controller_port for n in cluster_nodes(s)] == [59895, 59896, 59897]
    assert connect_ports(s) == [58883, 58884]
    assert s.kafka_bootstrap == "127.0.0.1:59892,127.0.0.1:59893,127.0.0.1:59894"


@pytest.mark.parametrize("node", [1, 2, 3])
def test_each_node_is_a_voter_with_its_own_listeners_and_replicated_defaults(tmp_path, node):
    s = _cluster(tmp_path)
    props = broker_properties(s, tmp_path / f"kafka-{node}", node=node)
    port, controller = 59091 + node, 59094 + node
    assert props["node.id"] == str(node)
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:59095,2@127.0.0.1:59096,3@127.0.0.1:59097"
    assert props["listeners"] == f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}"
    assert props["advertised.listeners"] == f"PLAINTEXT://127.0.0.1:{port}"
    assert props["log.dirs"] == str(tmp_path / f"kafka-{node}" / "data")
    assert {k: props[k] for k in (
        "default.replication.factor", "min.insync.replicas", "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor", "transaction.state.log.min.isr",
        "share.coordinator.state.topic.replication.factor", "share.coordinator.state.topic.min.isr",
        "unclean.leader.election.enable")} == {
        "default.replication.factor": "3", "min.insync.replicas": "2", "offsets.topic.replication.factor": "3",
        "transaction.state.log.replication.factor": "3", "transaction.state.log.min.isr": "2",
        "share.coordinator.state.topic.replication.factor": "3", "share.coordinator.state.topic.min.isr": "2",
        "unclean.leader.election.enable": "false"}
    assert props["num.partitions"] == "1"  # auto-created topics (dead letters): one partition, 3 replicas


def test_an_unknown_node_is_refused(tmp_path):
    with pytest.raises(StackError, match="no local node 4"):
        broker_properties(_cluster(tmp_path), tmp_path, node=4)
    with pytest.raises(StackError, match="no local worker 3"):
        connect_properties(_cluster(tmp_path), worker=3)


def test_sasl_listeners_follow_each_node(tmp_path):
    s = _cluster(tmp_path, **{"kafka.security": {"protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN",
                                                 "username": "rep", "password": {"env": "KAFKA_PW"}}})
    props = broker_properties(s, tmp_path, password="pw", node=2)
    assert props["listeners"] == "SASL_PLAINTEXT://127.0.0.1:59093,CONTROLLER://127.0.0.1:59096"
    assert props["listener.name.sasl_plaintext.plain.sasl.jaas.config"].endswith('user_rep="pw";')


@pytest.mark.parametrize("worker", [1, 2])
def test_both_connect_workers_share_one_group_and_replicated_internal_topics(tmp_path, worker):
    s = _cluster(tmp_path)
    props = connect_properties(s, worker=worker)
    port = 58082 + worker
    assert props["group.id"] == "reporting-connect"
    assert props["bootstrap.servers"] == "127.0.0.1:59092,127.0.0.1:59093,127.0.0.1:59094"
    assert props["listeners"] == f"http://127.0.0.1:{port}"
    assert props["rest.advertised.port"] == str(port)
    for topic in ("config", "offset", "status"):
        assert props[f"{topic}.storage.replication.factor"] == "3"
    assert props["scheduled.rebalance.max.delay.ms"] == "5000"  # a dead worker's tasks move after 5 s
    # the API timeout bounds a task start's wait on a dead broker; Kafka refuses it below the request timeout
    assert int(props["request.timeout.ms"]) <= int(props["default.api.timeout.ms"]) <= 20000
    assert props["plugin.discovery"] == "service_load"
    assert (props["config.storage.topic"], props["offset.storage.topic"], props["status.storage.topic"]) == (
        "_connect-configs", "_connect-offsets", "_connect-status")


def test_connectors_create_change_topics_with_the_profiles_partitions_and_replication(tmp_path):
    s = _cluster(tmp_path)
    assert topic_creation(s.estate.kafka) == {"topic.creation.default.partitions": "4",
                                              "topic.creation.default.replication.factor": "3",
                                              "topic.creation.default.min.insync.replicas": "2"}
    svc = s.estate.service("orders")
    spec = {"name": "x", "config": {"connector.class": "io.debezium.connector.postgresql.PostgresConnector",
                                    "topic.creation.default.partitions": "12"}}
    config = render_connector(spec, svc, s.estate.kafka)["config"]
    assert config["topic.creation.default.partitions"] == "12"  # the connector file's own value wins
    assert config["topic.creation.default.replication.factor"] == "3"
    # nothing changes the record key: Debezium keys by primary key, so one row stays on one partition
    assert not any(k.startswith(("transforms", "key.converter")) and k not in spec["config"] for k in config)


@pytest.mark.parametrize(("changes", "message"), [
    ({"kafka.local_cluster": {"replication_factor": 4}}, "replication_factor 4 needs as many brokers"),
    ({"kafka.local_cluster": {"min_insync_replicas": 3, "replication_factor": 2}}, "exceeds replication_factor"),
    ({"kafka.bootstrap_servers": ["127.0.0.1:59092", "127.0.0.1:59092", "127.0.0.1:59094"]}, "ports must differ"),
    ({"kafka.local_cluster": {"broker_heap": "lots"}}, "broker_heap"),
])
def test_a_profile_that_cannot_start_is_refused_naming_the_key(tmp_path, changes, message):
    with pytest.raises(EstateError, match=message):
        _cluster(tmp_path, **changes)


def test_several_workers_need_the_postgres_backend():
    with pytest.raises(WorkersError) as exc:
        check_workers("duckdb", 2)
    assert "\n" not in str(exc.value) and "one writer process per file" in str(exc.value)
    check_workers("duckdb", 1)
    check_workers("postgres", 4)


def test_worker_ids_and_command_lines():
    assert instance_ids("reporting-pipeline", 3) == ["reporting-pipeline-0", "reporting-pipeline-1",
                                                     "reporting-pipeline-2"]
    cmd = worker_command("/e/reporting.yaml", "g", "g-1", planners=2, metrics_port=9465, python="/py")
    assert cmd == ["/py", "-u", "-m", "pipelines.cli", "--estate", "/e/reporting.yaml", "stream", "--group", "g",
                   "--instance-id", "g-1", "--planners", "2", "--metrics-port", "9465"]
    # `reporting stream --workers N --linger-ms L` hands the linger to every worker
    cmd = worker_command("/e/reporting.yaml", "g", "g-0", python="/py", linger_ms=1000)
    assert cmd[-2:] == ["--linger-ms", "1000"] and "--planners" not in cmd


def test_worker_group_restarts_a_worker_that_dies_and_gives_up_on_one_that_keeps_failing():
    """Real (tiny) processes: a worker that dies is started again under the same id; one that fails at
    once every time stops the group with its last line."""
    import threading

    lines: list[str] = []
    sleeper = [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"]
    group = WorkerGroup({"w-0": sleeper}, say=lines.append, restart_delay=0.1)
    t = threading.Thread(target=group.run, kwargs={"install_signals": False, "poll_s": 0.05})
    t.start()
    try:
        import time

        deadline = time.monotonic() + 20
        while not any(ln.startswith("[w-0] up") for ln in lines) and time.monotonic() < deadline:
            time.sleep(0.05)  # the worker is running its own code (not killed while Python starts)
        first = group.pids()["w-0"]
        import os
        import signal

        os.kill(first, signal.SIGKILL)
        while group.pids().get("w-0") in (None, first) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert group.pids()["w-0"] != first
    finally:
        group.stop()
        t.join(timeout=30)
    assert any("w-0 killed by SIGKILL" in ln for ln in lines), lines
    assert any(ln.startswith("[w-0] up") for ln in lines), lines

    failing = [sys.executable, "-c", "import sys; print('error: bad estate'); sys.exit(2)"]
    group = WorkerGroup({"w-0": failing}, say=lambda _m: None, restart_delay=0.01, max_quick_failures=3)
    with pytest.raises(WorkersError, match=r"w-0 stopped 3 times in a row .*exit code 2\): error: bad estate"):
        group.run(install_signals=False, poll_s=0.02)


# ------------------------------------------------------------------------------------------ the command line
@pytest.fixture
def cli(tmp_path, monkeypatch):
    """`reporting --estate <cluster estate> ARGS` (no server runs; no REPORTING_* from the shell)."""
    import os

    from typer.testing import CliRunner

    from pipelines.cli import app
    from tests.support.estate import write_estate

    for name in list(os.environ):
        if name.startswith("REPORTING_"):
            monkeypatch.delenv(name, raising=False)

    def run(*args, **changes):
        estate = write_estate(tmp_path, **{**CLUSTER, **changes})
        return CliRunner().invoke(app, ["--estate", str(estate), *args], env={"COLUMNS": "100"})

    yield run
    from pipelines import cli as cli_module

    cli_module._state.update(estate=None, settings=None)  # later tests that call a sub-app directly see no leftover


def test_stream_refuses_several_workers_on_duckdb_with_one_line(cli):
    result = cli("stream", "--workers", "2", **{"reporting.backend": "duckdb"})
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "one writer process per file" in lines[0], result.output


def test_stack_status_of_the_cluster_shows_brokers_leaders_under_replicated_partitions_and_tasks(cli, monkeypatch):
    """With node 3 dead: partitions it led moved, its replicas are out of sync; tasks show their worker."""
    import json

    from pipelines.stack import manager

    def partition(i, leader, isr):
        return {"partition_index": i, "leader_id": leader, "replica_nodes": [1, 2, 3], "isr_nodes": isr}

    topics = [{"name": "orders.public.orders", "partitions": [partition(0, 1, [1, 2]), partition(1, 2, [2, 1]),
                                                              partition(2, 1, [1, 2, 3]), partition(3, -1, [])]},
              {"name": "_connect-configs", "partitions": [partition(0, 2, [2, 1, 3])]}]
    monkeypatch.setattr(manager, "_kafka_metadata", lambda _s: ({1, 2}, 2, topics))
    monkeypatch.setattr(manager, "_connect_tasks", lambda urls: ([
        manager.TaskState("orders-cdc", "connector", "RUNNING", "127.0.0.1:58084"),
        manager.TaskState("orders-cdc", "0", "RUNNING", "127.0.0.1:58083")], urls[0]))
    result = cli("stack", "status", "--format", "json")
    assert result.exit_code == 1, result.output  # nothing runs here: every component is down
    out = json.loads(result.stdout)
    assert set(out) == {"components", "brokers", "topics", "tasks"}
    assert [c["component"] for c in out["components"]][-5:] == ["kafka-1", "kafka-2", "kafka-3", "connect-1",
                                                                "connect-2"]
    assert [(b["node"], b["live"], b["controller"], b["leaders"]) for b in out["brokers"]] == [
        (1, True, False, 2), (2, True, True, 2), (3, False, False, 0)]
    orders = next(t for t in out["topics"] if t["topic"] == "orders.public.orders")
    assert (orders["partitions"], orders["replicas"], orders["leaders"], orders["under_replicated"],
            orders["offline"]) == (4, 3, "1:2 2:1", "0,1,3", "3")
    assert out["tasks"] == [
        {"connector": "orders-cdc", "task": "connector", "state": "RUNNING", "worker": "127.0.0.1:58084"},
        {"connector": "orders-cdc", "task": "0", "state": "RUNNING", "worker": "127.0.0.1:58083"}]

    table = cli("stack", "status")
    assert "under-replicated" in table.stdout and "who runs what" in table.stdout
    assert "3 under-replicated and 1 offline partition(s)" in " ".join(table.stdout.split())
