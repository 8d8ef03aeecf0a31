"""`reporting stack up | down | status`: the whole local stack, started and stopped in order.

up:   install what is missing → PostgreSQL clusters (one per service + the reporting backend)
      → MariaDB → Kafka (KRaft) → Kafka Connect → service databases and roles provisioned.
      With the estate's cluster profile (`kafka.local_cluster`, docs/scaling.md): every Kafka node
      (started together: each needs a majority of the controller quorum), then every Connect worker.
down: stops, in reverse order, only what has a pid file in the state folder.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from pipelines.bi.grants import Roles
from pipelines.settings import Settings, reachable_by_others
from pipelines.stack import install, proc
from pipelines.stack import secrets as secrets_mod
from pipelines.stack.errors import StackError
from pipelines.stack.kafka import ConnectWorker, KafkaBroker, cluster_nodes, connect_ports, java_bin
from pipelines.stack.mariadb import MariaDbServer
from pipelines.stack.mariadb import provision_service as provision_mariadb
from pipelines.stack.postgres import PgCluster, provision_reporting
from pipelines.stack.postgres import provision_service as provision_pg

SERVERS_PARENT = Path("/var/tmp")
"""Where Settings.servers_dir puts a state folder's servers folder when postgres/mysql cannot reach the state folder."""
SERVERS_PREFIX = "reporting-servers-"
OWNER_FILE = ".reporting-state"
"""In each servers folder outside its state folder: the absolute path of the state folder that owns it."""


@dataclass(frozen=True)
class Health:
    component: str
    up: bool
    detail: str


class Stack:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings.load()
        s = self.settings
        servers = s.servers_dir
        services = s.estate.services
        self.pg = {svc.name: PgCluster(svc.name, servers / "pg" / svc.name, s.host, svc.port)
                   for svc in services if svc.engine == "postgresql"}
        pg = s.estate.reporting.postgres
        self.reporting_pg = (PgCluster("reporting", servers / "pg" / "reporting", s.host, pg.port, logical=False)
                             if pg else None)
        self.mariadb = {svc.name: MariaDbServer(svc.name, servers / "mariadb" / svc.name, s.host, svc.port)
                        for svc in services if svc.engine == "mariadb"}
        self.brokers = [KafkaBroker(s, n.node_id) for n in cluster_nodes(s)]
        self.kafka = self.brokers[0]  # the single broker (cluster profile: node 1)

    @property
    def clustered(self) -> bool:
        return self.settings.estate.kafka.local_cluster is not None

    def secrets(self, create: bool = False) -> dict[str, str]:
        return secrets_mod.load(self.settings, create=create)

    def connect(self, worker: int = 1) -> ConnectWorker:
        return ConnectWorker(self.settings, secrets_mod.connect_env(self.settings, self.secrets()), worker)

    def connect_workers(self) -> list[ConnectWorker]:
        """Every local Connect worker (one without the cluster profile)."""
        env = secrets_mod.connect_env(self.settings, self.secrets())
        return [ConnectWorker(self.settings, env, i + 1) for i in range(len(connect_ports(self.settings)))]

    def up(self, say: Callable[[str], None] = print) -> None:
        s = self.settings
        self._check_local(s)
        s.state_dir.mkdir(parents=True, exist_ok=True)
        s.state_dir.chmod(0o755)
        self._prepare_servers_dir(say)
        install.ensure_debian_packages(say)
        install.ensure_jvm_artifacts(s, say)
        java_bin()  # fail early, with one line, when Java is missing
        self.secrets(create=True)  # the settings' resolver reads the env_file when asked, so it sees these
        for svc in s.estate.services:
            server = self.pg.get(svc.name) or self.mariadb[svc.name]
            server.init()
            if server.start():
                say(f"started {server.component} on {s.host}:{server.port}")
            provision = provision_pg if svc.engine == "postgresql" else provision_mariadb
            provision(server, svc.database, svc.reader.user, s.secret(svc.reader.password, f"services.{svc.name}.reader"),
                      svc.cdc.user, s.secret(svc.cdc.password, f"services.{svc.name}.cdc"))
        pg = s.estate.reporting.postgres
        if self.reporting_pg is not None and pg is not None:
            self.reporting_pg.init()
            if self.reporting_pg.start():
                say(f"started postgres:reporting on {s.host}:{self.reporting_pg.port}")
            provision_reporting(self.reporting_pg, s.secret(pg.writer.password, "reporting.postgres.writer.password"),
                                s.secret(pg.reader.password, "reporting.postgres.reader.password"), Roles.of(pg))
        self._check_kafka_profile()
        if not self.clustered:
            if self.kafka.start():
                say(f"started kafka on {s.kafka_bootstrap} (KRaft, -Xmx{self.kafka.heap})")
        else:
            self._start_cluster(say)
        for connect in self.connect_workers():
            names_file = connect.root / "secret-names"
            wanted = "\n".join(sorted(connect.env)) + "\n"
            if connect.running_pid() and names_file.exists() and names_file.read_text() != wanted:
                # the worker resolves ${env:...} from the environment it was started with
                say(f"restarting {connect.component}: the estate declares secrets its environment lacks")
                connect.stop()
            if connect.start():
                what = "kafka connect" if not self.clustered else f"kafka connect worker {connect.worker}"
                say(f"started {what} on {connect.url} (-Xmx{connect.heap})")
            names_file.parent.mkdir(parents=True, exist_ok=True)
            names_file.write_text(wanted)

    def _check_kafka_profile(self) -> None:
        """Refuse to start one Kafka profile on a state folder that holds the other's data: the topics,
        Connect's source offsets and the pipeline's stored offsets all live in that data."""
        state = self.settings.state_dir
        single = (state / "kafka" / "data" / "meta.properties").exists()
        nodes = sorted(state.glob("kafka-[0-9]*/data/meta.properties"))
        if self.clustered and single:
            raise StackError(f"{state / 'kafka'} holds a single-broker Kafka's data (topics with one replica): "
                             "`reporting stack reset` before starting the cluster profile (kafka.local_cluster)")
        if not self.clustered and nodes:
            raise StackError(f"{nodes[0].parent.parent} holds a Kafka cluster node's data: `reporting stack reset` "
                             "before starting the single broker (or declare kafka.local_cluster again)")

    def _start_cluster(self, say: Callable[[str], None]) -> None:
        """Every node of the cluster profile: spawned together (a node becomes ready only once a majority
        of the controller quorum runs), then each waited for; then the topics no connector creates."""
        lc = self.settings.estate.kafka.local_cluster
        assert lc is not None
        started = [b for b in self.brokers if b.start(wait=False)]
        for b in started:
            try:
                b.wait_ready()
            except StackError:  # e.g. its port was taken meanwhile: once more, now that the others run
                b.stop()
                b.start()
            say(f"started {b.component} on {b.address} (KRaft node {b.node} of {len(self.brokers)}, "
                f"-Xmx{b.heap})")
        if started:
            say(f"kafka cluster: {len(self.brokers)} nodes, replication factor {lc.replication_factor}, "
                f"min.insync.replicas {lc.min_insync_replicas}, change topics with {lc.partitions} partitions")
        self._create_replicated_topics()

    def _create_replicated_topics(self) -> None:
        """The dead-letter topic and each connector's Kafka signal topic, created with the profile's
        replication (one partition: Debezium reads a signal topic's partition 0 only) before anything
        else can create them with one replica."""
        from kafka import KafkaAdminClient
        from kafka.admin import NewTopic
        from kafka.errors import TopicAlreadyExistsError

        from pipelines.apply.runner import DEAD_LETTER_TOPIC
        from pipelines.connect.client import estate_connectors
        from pipelines.kafka.security import client_config

        lc = self.settings.estate.kafka.local_cluster
        assert lc is not None
        names = [DEAD_LETTER_TOPIC]
        for spec in estate_connectors(self.settings.estate):
            topic = spec["config"].get("signal.kafka.topic")
            if topic:
                names.append(topic)
        admin = KafkaAdminClient(**client_config(self.settings), request_timeout_ms=30000)
        try:
            existing = set(admin.list_topics())
            for name in names:
                if name in existing:
                    continue
                try:
                    admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=lc.replication_factor,
                                                  topic_configs={"min.insync.replicas": str(lc.min_insync_replicas)})])
                except TopicAlreadyExistsError:
                    pass
        finally:
            admin.close()

    @staticmethod
    def _check_local(s: Settings) -> None:
        """The local stack starts servers on this machine only: refuse an estate that points elsewhere."""
        local = ("127.0.0.1", "localhost", "::1")
        e = s.estate
        remote = [f"services.{svc.name}.host={svc.host}" for svc in e.services if svc.host not in local]
        if e.reporting.postgres and e.reporting.postgres.host not in local:
            remote.append(f"reporting.postgres.host={e.reporting.postgres.host}")
        remote += [f"kafka.bootstrap_servers={b}" for b in e.kafka.bootstrap_servers[:1] if b.rpartition(":")[0] not in local]
        if remote:
            raise StackError(f"{e.path}: the local stack only starts servers on this machine, but {remote[0]}; for "
                             "infrastructure you run yourself use `reporting connectors apply` and the other commands")

    def _prepare_servers_dir(self, say: Callable[[str], None]) -> None:
        """Create the servers folder outside the state folder when postgres/mysql cannot reach the latter."""
        s = self.settings
        remove_orphaned_servers_dirs(say)
        servers = s.servers_dir
        if servers == s.state_dir:
            return
        link = s.state_dir / "servers"
        if servers.exists() and not link.is_symlink():
            # The state folder was deleted (`rm -rf .state`): its servers' data is stale (old passwords).
            left = leftover_processes(s)
            if left:
                raise StackError(f"stale servers folder {servers} still has running processes: {left[0]}")
            shutil.rmtree(servers)
        new = not servers.exists()
        servers.mkdir(parents=True, exist_ok=True)
        servers.chmod(0o755)
        if not reachable_by_others(servers):
            raise StackError(f"{servers} is not reachable by the postgres/mysql users: "
                             "set REPORTING_SERVERS_DIR to a folder they can reach")
        claim_servers_dir(servers, s.state_dir)  # so reset, and `up` after `rm -rf .state`, find it
        if not link.is_symlink():
            link.symlink_to(servers, target_is_directory=True)
        if new:
            say(f"{s.state_dir} is not reachable by the postgres/mysql OS users (a 0700 parent): "
                f"their data dirs go to {servers} (linked as {link})")

    def wipe(self, say: Callable[[str], None] = print) -> None:
        """Delete all state except the jars (the stack must be down).

        Also what lies outside the state folder: the servers folders (/var/tmp/reporting-servers-<hash>) of
        this state folder and of every state folder under it (.state/e2e, ...), found by their `servers`
        links, their owner markers and their names; refused, before anything is deleted, while a process
        runs from one. And orphaned servers folders (their marker names a state folder that is gone) that
        no process runs from."""
        s = self.settings
        owned = servers_dirs_of(s.state_dir, s.servers_dir, s.jvm_dir)
        orphans = [d for d in orphaned_servers_dirs() if d not in owned]
        busy = processes_running_from({**owned, **{d: () for d in orphans}})
        for d in owned:
            if d in busy:
                raise StackError(f"servers folder {d} is in use ({busy[d][0]}): stop the stack that runs from it "
                                 f"(`reporting stack down` with its REPORTING_STATE_DIR) and reset again")
        for d in owned:
            shutil.rmtree(d)
            say(f"removed {d}")
        _remove_orphans(orphans, busy, say)
        for child in s.state_dir.iterdir() if s.state_dir.exists() else []:
            if child.name != "jvm" and child != s.jvm_dir:
                shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()

    def remove_servers_dir(self, say: Callable[[str], None] = print) -> None:
        """Delete this state folder's servers folder when it lies outside the state folder (the stack must be
        down); the state folder itself stays (logs, Kafka data). The e2e fixture's teardown calls this."""
        s = self.settings
        servers = s.servers_dir
        if servers == s.state_dir or not servers.exists():
            return
        busy = processes_running_from({servers: (s.state_dir / "servers",)})
        if busy:
            raise StackError(f"servers folder {servers} is in use ({busy[servers][0]})")
        shutil.rmtree(servers)
        say(f"removed {servers}")

    def down(self, say: Callable[[str], None] = print) -> None:
        workers, brokers = self.connect_workers(), list(self.brokers)
        # Connect workers and Kafka nodes of the other profile still running from this state folder (the
        # estate changed while the stack ran): found by their pid files, stopped with the declared ones
        known = {c.pid_file for c in [*workers, *brokers]}
        state = self.settings.state_dir

        def stray(first: Path, pattern: str) -> list[tuple[str, Callable[[], bool]]]:
            files = [f for f in [first, *sorted(state.glob(pattern))] if f not in known and f.exists()]
            return [(f.parent.name, functools.partial(proc.stop_pid, f, f.parent.name, 60)) for f in files]

        for name, stop in [*[(w.component, w.stop) for w in workers],
                           *stray(state / "connect" / "connect.pid", "connect-[0-9]*/connect.pid"),
                           *[(b.component, b.stop) for b in brokers],
                           *stray(state / "kafka" / "kafka.pid", "kafka-[0-9]*/kafka.pid"),
                           *[(f"mariadb:{k}", v.stop) for k, v in self.mariadb.items()],
                           *([("postgres:reporting", self.reporting_pg.stop)] if self.reporting_pg else []),
                           *[(f"postgres:{k}", v.stop) for k, v in self.pg.items()]]:
            if stop():
                say(f"stopped {name}")

    def status(self) -> list[Health]:
        out = []
        for svc, c in self.pg.items():
            out.append(Health(f"postgres:{svc}", c.healthy(), f"{c.host}:{c.port} data={c.data_dir}"))
        c = self.reporting_pg
        if c is not None:
            out.append(Health("postgres:reporting", c.healthy(), f"{c.host}:{c.port} data={c.data_dir}"))
        for svc, m in self.mariadb.items():
            out.append(Health(f"mariadb:{svc}", m.healthy(), f"{m.host}:{m.port} data={m.data_dir}"))
        if not self.clustered:
            out.append(Health("kafka", self.kafka.healthy(), f"{self.settings.kafka_bootstrap} log={self.kafka.log}"))
            conn = self.connect()
            out.append(Health("connect", conn.healthy(), f"{self.settings.connect_url} log={conn.log}"))
            return out
        for b in self.brokers:
            out.append(Health(b.component, b.healthy(), f"{b.address} node {b.node} log={b.log}"))
        for w in self.connect_workers():
            out.append(Health(w.component, w.healthy(), f"{w.url} log={w.log}"))
        return out

    def cluster_status(self) -> ClusterStatus:
        """What the cluster profile's brokers and Connect workers are doing: live brokers and the
        controller, per topic the partition leaders and the under-replicated and offline partitions
        (kafka-python admin metadata), and which Connect worker runs each connector and task (Connect
        REST /connectors/<name>/status, asked of the first worker that answers). What cannot be asked
        is a line in `problems`."""
        problems: list[str] = []
        brokers: list[BrokerState] = []
        topics: list[TopicState] = []
        try:
            live, controller, metadata = _kafka_metadata(self.settings)
        except Exception as exc:  # noqa: BLE001 - every broker down: say so, show the rest
            live, controller, metadata = set(), None, []
            problems.append(f"kafka: no broker answered ({exc.__class__.__name__}: {str(exc)[:120]})")
        leaders: dict[int, int] = {}
        for t in sorted(metadata, key=lambda t: t["name"]):
            parts = sorted(t.get("partitions") or [], key=lambda p: p["partition_index"])
            by_leader: dict[int, int] = {}
            for p in parts:
                if p["leader_id"] >= 0:
                    by_leader[p["leader_id"]] = by_leader.get(p["leader_id"], 0) + 1
                    leaders[p["leader_id"]] = leaders.get(p["leader_id"], 0) + 1
            topics.append(TopicState(
                topic=t["name"], partitions=len(parts),
                replicas=max((len(p["replica_nodes"]) for p in parts), default=0),
                leaders=tuple(sorted(by_leader.items())),
                under_replicated=tuple(p["partition_index"] for p in parts
                                       if len(p["isr_nodes"]) < len(p["replica_nodes"])),
                offline=tuple(p["partition_index"] for p in parts if p["leader_id"] < 0)))
        for b in self.brokers:
            brokers.append(BrokerState(b.node, b.address, b.running_pid() is not None, b.node in live,
                                       controller == b.node, leaders.get(b.node, 0)))
        tasks, where = _connect_tasks([w.url for w in self.connect_workers()])
        if where is None:
            problems.append("kafka connect: no worker answered its REST API")
        return ClusterStatus(tuple(brokers), tuple(topics), tuple(tasks), tuple(problems))


@dataclass(frozen=True)
class BrokerState:
    node: int
    address: str
    running: bool
    """Its process runs (pid file)."""
    live: bool
    """Registered with the controller quorum and not fenced (listed in the cluster's metadata)."""
    controller: bool
    leaders: int
    """Partitions it leads."""


@dataclass(frozen=True)
class TopicState:
    topic: str
    partitions: int
    replicas: int
    leaders: tuple[tuple[int, int], ...]
    """(node, partitions it leads) for every node leading at least one."""
    under_replicated: tuple[int, ...]
    """Partitions with fewer in-sync replicas than replicas."""
    offline: tuple[int, ...]
    """Partitions without a leader."""


@dataclass(frozen=True)
class TaskState:
    connector: str
    task: str
    """"connector" for the connector itself, else the task id."""
    state: str
    worker: str
    """The Connect worker running it (its advertised REST host:port)."""


@dataclass(frozen=True)
class ClusterStatus:
    brokers: tuple[BrokerState, ...]
    topics: tuple[TopicState, ...]
    tasks: tuple[TaskState, ...]
    problems: tuple[str, ...]

    @property
    def healthy(self) -> bool:
        return (not self.problems and all(b.running and b.live for b in self.brokers)
                and not any(t.under_replicated or t.offline for t in self.topics)
                and all(t.state == "RUNNING" for t in self.tasks))


def _kafka_metadata(settings: Settings) -> tuple[set[int], int | None, list[dict]]:
    """(live broker ids, controller id, topics with their partitions) from the cluster's metadata."""
    from kafka import KafkaAdminClient

    from pipelines.kafka.security import client_config

    admin = KafkaAdminClient(**client_config(settings), request_timeout_ms=5000, bootstrap_timeout_ms=8000)
    try:
        cluster = admin.describe_cluster()
        topics = admin.describe_topics()
    finally:
        admin.close()
    live = {b["broker_id"] for b in cluster.get("brokers", []) if not b.get("is_fenced")}
    return live, cluster.get("controller_id"), topics


def _connect_tasks(urls: list[str]) -> tuple[list[TaskState], str | None]:
    """Every connector's and task's state and worker, from the first of `urls` that answers (any
    worker of a Connect group serves the whole group's status); (rows, the URL asked or None)."""
    import requests

    for url in urls:
        try:
            names = requests.get(f"{url}/connectors", timeout=5).json()
            rows = []
            for name in sorted(names):
                body = requests.get(f"{url}/connectors/{name}/status", timeout=5).json()
                c = body.get("connector") or {}
                rows.append(TaskState(name, "connector", c.get("state", "?"), c.get("worker_id", "")))
                for t in sorted(body.get("tasks") or [], key=lambda t: t.get("id", 0)):
                    rows.append(TaskState(name, str(t.get("id")), t.get("state", "?"), t.get("worker_id", "")))
            return rows, url
        except (requests.RequestException, ValueError):
            continue
    return [], None


def leftover_processes(settings: Settings) -> list[str]:
    """Command lines of processes still running out of this state folder (for tests and `down`)."""
    busy = processes_running_from({settings.state_dir: (settings.servers_dir,)})
    return busy.get(settings.state_dir, [])


def processes_running_from(folders: dict[Path, Iterable[Path]]) -> dict[Path, list[str]]:
    """For each folder (with the other paths it is reached by, e.g. its `servers` link): the command lines
    of the processes that name a path inside it. Folders no process runs from are left out."""
    import psutil

    prefixes = {f: {str(p) + os.sep for p in (f, *aliases)} for f, aliases in folders.items()}
    found: dict[Path, list[str]] = {}
    if not prefixes:
        return found
    for p in psutil.process_iter(["pid", "cmdline"]):
        cmd = " ".join(p.info.get("cmdline") or []) + os.sep
        if p.pid == os.getpid():
            continue
        for f, marks in prefixes.items():
            if any(m in cmd for m in marks):
                found.setdefault(f, []).append(f"{p.pid} {cmd[:-1][:160]}")
    return found


# --------------------------------------------------------------------------- servers folders outside the state
def default_servers_dir(state_dir: Path) -> Path:
    """The servers folder Settings.servers_dir picks for `state_dir` when postgres/mysql cannot reach it."""
    digest = hashlib.sha1(str(state_dir).encode()).hexdigest()[:12]  # noqa: S324 - a name, not security
    return SERVERS_PARENT / f"{SERVERS_PREFIX}{digest}"


def claim_servers_dir(servers: Path, state_dir: Path) -> None:
    """Write the marker naming the state folder that owns `servers` (a folder outside it)."""
    marker = servers / OWNER_FILE
    if owner_of(servers) != state_dir:
        marker.write_text(f"{state_dir}\n")


def owner_of(servers: Path) -> Path | None:
    """The state folder named by the marker in `servers`, or None (no marker, unreadable)."""
    try:
        text = (servers / OWNER_FILE).read_text().strip()
    except OSError:
        return None
    return Path(text) if text.startswith("/") else None


def servers_dirs_of(state_dir: Path, own: Path, jvm_dir: Path | None = None,
                    depth: int = 4) -> dict[Path, tuple[Path, ...]]:
    """The existing servers folders outside `state_dir` that belong to it or to a state folder under it
    (down to `depth` levels, not into `jvm_dir`), each with the `servers` links that reach it.

    Found by: `own` (this state folder's servers_dir, also when its link is gone); each `<folder>/servers`
    link whose target's marker names <folder> or that is <folder>'s default servers folder; the default
    servers folder of every folder under `state_dir` (a state folder whose link was never made); every
    folder under SERVERS_PARENT whose marker names `state_dir` or a folder under it. A link to anything
    else (another checkout's folder, `/`) is not followed."""
    found: dict[Path, set[Path]] = {}
    if own != state_dir and own.is_dir():
        found.setdefault(own, set()).add(state_dir / "servers")
    if state_dir.is_dir():
        for dirpath, dirnames, filenames in os.walk(state_dir):  # does not descend into symlinks
            here = Path(dirpath)
            cand = default_servers_dir(here)
            if cand.is_dir():
                found.setdefault(cand, set())
            link = here / "servers"
            if "servers" in (*dirnames, *filenames) and link.is_symlink():
                target = link.resolve()
                if target.is_dir() and target != here and (owner_of(target) == here or target == cand):
                    found.setdefault(target, set()).add(link)
            level = len(here.relative_to(state_dir).parts)
            dirnames[:] = [d for d in dirnames if level < depth and here / d != jvm_dir and d != "jvm"
                           and not (here / d).is_symlink()]
    for d in sorted(SERVERS_PARENT.glob(f"{SERVERS_PREFIX}*")):
        owner = owner_of(d)
        if d.is_dir() and not d.is_symlink() and owner and (owner == state_dir or state_dir in owner.parents):
            found.setdefault(d, set())
    found.pop(state_dir, None)
    return {d: tuple(sorted(links)) for d, links in found.items()}


def orphaned_servers_dirs() -> list[Path]:
    """Servers folders under SERVERS_PARENT whose marker names a state folder that no longer exists
    (`rm -rf .state`, a deleted clone). Folders without a marker are never taken for orphans."""
    out = []
    for d in sorted(SERVERS_PARENT.glob(f"{SERVERS_PREFIX}*")):
        owner = owner_of(d)
        if d.is_dir() and not d.is_symlink() and owner is not None and not owner.exists():
            out.append(d)
    return out


def remove_orphaned_servers_dirs(say: Callable[[str], None] = print) -> None:
    """Delete the orphaned servers folders no process runs from (`stack up` and `stack reset` call this)."""
    orphans = orphaned_servers_dirs()
    _remove_orphans(orphans, processes_running_from({d: () for d in orphans}), say)


def _remove_orphans(orphans: list[Path], busy: dict[Path, list[str]], say: Callable[[str], None]) -> None:
    for d in orphans:
        if d in busy:
            say(f"kept {d} (its state folder {owner_of(d)} is gone, but {busy[d][0]} runs from it)")
            continue
        owner = owner_of(d)
        try:
            shutil.rmtree(d)
        except OSError as exc:  # e.g. another user's folder: not ours to force
            say(f"could not remove {d} (state folder {owner} is gone): {exc}")
        else:
            say(f"removed {d} (its state folder {owner} is gone)")
