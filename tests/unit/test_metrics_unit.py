"""The worker's Prometheus metrics: updated as the worker does, scraped over HTTP, parsed as Prometheus does."""

from __future__ import annotations

import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pipelines.metrics import APPLY_BUCKETS, VISIBLE_BUCKETS, PipelineMetrics

pytestmark = pytest.mark.unit


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def scrape(port: int) -> dict[str, dict[tuple, float]]:
    """name -> {sorted label items -> value} for every sample of the endpoint."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return samples


@pytest.fixture
def served():
    clock = FakeClock()
    metrics = PipelineMetrics(group="reporting-pipeline", instance="reporting-stream-1", clock=clock,
                              wall=lambda: 1_700_000_000.0)
    port = metrics.serve(0, "127.0.0.1")  # port 0: a free port chosen by the kernel
    yield metrics, port, clock
    metrics.close()


def test_serve_returns_the_bound_port_and_a_fresh_worker_exports_zero(served):
    metrics, port, _ = served
    assert port > 0
    s = scrape(port)
    assert s["reporting_events_applied_total"][()] == 0
    assert s["reporting_batches_total"][()] == 0
    assert s["reporting_apply_duration_seconds_count"][()] == 0
    assert s["reporting_worker_info"] == {(("group", "reporting-pipeline"), ("instance", "reporting-stream-1")): 1.0}


def test_batches_counters_dead_letters_and_histograms(served):
    metrics, port, _ = served
    metrics.batch_applied(100, 80, {("orders_v1", "contract"): 2, ("orders_v1", "decode"): 1, ("x", "y"): 0},
                          apply_seconds=0.04, commit_to_visible_seconds=[0.2, 0.3, 7.0, 5000.0])
    metrics.batch_applied(50, 50, {("orders_v1", "contract"): 3}, apply_seconds=2.0,
                          commit_to_visible_seconds=None)
    s = scrape(port)
    assert s["reporting_events_applied_total"][()] == 150
    assert s["reporting_rows_applied_total"][()] == 130
    assert s["reporting_batches_total"][()] == 2
    dl = s["reporting_dead_letters_total"]
    assert dl[(("stage", "contract"), ("table", "orders_v1"))] == 5
    assert dl[(("stage", "decode"), ("table", "orders_v1"))] == 1
    assert (("stage", "y"), ("table", "x")) not in dl  # a zero count makes no series
    assert s["reporting_last_batch_timestamp_seconds"][()] == 1_700_000_000.0

    apply = s["reporting_apply_duration_seconds_bucket"]
    assert apply[(("le", "0.025"),)] == 0
    assert apply[(("le", "0.05"),)] == 1
    assert apply[(("le", "2.5"),)] == 2
    assert apply[(("le", "+Inf"),)] == 2
    assert len(apply) == len(APPLY_BUCKETS) + 1
    assert s["reporting_apply_duration_seconds_count"][()] == 2
    assert s["reporting_apply_duration_seconds_sum"][()] == pytest.approx(2.04)

    visible = s["reporting_commit_to_visible_seconds_bucket"]
    assert visible[(("le", "0.1"),)] == 0
    assert visible[(("le", "0.25"),)] == 1  # 0.2
    assert visible[(("le", "0.5"),)] == 2  # 0.3 too
    assert visible[(("le", "10.0"),)] == 3  # 7.0
    assert visible[(("le", "3600.0"),)] == 3
    assert visible[(("le", "+Inf"),)] == 4  # 5000 s: only in +Inf
    assert len(visible) == len(VISIBLE_BUCKETS) + 1
    assert s["reporting_commit_to_visible_seconds_sum"][()] == pytest.approx(5007.5)


def test_a_value_on_a_bucket_bound_counts_in_that_bucket(served):
    metrics, port, _ = served
    metrics.batch_applied(1, 1, {}, apply_seconds=0.5, commit_to_visible_seconds=[1.0])
    s = scrape(port)
    assert s["reporting_apply_duration_seconds_bucket"][(("le", "0.5"),)] == 1  # Prometheus buckets are `<= le`
    assert s["reporting_apply_duration_seconds_bucket"][(("le", "0.25"),)] == 0
    assert s["reporting_commit_to_visible_seconds_bucket"][(("le", "1.0"),)] == 1


def test_lag_and_assignment_follow_rebalances(served):
    metrics, port, _ = served
    metrics.set_assignment([("shop.public.orders", 0), ("shop.public.orders", 1), ("shop.public.lines", 0)])
    metrics.set_lag("shop.public.orders", 0, 12)
    metrics.set_lag("shop.public.orders", 1, 0)
    metrics.set_lag("shop.public.lines", 0, 3)
    s = scrape(port)
    assert s["reporting_assigned_partitions"] == {(("topic", "shop.public.orders"),): 2,
                                                  (("topic", "shop.public.lines"),): 1}
    assert s["reporting_consumer_lag"][(("partition", "0"), ("topic", "shop.public.orders"))] == 12
    assert s["reporting_consumer_lag"][(("partition", "0"), ("topic", "shop.public.lines"))] == 3

    # a rebalance moves orders[1] and the lines topic to another worker: their series disappear here
    metrics.set_assignment([("shop.public.orders", 0)])
    s = scrape(port)
    assert s["reporting_assigned_partitions"] == {(("topic", "shop.public.orders"),): 1}
    assert s["reporting_consumer_lag"] == {(("partition", "0"), ("topic", "shop.public.orders")): 12}

    metrics.set_assignment([])
    s = scrape(port)
    assert "reporting_consumer_lag" not in s
    assert "reporting_assigned_partitions" not in s


def test_freshness_grows_between_batches(served):
    metrics, port, clock = served
    metrics.set_freshness("orders_v1", 1.5)
    metrics.set_freshness("customers_v1", 0.25)
    assert scrape(port)["reporting_freshness_seconds"] == {(("table", "customers_v1"),): 0.25,
                                                           (("table", "orders_v1"),): 1.5}
    clock.now += 10
    assert scrape(port)["reporting_freshness_seconds"][(("table", "orders_v1"),)] == 11.5
    metrics.set_freshness("orders_v1", 0.5)  # the next batch brought newer changes
    assert scrape(port)["reporting_freshness_seconds"][(("table", "orders_v1"),)] == 0.5


def test_two_workers_in_one_process_keep_separate_series():
    a, b = PipelineMetrics("g", "a"), PipelineMetrics("g", "b")
    pa, pb = a.serve(0, "127.0.0.1"), b.serve(0, "127.0.0.1")
    try:
        a.batch_applied(7, 7, {}, apply_seconds=0.01)
        assert scrape(pa)["reporting_events_applied_total"][()] == 7
        assert scrape(pb)["reporting_events_applied_total"][()] == 0
        assert pa != pb
    finally:
        a.close()
        b.close()


def test_metric_names_are_the_documented_ones():
    import pipelines.metrics as module

    m = PipelineMetrics("g", "i")
    names = {f.name for f in m.registry.collect()}
    # counters are listed without their _total suffix, Info without _info
    expected = {"reporting_events_applied", "reporting_rows_applied", "reporting_batches", "reporting_dead_letters",
                "reporting_apply_duration_seconds", "reporting_commit_to_visible_seconds",
                "reporting_last_batch_timestamp_seconds", "reporting_consumer_lag", "reporting_freshness_seconds",
                "reporting_assigned_partitions", "reporting_worker", "reporting_consumer_restarts"}
    assert names == expected
    for name in expected:
        exported = name + ("_total" if name in {"reporting_events_applied", "reporting_rows_applied",
                                                 "reporting_batches", "reporting_dead_letters",
                                                 "reporting_consumer_restarts"} else "")
        exported = exported + ("_info" if name == "reporting_worker" else "")
        assert f"`{exported}`" in module.__doc__, f"{exported} is not documented in pipelines/metrics.py"
