"""Losing a node while traffic runs, on the local cluster profile (docs/scaling.md): 3 Kafka nodes
(replication factor 3, min.insync.replicas 2), 2 Kafka Connect workers in one group, change topics with
4 partitions, and `reporting stream --workers 2` on the PostgreSQL backend. Real processes throughout.

While the MusicCorp simulator runs, one of them is killed with SIGKILL: a broker (the consumer group's
coordinator), the Connect worker running most tasks (its tasks move to the other), a pipeline worker
(its supervisor starts it again under the same static member id); then it comes back. After each:

- the worker group itself catches up (its stored offsets reach the end of every change partition);
- `reconcile` finds 0 differences (retried while late changes still arrive, like test_faults.py);
- dead letters (poison records injected into change topics during the fault) are stored exactly once;
- per-key order held: every key of a change topic lives on one partition and its changes appear in
  source-position order there (a position seen again is a Connect redelivery, not a reordering).

The reduced set (a broker, a Connect worker and a pipeline worker killed at once, one round, short
traffic) took 8 of the 36 minutes of a clean-clone `make test`, so it runs in `make test-faults` with the
full set: one kill of each kind in turn, then
all three at once in three rounds, longer traffic. Each scenario's figures are printed and
written to <cluster state>/cluster-report.json.

The cluster has its own state folder (<e2e state>/cluster) and ports (CLUSTER_PORT_SHIFT), so it runs
beside the single-node e2e stack of the same session without touching it.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path

import pytest
import requests

from pipelines.procenv import environ_overlay
from pipelines.settings import Settings
from tests.e2e.conftest import E2E_ENV
from tests.e2e.faults import Traffic
from tests.support.estate import write_estate

pytestmark = pytest.mark.e2e

FULL = os.environ.get("REPORTING_FAULTS_FULL") == "1"
REPORTING = str(Path(sys.executable).with_name("reporting"))
PARTITIONS = 4
WORKERS = 2
CLUSTER = {
    "kafka.bootstrap_servers": ["127.0.0.1:59092", "127.0.0.1:59093", "127.0.0.1:59094"],
    "kafka.local_cluster": {"partitions": PARTITIONS, "replication_factor": 3, "min_insync_replicas": 2,
                            "broker_heap": "384m", "connect_heap": "512m"},
    "connect.urls": ["http://127.0.0.1:58083", "http://127.0.0.1:58084"],
    "reporting.backend": "postgres",
}
REPORT: list[dict] = []
# The cluster's ports sit below Linux's ephemeral range (32768-60999): it starts while the session's stack
# holds hundreds of client connections, and one of them once held the MariaDB port (53456) as its local
# port for longer than the start retries (clean-clone `make test`, 2026-12-02). With the e2e offset 100:
# PostgreSQL 27582-27585, MariaDB 25456, Kafka 31242-31244 (+ controllers), Connect 30233-30234.
CLUSTER_PORT_SHIFT = 50 - 27900


# ------------------------------------------------------------------------------------------ the cluster
@pytest.fixture(scope="module")
def cluster():
    """Fresh state, the cluster profile up, schemas + connectors; at the end everything stopped."""
    from pipelines.stack.bootstrap import apply_connectors, create_service_schemas
    from pipelines.stack.manager import Stack, leftover_processes

    base = Path(E2E_ENV["REPORTING_STATE_DIR"])
    state = base / "cluster"
    estate_file = write_estate(base / "cluster-estate", **{"state_dir": str(state), **CLUSTER})
    env = {"REPORTING_ESTATE": str(estate_file), "REPORTING_STATE_DIR": str(state),
           "REPORTING_PORT_OFFSET": str(int(E2E_ENV["REPORTING_PORT_OFFSET"]) + CLUSTER_PORT_SHIFT),
           "REPORTING_JVM_DIR": E2E_ENV["REPORTING_JVM_DIR"], "REPORTING_BACKEND": "postgres"}
    with environ_overlay(env):
        settings = Settings.load()
        st = Stack(settings)
        st.down(say=lambda _m: None)
        st.wipe()
        t0 = time.monotonic()
        try:
            st.up(say=print)
            create_service_schemas(st, say=print)
            apply_connectors(st, say=print, timeout=240)
            print(f"cluster stack up in {time.monotonic() - t0:.0f}s")
            yield st
        finally:
            if REPORT:
                (state / "cluster-report.json").write_text(json.dumps(REPORT, indent=2) + "\n")
                print("\n".join(_summary(r) for r in REPORT))
            st.down(say=print)
            left = leftover_processes(settings)
            assert not left, f"processes left after stack down: {left}"
            st.remove_servers_dir(say=print)


def _summary(r: dict) -> str:
    rec = r.get("reconcile", {})
    return (f"{r['scenario']}: {rec.get('tables')} tables, {rec.get('source_rows'):,} source rows compared, "
            f"{rec.get('differences')} differences (rounds {rec.get('rounds')}); "
            + ", ".join(f"{k} {v}" for k, v in r.items() if k not in ("scenario", "reconcile")))


class StreamGroup:
    """`reporting stream --workers N` as a real process (its own session), output to a log."""

    def __init__(self, log: Path, workers: int = WORKERS) -> None:
        self.log = log
        self.workers = workers
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        out = self.log.open("ab")
        self.proc = subprocess.Popen([REPORTING, "stream", "--workers", str(self.workers)],
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def children(self) -> dict[str, int]:
        """Static member id → pid of each worker process running now."""
        import psutil

        out = {}
        for child in psutil.Process(self.proc.pid).children():
            try:
                cmd = child.cmdline()
            except psutil.Error:
                continue
            if "--instance-id" in cmd and child.status() != psutil.STATUS_ZOMBIE:
                out[cmd[cmd.index("--instance-id") + 1]] = child.pid
        return out

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=180)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])


# ------------------------------------------------------------------------------------------ Kafka helpers
def _admin(settings: Settings):
    from kafka import KafkaAdminClient

    from pipelines.kafka.security import client_config

    return KafkaAdminClient(**client_config(settings), request_timeout_ms=15000)


def change_topics(settings: Settings) -> list[str]:
    import re

    from pipelines.apply.runner import load_parts
    from pipelines.kafka.consumer import topic_pattern

    pattern = re.compile(topic_pattern(load_parts(settings.estate).prefixes))
    admin = _admin(settings)
    try:
        return sorted(t for t in admin.list_topics() if pattern.match(t))
    finally:
        admin.close()


def end_offsets(settings: Settings, topics: list[str]) -> dict[tuple[str, int], int]:
    from kafka import KafkaConsumer, TopicPartition

    from pipelines.kafka.security import client_config

    consumer = KafkaConsumer(**client_config(settings), enable_auto_commit=False)
    try:
        tps = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or [])]
        return {(tp.topic, tp.partition): o for tp, o in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


def stored_offsets(settings: Settings) -> dict[tuple[str, int], int]:
    from pipelines.apply.runner import open_backend

    backend = open_backend(settings)
    try:
        return backend.stored_offsets(settings.estate.pipeline.consumer_group)
    finally:
        backend.close()


def group_members(settings: Settings) -> dict[str, set[tuple[str, int]]]:
    """Static member id → its assigned partitions (empty when the group is rebalancing)."""
    group = settings.estate.pipeline.consumer_group
    admin = _admin(settings)
    try:
        desc = admin.describe_groups([group])[group]
    finally:
        admin.close()
    if desc.get("group_state") != "Stable":
        return {}
    out = {}
    for m in desc.get("members") or []:
        asg = m.get("member_assignment") or {}
        parts = asg.get("assigned_partitions", []) if isinstance(asg, dict) else []
        out[m.get("group_instance_id") or m["member_id"]] = {(a["topic"], p) for a in parts for p in a["partitions"]}
    return out


def java_hash(s: str) -> int:
    h = 0
    for c in s:
        h = (31 * h + ord(c)) & 0xFFFFFFFF
    return h & 0x7FFFFFFF


def coordinator_node(settings: Settings) -> int:
    """The broker coordinating the pipeline's consumer group: the leader of its __consumer_offsets partition."""
    group = settings.estate.pipeline.consumer_group
    admin = _admin(settings)
    try:
        topic = admin.describe_topics(["__consumer_offsets"])[0]
    finally:
        admin.close()
    parts = {p["partition_index"]: p for p in topic["partitions"]}
    return parts[java_hash(group) % len(parts)]["leader_id"]


def inject_poison(settings: Settings, topics: list[str], n: int, rng: random.Random) -> list[tuple[str, int, int]]:
    """`n` records that are not JSON, on random change topics under random keys; their (topic, partition, offset)."""
    from kafka import KafkaProducer

    from pipelines.kafka.security import client_config

    producer = KafkaProducer(**client_config(settings), acks="all")
    try:
        out = []
        for _ in range(n):
            topic = rng.choice(topics)
            key = json.dumps({"id": -rng.randint(1, 10**9)}).encode()
            meta = producer.send(topic, key=key, value=f"poison {uuid.uuid4()} {{not json".encode()).get(timeout=90)
            out.append((meta.topic, meta.partition, meta.offset))
        return out
    finally:
        producer.close()


# ------------------------------------------------------------------------------------------ the checks
def wait_caught_up(settings: Settings, timeout: float = 240.0, quiet_checks: int = 3) -> float:
    """Until the worker group's stored offsets equal the end of every change partition for
    `quiet_checks` consecutive checks 2 s apart (Debezium is asynchronous); returns the seconds taken."""
    t0 = time.monotonic()
    quiet, last_ends = 0, None
    while quiet < quiet_checks:
        if time.monotonic() - t0 > timeout:
            ends = end_offsets(settings, change_topics(settings))
            stored = stored_offsets(settings)
            behind = {tp: (stored.get(tp, 0), e) for tp, e in ends.items() if stored.get(tp, 0) != e}
            raise AssertionError(f"the worker group did not catch up within {timeout:.0f}s: {behind}")
        ends = end_offsets(settings, change_topics(settings))
        stored = stored_offsets(settings)
        done = bool(ends) and all(stored.get(tp, 0) == e for tp, e in ends.items())
        quiet = quiet + 1 if done and ends == last_ends else (1 if done else 0)
        last_ends = ends
        time.sleep(2)
    return time.monotonic() - t0


def reconciled(settings: Settings, timeout: float = 240.0) -> dict:
    """Reconcile every table; while differences remain (changes still arriving) catch up and again,
    until `timeout`. Returns tables, source rows compared, differences and rounds."""
    from pipelines.reconcile import reconcile

    deadline = time.monotonic() + timeout
    rounds = 0
    while True:
        rounds += 1
        results = [r for r in reconcile(settings) if not r.skipped]
        assert results, "nothing was reconciled"
        diffs = sum(r.differences for r in results)
        errors = [f"{r.table}: {r.error}" for r in results if r.error]
        out = {"tables": len(results), "source_rows": sum(r.source_rows for r in results),
               "differences": diffs, "rounds": rounds,
               "bad": [(r.table, r.missing, r.extra, r.different, r.invalid, r.error) for r in results if not r.ok]}
        print(f"reconcile round {rounds}: {out['tables']} tables, {out['source_rows']:,} source rows compared, "
              f"{diffs} difference(s) {errors or ''}")
        if (diffs == 0 and not errors) or time.monotonic() > deadline:
            return out
        time.sleep(5)
        wait_caught_up(settings, timeout=max(30.0, deadline - time.monotonic()))


def dead_letters_once(settings: Settings, injected: list[tuple[str, int, int]]) -> dict:
    """Every injected poison record is a dead letter, and no dead letter is stored twice."""
    from pipelines.apply.runner import open_backend

    backend = open_backend(settings)
    try:
        dups = backend.query("SELECT topic, kafka_partition, kafka_offset, stage, coalesce(target_table, ''), count(*) "
                             "FROM _pipeline.dead_letters GROUP BY 1, 2, 3, 4, 5 HAVING count(*) > 1")
        stored = {(t, p, o) for t, p, o in backend.query(
            "SELECT topic, kafka_partition, kafka_offset FROM _pipeline.dead_letters")}
        total = backend.query("SELECT count(*) FROM _pipeline.dead_letters")[0][0]
    finally:
        backend.close()
    missing = [x for x in injected if x not in stored]
    assert not dups, f"dead letters stored more than once: {dups[:5]}"
    assert not missing, f"poison records without a dead letter: {missing[:5]}"
    return {"injected": len(injected), "stored": total, "duplicated": len(dups)}


def key_order(settings: Settings) -> dict:
    """Read every change topic from the start: each key on one partition, its changes in source-position
    order (first occurrences; a position seen again for the key is a redelivery after a Connect crash)."""
    from kafka import KafkaConsumer, TopicPartition

    from pipelines.cdc.events import DecodeError, EventKind, parse
    from pipelines.kafka.security import client_config

    topics = change_topics(settings)
    ends = end_offsets(settings, topics)
    consumer = KafkaConsumer(**client_config(settings), enable_auto_commit=False, max_poll_records=5000,
                             fetch_max_bytes=32 * 1024 * 1024)
    tps = [TopicPartition(t, p) for (t, p), e in ends.items() if e > 0]
    consumer.assign(tps)
    for tp in tps:
        consumer.seek_to_beginning(tp)
    partitions: dict[tuple[str, bytes], set[int]] = defaultdict(set)
    seen: dict[tuple[str, bytes], set[int]] = defaultdict(set)
    newest: dict[tuple[str, bytes], int] = {}
    records = redelivered = violations = 0
    examples = []
    remaining = {(tp.topic, tp.partition) for tp in tps}
    deadline = time.monotonic() + 300
    try:
        while remaining and time.monotonic() < deadline:
            for msgs in consumer.poll(timeout_ms=1000).values():
                for m in msgs:
                    records += 1
                    if m.key is None:
                        continue
                    k = (m.topic, m.key)
                    partitions[k].add(m.partition)
                    if m.value is None:
                        continue  # tombstone: keyed (checked above), no position
                    try:
                        ev = parse(m.topic, m.partition, m.offset, m.key, m.value, decode_key=False)
                    except DecodeError:
                        continue  # an injected poison record
                    if ev.kind is not EventKind.CHANGE:
                        continue
                    if ev.position in seen[k]:
                        redelivered += 1
                        continue
                    if ev.position < newest.get(k, -1):
                        violations += 1
                        if len(examples) < 5:
                            examples.append((m.topic, m.partition, m.offset, m.key[:60], ev.position, newest[k]))
                    seen[k].add(ev.position)
                    newest[k] = max(newest.get(k, -1), ev.position)
            remaining = {(t, p) for (t, p) in remaining if consumer.position(TopicPartition(t, p)) < ends[(t, p)]}
    finally:
        consumer.close()
    assert not remaining, f"could not read the change topics to their end: {sorted(remaining)[:5]}"
    split = [(t, key[:60], sorted(ps)) for (t, key), ps in partitions.items() if len(ps) > 1]
    assert not split, f"keys on more than one partition: {split[:5]}"
    assert not violations, f"{violations} change(s) out of source order for their key: {examples}"
    return {"records": records, "keys": len(partitions), "redelivered": redelivered, "out_of_order": violations}


def check_topics(settings: Settings) -> None:
    """Every topic has 3 replicas; change topics have the profile's partitions."""
    admin = _admin(settings)
    try:
        topics = admin.describe_topics()
    finally:
        admin.close()
    changes = set(change_topics(settings))
    assert changes, "no change topics"
    for t in topics:
        parts = t["partitions"]
        assert all(len(p["replica_nodes"]) == 3 for p in parts), (t["name"], parts[:1])
        if t["name"] in changes:
            assert len(parts) == PARTITIONS, (t["name"], len(parts))


def wait_replicated(stack, timeout: float = 180.0) -> float:
    """Until every broker is live and no partition is under-replicated or offline; the seconds taken."""
    t0 = time.monotonic()
    while True:
        cs = stack.cluster_status()
        lagging = [(t.topic, t.under_replicated, t.offline) for t in cs.topics if t.under_replicated or t.offline]
        if all(b.live for b in cs.brokers) and not lagging and not cs.problems:
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"cluster not fully replicated after {timeout:.0f}s: {lagging[:5]} {cs.problems}")
        time.sleep(2)


def connect_tasks(stack) -> list[tuple[str, str, str, str]]:
    """(connector, task, state, worker) of every connector task, asked of any live worker."""
    from pipelines.stack.manager import _connect_tasks

    rows, _url = _connect_tasks([w.url for w in stack.connect_workers()])
    return [(t.connector, t.task, t.state, t.worker) for t in rows if t.task != "connector"]


def wait_tasks_on(stack, workers: set[str], timeout: float = 180.0) -> float:
    """Until every connector task is RUNNING on one of `workers`; the seconds taken."""
    t0 = time.monotonic()
    expected = len(stack.settings.estate.services)
    while True:
        tasks = connect_tasks(stack)
        if len(tasks) == expected and all(s == "RUNNING" and w in workers for _c, _t, s, w in tasks):
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"connector tasks not RUNNING on {sorted(workers)} after {timeout:.0f}s: {tasks}")
        for c, _t, s, _w in tasks:
            if s == "FAILED":  # Connect does not restart a failed task by itself
                for w in stack.connect_workers():
                    try:
                        requests.post(f"{w.url}/connectors/{c}/restart?includeTasks=true&onlyFailed=true", timeout=10)
                        break
                    except requests.RequestException:
                        continue
        time.sleep(1)


def wait_group(settings: Settings, ids: set[str], timeout: float = 180.0) -> dict[str, set[tuple[str, int]]]:
    """Until the consumer group is stable with exactly the members `ids`, each holding partitions."""
    t0 = time.monotonic()
    while True:
        members = group_members(settings)
        if set(members) == ids and all(members.values()):
            return members
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"consumer group members {members} are not {sorted(ids)} after {timeout:.0f}s")
        time.sleep(1)


# ------------------------------------------------------------------------------------------ scenarios
@pytest.fixture(scope="module")
def streaming(cluster, tmp_path_factory):
    """Warm-up traffic (so the change topics exist), then the worker group, caught up."""
    from pipelines.stack.bootstrap import service_urls

    settings = cluster.settings
    assert settings.backend == "postgres"
    warm = Traffic(service_urls(cluster), rate=30, duration=6, seed=40)
    warm.start()
    warm.join(timeout=120)
    assert warm.error is None, warm.error
    group = StreamGroup(tmp_path_factory.mktemp("cluster") / "stream.log")
    group.start()
    try:
        ids = {f"{settings.estate.pipeline.consumer_group}-{i}" for i in range(WORKERS)}
        t0 = time.monotonic()
        wait_group(settings, ids)
        wait_caught_up(settings)
        print(f"worker group of {WORKERS} joined and caught up in {time.monotonic() - t0:.0f}s")
        check_topics(settings)
        yield group
    finally:
        import psutil

        workers = [psutil.Process(pid) for pid in group.children().values()] if group.alive() else []
        group.stop()
        print(group.tail(15))
        assert group.proc.returncode == 0, group.tail()
        assert not [w.pid for w in workers if w.is_running() and w.status() != psutil.STATUS_ZOMBIE], \
            "worker processes outlived `reporting stream --workers`"


def run_scenario(stack, group: StreamGroup, name: str, fault, seed: int, duration: float) -> dict:
    """Traffic for `duration` s; `fault(traffic)` runs while it flows (injecting poison records too);
    then the checks. Returns the scenario's figures (also kept in REPORT)."""
    from pipelines.stack.bootstrap import service_urls

    settings = stack.settings
    rng = random.Random(seed)
    topics = change_topics(settings)
    traffic = Traffic(service_urls(stack), rate=30, duration=duration, seed=seed)
    t0 = time.monotonic()
    traffic.start()
    time.sleep(min(5.0, duration / 4))
    injected = inject_poison(settings, topics, 2, rng)
    figures = {"scenario": name}
    figures.update(fault(injected, rng, topics))
    traffic.join(timeout=600)
    assert traffic.error is None, traffic.error
    assert group.alive(), group.tail()
    figures["traffic_ops"] = traffic.report.operations if traffic.report else None
    figures["replicated_s"] = round(wait_replicated(stack), 1)
    figures["catch_up_s"] = round(wait_caught_up(settings), 1)
    rec = reconciled(settings)
    figures["reconcile"] = {k: v for k, v in rec.items() if k != "bad"}
    figures["dead_letters"] = dead_letters_once(settings, injected)
    figures["key_order"] = key_order(settings)
    figures["total_s"] = round(time.monotonic() - t0, 1)
    REPORT.append(figures)
    print(_summary(figures))
    assert rec["differences"] == 0 and not rec["bad"], rec["bad"]
    assert len(group.children()) == WORKERS, group.tail()
    return figures


def wait_failover(stack, victim: int, since: float, timeout: float = 60.0) -> tuple[float, int]:
    """Until the killed node is fenced (not live), leads nothing and no partition is offline: the
    seconds since `since` (the kill) and how many partitions are then under-replicated (their replica
    on the dead node)."""
    while True:
        cs = stack.cluster_status()
        dead = next(b for b in cs.brokers if b.node == victim)
        if not dead.live and dead.leaders == 0 and not any(t.offline for t in cs.topics) and not cs.problems:
            return time.monotonic() - since, sum(len(t.under_replicated) for t in cs.topics)
        if time.monotonic() - since > timeout:
            raise AssertionError(f"node {victim}'s partitions did not fail over within {timeout:.0f}s: {dead}")
        time.sleep(0.5)


def status_cli() -> tuple[int, dict]:
    """`reporting stack status --format json` (the cluster's environment): exit code and its tables."""
    res = subprocess.run([REPORTING, "stack", "status", "--format", "json"], capture_output=True, text=True,
                         timeout=120)
    return res.returncode, json.loads(res.stdout)


def kill_broker(stack, node: int | None = None, outage: float = 12.0):
    def fault(injected, rng, topics):
        victim_id = node or coordinator_node(stack.settings)
        victim = next(b for b in stack.brokers if b.node == victim_id)
        victim.kill()
        t_kill = time.monotonic()
        injected += inject_poison(stack.settings, topics, 2, rng)  # acks=all with 2 of 3 replicas in sync
        failover, under = wait_failover(stack, victim_id, since=t_kill)
        assert under > 0, "a dead node's replicas must show as under-replicated"
        code, tables = status_cli()  # what `reporting stack status` shows meanwhile
        assert code == 1, tables  # a component is down
        row = next(b for b in tables["brokers"] if b["node"] == victim_id)
        assert (row["running"], row["live"], row["leaders"]) == (False, False, 0), row
        assert sum(1 for t in tables["topics"] if t["under_replicated"]) > 0, tables["topics"]
        assert {t["worker"] for t in tables["tasks"]} and all(t["state"] == "RUNNING" for t in tables["tasks"])
        time.sleep(max(0.0, outage - (time.monotonic() - t_kill)))
        victim.start()
        return {"killed_broker": victim_id, "leaders_moved_after_s": round(failover, 1),
                "under_replicated_while_down": under, "broker_back_after_s": round(time.monotonic() - t_kill, 1)}
    return fault


def kill_connect_worker(stack, outage: float = 5.0):
    def fault(injected, rng, topics):
        workers = stack.connect_workers()
        load = defaultdict(int)
        for _c, _t, _s, w in connect_tasks(stack):
            load[w] += 1
        victim = max(workers, key=lambda w: load[w.worker_id])
        survivors = {w.worker_id for w in workers if w is not victim}
        victim.kill()
        moved = wait_tasks_on(stack, survivors)
        injected += inject_poison(stack.settings, topics, 2, rng)
        time.sleep(outage)
        victim.start()
        wait_tasks_on(stack, {w.worker_id for w in workers})
        return {"killed_connect_worker": victim.worker, "tasks_killed": load[victim.worker_id],
                "tasks_moved_after_s": round(moved, 1)}
    return fault


def kill_pipeline_worker(stack, group: StreamGroup, which: int = 0):
    """SIGKILL one worker; its supervisor starts it again under the same static member id, which must
    get the same partitions back and apply them again well within the session timeout (30 s)."""
    def fault(injected, rng, topics):
        settings = stack.settings
        iid = f"{settings.estate.pipeline.consumer_group}-{which}"
        before = wait_group(settings, {f"{settings.estate.pipeline.consumer_group}-{i}" for i in range(WORKERS)})
        mine = before[iid]
        pid = group.children()[iid]
        stored0 = stored_offsets(settings)
        os.kill(pid, signal.SIGKILL)
        t_kill = time.monotonic()
        injected += inject_poison(settings, topics, 2, rng)
        deadline = t_kill + 60
        while group.children().get(iid) in (None, pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert group.children().get(iid) not in (None, pid), group.tail()
        restarted = time.monotonic() - t_kill
        while time.monotonic() < deadline:  # its partitions applied again (traffic keeps them moving)
            stored = stored_offsets(settings)
            if any(stored.get(tp, 0) > stored0.get(tp, 0) for tp in mine):
                break
            time.sleep(0.5)
        resumed = time.monotonic() - t_kill
        after = wait_group(settings, set(before))
        assert after[iid] == mine, f"{iid} got other partitions back: {sorted(after[iid] ^ mine)[:6]}"
        assert resumed < 30, f"{iid} applied its partitions again only {resumed:.0f}s after the kill"
        return {"killed_pipeline_worker": iid, "partitions": len(mine), "worker_restarted_after_s": round(restarted, 1),
                "its_partitions_applied_again_after_s": round(resumed, 1), "same_partitions": True}
    return fault


@pytest.mark.faults
@pytest.mark.slow  # 6–9 min on 2 cores: in `make test-faults`, not in `make test` (CI stays under 40 min)
def test_lose_one_node_of_each_kind_while_traffic_runs(cluster, streaming):
    """One broker, then one Connect worker, then one pipeline worker, each killed and brought back
    while the simulator runs; after each the group catches up and reconcile finds 0 differences."""
    duration = 40 if FULL else 20
    run_scenario(cluster, streaming, "broker (group coordinator) kill -9", kill_broker(cluster, outage=20 if FULL else 12),
                 seed=41, duration=duration)
    run_scenario(cluster, streaming, "connect worker kill -9", kill_connect_worker(cluster), seed=42,
                 duration=duration)
    run_scenario(cluster, streaming, "pipeline worker kill -9", kill_pipeline_worker(cluster, streaming),
                 seed=43, duration=duration)


def kill_all_three(stack, group: StreamGroup, rnd: int):
    """A broker (a different one every round), the busiest Connect worker and a pipeline worker killed
    together while traffic runs, brought back after 15 s."""
    def together(injected, rng, topics):
        settings = stack.settings
        victim = next(b for b in stack.brokers if b.node == rnd % len(stack.brokers) + 1)
        workers = stack.connect_workers()
        load = defaultdict(int)
        for _c, _t, _s, w in connect_tasks(stack):
            load[w] += 1
        cvictim = max(workers, key=lambda w: load[w.worker_id])
        iid = f"{settings.estate.pipeline.consumer_group}-{rnd % WORKERS}"
        pid = group.children()[iid]
        t_kill = time.monotonic()
        victim.kill()
        cvictim.kill()
        os.kill(pid, signal.SIGKILL)
        injected += inject_poison(settings, topics, 2, rng)
        moved = wait_tasks_on(stack, {w.worker_id for w in workers if w is not cvictim})
        time.sleep(max(0.0, 15 - (time.monotonic() - t_kill)))
        victim.start(wait=False)  # the broker rejoins while the Connect worker starts
        cvictim.start()
        victim.wait_ready()
        wait_tasks_on(stack, {w.worker_id for w in workers})
        wait_group(settings, {f"{settings.estate.pipeline.consumer_group}-{i}" for i in range(WORKERS)})
        return {"killed_broker": victim.node, "killed_connect_worker": cvictim.worker,
                "killed_pipeline_worker": iid, "tasks_moved_after_s": round(moved, 1),
                "all_back_after_s": round(time.monotonic() - t_kill, 1)}
    return together


@pytest.mark.faults  # in `make test` (~6.5 min with the cluster's start, 2026-12-02) and `make test-faults`
def test_lose_a_broker_a_connect_worker_and_a_pipeline_worker_at_once(cluster, streaming):
    """The reduced set `make test` runs: one round of all three killed together, short traffic."""
    run_scenario(cluster, streaming, "broker + connect worker + pipeline worker at once",
                 kill_all_three(cluster, streaming, 0), seed=49, duration=20)


@pytest.mark.faults
@pytest.mark.slow
def test_lose_a_broker_a_connect_worker_and_a_pipeline_worker_at_once_repeatedly(cluster, streaming):
    """`make test-faults`: three rounds, each with a different broker, longer traffic."""
    for rnd in range(3):
        run_scenario(cluster, streaming, f"round {rnd + 1}: broker {rnd + 1} + connect worker + pipeline worker",
                     kill_all_three(cluster, streaming, rnd), seed=50 + rnd, duration=45)
