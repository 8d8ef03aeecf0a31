"""The Dagster UI in a real browser on the real stack: asset graph, a dbt materialization launched by a
click, success polled through the GraphQL API, a screenshot of the asset graph.

Headless Chromium from Debian (`/usr/bin/chromium`) driven by Playwright; Playwright's own browser
download is not used. The UI runs from the e2e state folder and is stopped at the end (no process left).
REPORTING_UPDATE_DOCS_IMAGE=1 also copies the screenshot to docs/img/asset-graph.png.
"""

from __future__ import annotations

import os
import shutil
import time
import urllib.parse
from pathlib import Path

import pytest
import requests

from pipelines.settings import REPO_ROOT

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = REPO_ROOT / "test-artifacts"
DOCS_IMAGE = REPO_ROOT / "docs" / "img" / "asset-graph.png"
DONE = {"SUCCESS", "FAILURE", "CANCELED"}
SHOWN = 'group:"orders_service" or group:"dbt_staging" or group:"dbt_marts"'  # connector, contract tables, dbt


def gql(url: str, query: str, variables: dict | None = None) -> dict:
    r = requests.post(f"{url}/graphql", json={"query": query, "variables": variables or {}}, timeout=30)
    r.raise_for_status()
    body = r.json()
    assert not body.get("errors"), body["errors"]
    return body["data"]


def location_name(url: str) -> str:
    data = gql(url, "{ workspaceOrError { ... on Workspace { locationEntries { name } } } }")
    return data["workspaceOrError"]["locationEntries"][0]["name"]


def launch_job(url: str, job: str) -> str:
    data = gql(url, """mutation($p: ExecutionParams!) { launchRun(executionParams: $p) {
        __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }""",
               {"p": {"selector": {"repositoryLocationName": location_name(url), "repositoryName": "__repository__",
                                   "jobName": job}, "runConfigData": {}}})
    res = data["launchRun"]
    assert res["__typename"] == "LaunchRunSuccess", res
    return res["run"]["runId"]


def runs(url: str) -> list[dict]:
    data = gql(url, "{ runsOrError(limit: 20) { ... on Runs { results { runId jobName status creationTime "
                    "assetSelection { path } tags { key value } } } } }")
    return data["runsOrError"]["results"]


def wait_run(url: str, run_id: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    status = "?"
    while time.monotonic() < deadline:
        status = next((r["status"] for r in runs(url) if r["runId"] == run_id), "?")
        if status in DONE:
            return status
        time.sleep(2)
    raise AssertionError(f"run {run_id} not finished within {timeout:.0f}s (status {status})")


def failure_messages(url: str, run_id: str) -> str:
    data = gql(url, """query($id: ID!) { logsForRun(runId: $id, limit: 500) { ... on EventConnection {
        events { __typename ... on MessageEvent { message } } } } }""", {"id": run_id})
    events = (data["logsForRun"] or {}).get("events") or []
    return "\n".join(e.get("message") or "" for e in events if "Failure" in e["__typename"])[-3000:]


def step_intervals(url: str, run_id: str) -> list[tuple[str, float, float]]:
    data = gql(url, """query($id: ID!) { runOrError(runId: $id) { ... on Run {
        stepStats { stepKey startTime endTime } } } }""", {"id": run_id})
    return [(s["stepKey"], s["startTime"], s["endTime"]) for s in data["runOrError"]["stepStats"]
            if s["startTime"] and s["endTime"]]


def queue_wait(url: str, run_id: str) -> float:
    data = gql(url, """query($id: ID!) { runOrError(runId: $id) { ... on Run { creationTime startTime } } }""",
               {"id": run_id})["runOrError"]
    return (data["startTime"] or data["creationTime"]) - data["creationTime"]


def all_messages(url: str, run_id: str) -> str:
    data = gql(url, """query($id: ID!) { logsForRun(runId: $id, limit: 1000) { ... on EventConnection {
        events { ... on MessageEvent { message } } } } }""", {"id": run_id})
    return "\n".join(e.get("message") or "" for e in (data["logsForRun"] or {}).get("events") or [])


def assert_no_overlap(url: str, run_a: str, run_b: str) -> None:
    """Every step of both runs is in the reporting_db_writer pool (limit 1): none may run at the same time."""
    a, b = step_intervals(url, run_a), step_intervals(url, run_b)
    assert a and b
    for ka, sa, ea in a:
        for kb, sb, eb in b:
            assert ea <= sb or eb <= sa, f"{ka} ({sa:.1f}-{ea:.1f}) overlaps {kb} ({sb:.1f}-{eb:.1f})"


def graph_url(url: str, selection: str) -> str:
    return f"{url}/asset-groups~{urllib.parse.quote(selection)}/"


def dismiss_overlays(page) -> None:
    """Close whatever modal Dagster put up (the community pop-up, a tip): its backdrop would swallow clicks.

    Tries a close-like button in the dialog, then Escape, then a click on the backdrop itself; records
    the dialog's text in the test artifacts so an unexpected one can be identified."""
    import re

    backdrop = page.locator(".bp5-overlay-backdrop")
    for _ in range(6):
        if not backdrop.count() or not backdrop.first.is_visible():
            return
        dialog = page.locator(".bp5-overlay-content, .bp5-dialog").first
        try:
            ARTIFACTS.mkdir(exist_ok=True)
            (ARTIFACTS / "dagster-dismissed-dialogs.txt").open("a").write(dialog.inner_text(timeout=2000)[:500] + "\n--\n")
        except Exception:  # noqa: BLE001 - diagnostics only
            pass
        close = dialog.get_by_role("button", name=re.compile(r"close|dismiss|skip|no thanks|got it|not now|done",
                                                               re.IGNORECASE))
        if close.count():
            close.first.click(timeout=5_000, force=True)
        else:
            page.keyboard.press("Escape")
        page.wait_for_timeout(500)
        if backdrop.count() and backdrop.first.is_visible():
            backdrop.first.click(position={"x": 5, "y": 5}, timeout=5_000, force=True)
            page.wait_for_timeout(500)


def hide_navigation(page) -> None:
    """Cosmetic: more room for the graph."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    dismiss_overlays(page)
    try:
        page.get_by_text("Hide navigation").click(timeout=10_000)
    except PlaywrightTimeout:
        pass


def graph_menu(page, item: str) -> None:
    """A layout choice in the graph's settings menu. Cosmetic (for readable screenshots): when the menu
    cannot be opened or does not offer the item (e.g. the graph is already laid out that way), carry on."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    dismiss_overlays(page)
    # the graph's own settings button exists only once the graph has rendered; before that, the last
    # "settings" icon on the page is the navigation's (it opens the User settings dialog instead)
    page.locator("foreignObject").first.wait_for(timeout=120_000)
    try:
        page.locator('[aria-label="settings"]').last.click(timeout=10_000)
        page.get_by_role("menuitem", name=item).first.click(timeout=10_000)
    except PlaywrightTimeout:
        pass
    page.keyboard.press("Escape")
    dismiss_overlays(page)


def graph_screenshot(browser, url: str, path: Path) -> None:
    """The orders service and every dbt model, vertical, groups expanded, cropped to the graph (2x pixels)."""
    page = browser.new_page(viewport={"width": 2400, "height": 900}, device_scale_factor=2)
    try:
        page.set_default_timeout(60_000)
        page.goto(graph_url(url, SHOWN), wait_until="networkidle")
        graph_menu(page, "Change graph to vertical orientation")
        graph_menu(page, "Expand all groups")
        hide_navigation(page)
        page.reload(wait_until="networkidle")  # lays the expanded graph out to fit the canvas
        page.locator("foreignObject").get_by_text("fct_orders_v2", exact=True).first.wait_for()
        page.wait_for_timeout(1500)
        boxes = [b for b in (fo.bounding_box() for fo in page.locator("foreignObject").all()) if b]
        zoom = page.locator('button:has([aria-label="zoom_in"])').last.bounding_box()
        x0 = max(0, min(b["x"] for b in boxes) - 24)
        y0 = max(0, min(b["y"] for b in boxes) - 24)
        x1 = min(max(b["x"] + b["width"] for b in boxes) + 24, zoom["x"] - 4 if zoom else 2400)
        y1 = max(b["y"] + b["height"] for b in boxes) + 24
        page.screenshot(path=str(path), clip={"x": x0, "y": y0, "width": x1 - x0, "height": y1 - y0})
    finally:
        page.close()


@pytest.fixture
def ui(stack):
    from pipelines.ui import dagster_home, start_ui, stop_ui, ui_processes_left

    settings = stack.settings
    stop_ui(settings, say=lambda _m: None)
    shutil.rmtree(dagster_home(settings), ignore_errors=True)
    try:
        handle = start_ui(settings)
        yield handle
    finally:
        stop_ui(settings)
        assert not ui_processes_left(settings), ui_processes_left(settings)


def test_asset_graph_and_dbt_materialization_from_the_ui(ui):
    from playwright.sync_api import sync_playwright

    url = ui.url
    # the instance has nux disabled: no "Join the Dagster community" dialog, without anyone dismissing it
    assert gql(url, "{ shouldShowNux }")["shouldShowNux"] is False

    # Contract tables first (a run through the queue and the reporting_db_writer pool), so dbt has sources.
    ingest = launch_job(url, "ingest_job")
    assert wait_run(url, ingest, 300) == "SUCCESS", failure_messages(url, ingest)

    ARTIFACTS.mkdir(exist_ok=True)
    started = time.time()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1800, "height": 1050})
            page.set_default_timeout(60_000)
            # The first screen a user sees (the URL `reporting ui` prints): the asset graph, nothing over it.
            page.goto(ui.asset_graph_url, wait_until="networkidle")
            page.locator("foreignObject").first.wait_for()
            page.screenshot(path=str(ARTIFACTS / "dagster-first-screen.png"))
            backdrop = page.locator(".bp5-overlay-backdrop")
            assert not (backdrop.count() and backdrop.first.is_visible()), "a dialog covers the first screen"
            # The asset graph: the orders service (connector + contract tables) and every dbt model.
            page.goto(graph_url(url, SHOWN), wait_until="networkidle")
            hide_navigation(page)
            graph_menu(page, "Change graph to vertical orientation")
            graph_menu(page, "Expand all groups")
            page.reload(wait_until="networkidle")
            for name in ("orders_v1", "orders_v2", "order_lines_v1", "stg_orders", "fct_orders_v1", "fct_orders_v2",
                         "fct_daily_revenue"):
                page.locator("foreignObject").get_by_text(name, exact=True).first.wait_for()

            # A second catch-up holds the reporting_db_writer pool while the dbt run is launched: they take turns.
            second_ingest = launch_job(url, "ingest_job")

            # Materialize the dbt assets from the UI: select them, click, confirm if asked.
            page.goto(graph_url(url, 'group:"dbt_staging" or group:"dbt_marts"'), wait_until="networkidle")
            dismiss_overlays(page)
            page.get_by_role("button", name="Materialize all").click()
            confirm = page.get_by_role("button", name="Confirm")
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                if confirm.count():
                    confirm.click()
                    break
                if any(r["creationTime"] >= started for r in runs(url)):
                    break
                page.wait_for_timeout(500)
            deadline = time.monotonic() + 60
            launched = []
            while not launched and time.monotonic() < deadline:
                launched = [r for r in runs(url) if r["creationTime"] >= started
                            and {"key": "dagster/from_ui", "value": "true"} in r["tags"]]
                page.wait_for_timeout(1000)
            assert launched, "clicking 'Materialize all' launched no run"
            run = launched[0]
            paths = {"/".join(a["path"]) for a in run["assetSelection"] or []}
            assert "dbt/fct_orders_v2" in paths and "dbt/stg_orders" in paths
            status = wait_run(url, run["runId"], 600)
            assert status == "SUCCESS", failure_messages(url, run["runId"])
            assert wait_run(url, second_ingest, 300) == "SUCCESS", failure_messages(url, second_ingest)
            assert_no_overlap(url, second_ingest, run["runId"])
            waited = queue_wait(url, run["runId"])
            if waited > 40:  # the pool_wait_sensor ticks every 15 s: a long wait must carry its explanation
                assert "Waiting for pool reporting_db_writer" in all_messages(url, run["runId"])

            shot = ARTIFACTS / "dagster-asset-graph.png"
            graph_screenshot(browser, url, shot)  # after the run: statuses included
        finally:
            browser.close()
    assert shot.stat().st_size > 20_000
    if os.environ.get("REPORTING_UPDATE_DOCS_IMAGE") == "1":  # refresh the README/docs picture on purpose only
        DOCS_IMAGE.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, DOCS_IMAGE)


LAST = ("last", "last_in_data_collection")


def snapshot_reads(kafka: dict, topic: str, start: dict, timeout: float) -> list[dict]:
    """Snapshot reads (op=r) on `topic` after offsets `start`, until the snapshot's last record (so the
    connector streams again before the test restores its config). `kafka`: client_config(settings)."""
    import json

    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(**kafka, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, start.get(tp.partition, 0))
        deadline = time.monotonic() + timeout
        found: list[dict] = []
        while time.monotonic() < deadline and not any(v["source"].get("snapshot") in LAST for v in found):
            for records in consumer.poll(timeout_ms=1000).values():
                for rec in records:
                    value = json.loads(rec.value) if rec.value else None
                    if value and value.get("op") == "r":
                        found.append(value)
        return found
    finally:
        consumer.close()


def wait_restarted(client, name: str, timeout: float = 120) -> None:
    """After a config PUT the old (possibly FAILED) status lingers a moment: restart failed tasks, poll."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = client.status(name)
        if st.running:
            return
        if st.state == "FAILED" or any(s == "FAILED" for _, s in st.tasks):
            client.restart(name)
        time.sleep(1)
    raise AssertionError(f"connector {name} not RUNNING again: {client.status(name)}")


def test_resnapshot_job_makes_debezium_reread_the_table(stack):
    import dagster as dg
    import psycopg
    from kafka import KafkaConsumer, TopicPartition

    from pipelines.connect.client import client_for
    from pipelines.connect.signals import config_problems
    from pipelines.defs.connectors import connector_specs
    from pipelines.defs.jobs import resnapshot_table_job
    from pipelines.defs.resources import ReportingResource
    from pipelines.kafka.security import client_config

    # The scenario needs the example estate's orders service (its table and columns).
    settings = stack.settings
    client = client_for(settings)
    kafka = client_config(settings)
    original = connector_specs(settings.estate)["orders"]  # its connector file completed from the estate
    orders_url = settings.service_url("orders", driver=False)
    topic = "orders.public.orders"
    with psycopg.connect(orders_url, autocommit=True) as conn:
        conn.execute("INSERT INTO orders (customer_ref, state_code, total_cents, currency_iso, created_ts, modified_ts,"
                     " terms_snapshot) VALUES (7, 10, 1200, 'eur', now(), now(), 'resnapshot') RETURNING id")
    probe = KafkaConsumer(**kafka)
    try:
        ends = {tp.partition: o for tp, o in probe.end_offsets(
            [TopicPartition(topic, p) for p in probe.partitions_for_topic(topic)]).items()}
    finally:
        probe.close()
    # the committed connector file listens on Kafka signals; the estate supplies the brokers
    assert config_problems(original["config"], "blocking") == []
    assert original["config"]["signal.kafka.bootstrap.servers"] == settings.estate.kafka.bootstrap
    with dg.instance_for_test() as instance:
        # a connector that does not listen on Kafka signals: the job refuses, naming what is missing
        deaf = {k: v for k, v in original["config"].items() if not k.startswith("signal.")}
        try:
            client.apply({"name": original["name"], "config": deaf})
            wait_restarted(client, original["name"])
            refused = resnapshot_table_job.execute_in_process(
                run_config={"ops": {"resnapshot_table": {"config": {"table": "orders_v1"}}}},
                resources={"reporting": ReportingResource()}, instance=instance, raise_on_error=False)
            assert not refused.success
            message = refused.get_step_failure_events()[0].step_failure_data.user_failure_data.description
            assert message.startswith("connector orders-cdc is not set up for Kafka signals:")
        finally:
            client.apply(original)
            wait_restarted(client, original["name"])
        try:
            result = resnapshot_table_job.execute_in_process(
                run_config={"ops": {"resnapshot_table": {"config": {"table": "orders_v1",
                                                                      "snapshot_type": "blocking"}}}},
                resources={"reporting": ReportingResource()}, instance=instance)
            assert result.success
            # Right after a restart the connector waits for its first WAL message before streaming (and so
            # before it can pause for the snapshot): one ordinary change gets it there on an idle database.
            with psycopg.connect(orders_url, autocommit=True) as conn:
                conn.execute("UPDATE orders SET modified_ts = now() WHERE terms_snapshot = 'resnapshot'")
            reads = snapshot_reads(kafka, topic, ends, timeout=120)
            assert reads, "Debezium sent no snapshot reads after the signal"
            assert reads[-1]["source"]["snapshot"] in LAST, "the snapshot did not finish in time"
            assert {r["after"]["terms_snapshot"] for r in reads} >= {"resnapshot"}
        finally:
            client.apply(original)
            wait_restarted(client, original["name"])


def test_ui_is_gone_after_stop(stack):
    from pipelines.ui import dagster_home, ui_processes_left

    assert not ui_processes_left(stack.settings)
    assert not Path(dagster_home(stack.settings) / "webserver.pid").exists()
