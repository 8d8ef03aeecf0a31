"""Prometheus metrics of one pipeline worker, served over HTTP for operators (docs/deploy.md §Metrics).

The worker calls `PipelineMetrics` after every applied batch and when it measures lag or its partition
assignment changes; `serve(port)` exposes the worker's own registry at `http://<host>:<port>/metrics`
from a daemon thread (the Kubernetes StatefulSet scrapes port 9464). Pure apart from `serve`: it reads
no environment and no configuration, the caller passes everything.

Metrics (units in the name; counters since the worker started):

| name | type | labels | meaning |
|---|---|---|---|
| `reporting_events_applied_total` | counter | | change events of applied batches (every record counts, also those producing no row) |
| `reporting_rows_applied_total` | counter | | rows written to contract tables |
| `reporting_batches_total` | counter | | batches committed to the reporting database |
| `reporting_dead_letters_total` | counter | `table`, `stage` | events sent to the dead letters, by target (or source) table and stage |
| `reporting_apply_duration_seconds` | histogram | | wall time of one batch's apply transaction, retries included |
| `reporting_commit_to_visible_seconds` | histogram | | from the change's commit in the source database to its batch's commit in the reporting database |
| `reporting_last_batch_timestamp_seconds` | gauge | | Unix time of the last committed batch |
| `reporting_consumer_lag` | gauge | `topic`, `partition` | records between the worker's position and the end of an assigned partition |
| `reporting_freshness_seconds` | gauge | `table` | age of the newest change applied to a contract table; grows between batches |
| `reporting_assigned_partitions` | gauge | `topic` | partitions of the topic assigned to this worker |
| `reporting_consumer_restarts_total` | counter | `reason` | Kafka consumers the worker opened anew after a stall: `rebalance` (a rebalance unfinished for 120 s) or `fetch` (records waiting, none fetched for 120 s) |
| `reporting_worker_info` | info (gauge = 1) | `group`, `instance` | the worker's consumer group and static member id (group.instance.id) |

Histograms are filled in bulk (one lock per batch, not per observation), so a batch of 20,000 events
with per-event latencies costs a few milliseconds.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Iterable, Mapping, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Info
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

APPLY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""Seconds; one apply transaction of a streaming batch takes milliseconds, a large catch-up batch seconds."""

VISIBLE_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
"""Seconds from the source commit to the reporting commit: sub-second when streaming, hours in a backlog."""

DEFAULT_PORT = 9464
"""The metrics port of the worker pods (the port OpenTelemetry's Prometheus exporter uses by convention)."""


class _BulkHistogram(Collector):
    """A label-less histogram that takes a whole batch of observations under one lock."""

    def __init__(self, name: str, documentation: str, buckets: Sequence[float]) -> None:
        self.name = name
        self.documentation = documentation
        self.bounds = tuple(sorted(float(b) for b in buckets))
        self._counts = [0] * (len(self.bounds) + 1)  # the last one is +Inf
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe_many(self, values: Iterable[float]) -> None:
        counts = [0] * len(self._counts)
        total = 0.0
        bounds = self.bounds
        for v in values:
            counts[bisect.bisect_left(bounds, v)] += 1  # first bound >= v: Prometheus buckets are `<= le`
            total += v
        with self._lock:
            for i, c in enumerate(counts):
                self._counts[i] += c
            self._sum += total

    def collect(self):
        with self._lock:
            counts, total = list(self._counts), self._sum
        cumulative, buckets = 0, []
        for bound, c in zip((*self.bounds, float("inf")), counts, strict=True):
            cumulative += c
            buckets.append(("+Inf" if bound == float("inf") else _le(bound), cumulative))
        yield HistogramMetricFamily(self.name, self.documentation, buckets=buckets, sum_value=total)

    def describe(self):
        yield HistogramMetricFamily(self.name, self.documentation, buckets=[("+Inf", 0)], sum_value=0)


class _AgeGauge(Collector):
    """`reporting_freshness_seconds{table}`: the age given at the last batch plus the time since then."""

    def __init__(self, name: str, documentation: str, clock=time.monotonic) -> None:
        self.name = name
        self.documentation = documentation
        self._clock = clock
        self._ages: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def set(self, table: str, seconds: float) -> None:
        with self._lock:
            self._ages[table] = (float(seconds), self._clock())

    def collect(self):
        now = self._clock()
        family = GaugeMetricFamily(self.name, self.documentation, labels=["table"])
        with self._lock:
            items = sorted(self._ages.items())
        for table, (seconds, at) in items:
            family.add_metric([table], max(0.0, seconds + (now - at)))
        yield family

    def describe(self):
        yield GaugeMetricFamily(self.name, self.documentation, labels=["table"])


def _le(bound: float) -> str:
    return repr(float(bound))


class PipelineMetrics:
    """The metrics of one worker, in a registry of its own (several workers in one test process do not
    share series). Thread-safe: the applier thread records batches while the polling thread sets lag."""

    def __init__(self, group: str = "", instance: str = "", clock=time.monotonic, wall=time.time) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._wall = wall
        self.events = Counter("reporting_events_applied", "Change events of applied batches.", registry=r)
        self.rows = Counter("reporting_rows_applied", "Rows written to contract tables.", registry=r)
        self.batches = Counter("reporting_batches", "Batches committed to the reporting database.", registry=r)
        self.dead_letters = Counter("reporting_dead_letters", "Events sent to the dead letters.",
                                    ["table", "stage"], registry=r)
        self.last_batch = Gauge("reporting_last_batch_timestamp_seconds", "Unix time of the last committed batch.",
                                registry=r)
        self.lag = Gauge("reporting_consumer_lag", "Records between the position and the end of an assigned partition.",
                         ["topic", "partition"], registry=r)
        self.assigned = Gauge("reporting_assigned_partitions", "Partitions of the topic assigned to this worker.",
                              ["topic"], registry=r)
        self.consumer_restarts = Counter("reporting_consumer_restarts", "Kafka consumers opened anew after a stall "
                                         "(kafka/stall.py).", ["reason"], registry=r)
        self.apply_seconds = _BulkHistogram("reporting_apply_duration_seconds",
                                            "Wall time of one batch's apply transaction, retries included.",
                                            APPLY_BUCKETS)
        self.visible_seconds = _BulkHistogram("reporting_commit_to_visible_seconds",
                                              "From a change's commit in the source database to its batch's commit "
                                              "in the reporting database.", VISIBLE_BUCKETS)
        self.freshness = _AgeGauge("reporting_freshness_seconds",
                                   "Age of the newest change applied to the contract table.", clock=clock)
        r.register(self.apply_seconds)
        r.register(self.visible_seconds)
        r.register(self.freshness)
        self.info = Info("reporting_worker", "The worker's consumer group and static member id.", registry=r)
        self.info.info({"group": group, "instance": instance})
        self._partitions: set[tuple[str, int]] = set()
        self._lock = threading.Lock()
        self._server = None

    # --- what the worker calls -------------------------------------------------------------------
    def batch_applied(self, events: int, rows: int, dead_letters_by_table_stage: Mapping[tuple[str, str], int],
                      apply_seconds: float, commit_to_visible_seconds: Iterable[float] | None = None) -> None:
        """One committed batch: `dead_letters_by_table_stage` maps (table, stage) to a count;
        `commit_to_visible_seconds` holds one latency per change (or per table) when known."""
        self.events.inc(events)
        self.rows.inc(rows)
        self.batches.inc()
        for (table, stage), n in dead_letters_by_table_stage.items():
            if n:
                self.dead_letters.labels(table=table or "", stage=stage or "").inc(n)
        self.apply_seconds.observe_many((apply_seconds,))
        if commit_to_visible_seconds:
            self.visible_seconds.observe_many(commit_to_visible_seconds)
        self.last_batch.set(self._wall())

    def consumer_restarted(self, reason: str) -> None:
        """The worker opened a new Kafka consumer; `reason`: `rebalance` or `fetch`."""
        self.consumer_restarts.labels(reason=reason).inc()

    def set_lag(self, topic: str, partition: int, lag: int) -> None:
        self.lag.labels(topic=topic, partition=str(partition)).set(lag)

    def set_freshness(self, table: str, seconds: float) -> None:
        """Age of the newest change now visible in `table`; the exported value keeps growing until the next call."""
        self.freshness.set(table, seconds)

    def set_assignment(self, partitions: Iterable[tuple[str, int]]) -> None:
        """The partitions assigned now (after a rebalance). Lag series of partitions that moved to another
        worker are removed, so summing lag over all workers counts every partition once."""
        new = {(t, int(p)) for t, p in partitions}
        with self._lock:
            gone, self._partitions = self._partitions - new, new
        for topic, partition in gone:
            try:
                self.lag.remove(topic, str(partition))
            except KeyError:
                pass
        per_topic: dict[str, int] = {}
        for topic, _ in new:
            per_topic[topic] = per_topic.get(topic, 0) + 1
        for topic in {t for t, _ in gone} - set(per_topic):
            try:
                self.assigned.remove(topic)
            except KeyError:
                pass
        for topic, n in per_topic.items():
            self.assigned.labels(topic=topic).set(n)

    # --- the HTTP endpoint -----------------------------------------------------------------------
    def serve(self, port: int = DEFAULT_PORT, host: str = "0.0.0.0") -> int:
        """Serve `/metrics` on host:port from a daemon thread; returns the port (useful with port 0)."""
        from prometheus_client import start_http_server

        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        self._server = server
        return server.server_address[1]

    def close(self) -> None:
        """Stop the HTTP endpoint (a stopping worker process needs no call: the thread is a daemon)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
