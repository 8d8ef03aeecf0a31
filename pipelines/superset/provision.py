"""Provision Superset from files: the reporting database connection (read-only BI role), a dataset per
relation of the BI schema `marts` with the dbt descriptions, and each dashboard file of the estate's
`bi.superset.dashboards` folder with its charts. Idempotent: objects are found by name (database),
schema + table (dataset), slice name (chart) and slug (dashboard) and updated in place, so running it
again, or on a fresh machine, gives the same dashboards.

A dashboard file (YAML, one dashboard each):

    title: Sales                       # dashboard title
    slug: sales                        # its URL: /superset/dashboard/sales/
    rows:                              # layout, top to bottom: chart keys per row (widths add up to 12)
      - [revenue, top_items]
    charts:
      revenue:
        name: Revenue by currency      # the chart's title (unique in Superset)
        dataset: marts.daily_revenue   # schema.table of a relation the BI role reads
        viz_type: table                # any Superset visualisation
        width: 8                       # grid columns of 12 (default 6)
        height: 50                     # grid rows (default 50)
        params: {...}                  # Superset's form data (what "View query"/export show), no datasource
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import yaml

from pipelines.settings import Settings
from pipelines.stack.errors import StackError
from pipelines.superset.api import SupersetApi
from pipelines.superset.dbt_docs import RelationDocs, model_docs

DATABASE_NAME = "reporting"
MART_SCHEMA = "marts"
IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
COLUMN_FIELDS = ("id", "column_name", "type", "verbose_name", "description", "expression", "filterable",
                 "groupby", "is_active", "is_dttm", "python_date_format", "extra", "advanced_data_type")


@dataclass(frozen=True)
class ChartSpec:
    key: str
    name: str
    schema: str
    table: str
    viz_type: str
    params: dict
    width: int = 6
    height: int = 50


@dataclass(frozen=True)
class DashboardSpec:
    path: Path
    title: str
    slug: str
    rows: tuple[tuple[str, ...], ...]
    charts: dict[str, ChartSpec] = field(default_factory=dict)


def load_dashboard(path: Path) -> DashboardSpec:
    """Read and validate one dashboard file; every problem is one line naming the file and the key."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise StackError(f"{path}: cannot read the dashboard file: {str(exc).splitlines()[0]}") from exc
    if not isinstance(data, dict):
        raise StackError(f"{path}: a dashboard file is a mapping with title, slug, rows and charts")
    unknown = set(data) - {"title", "slug", "rows", "charts"}
    if unknown:
        raise StackError(f"{path}: unknown key {sorted(unknown)[0]!r} (expected title, slug, rows, charts)")
    title, slug = data.get("title"), data.get("slug")
    if not isinstance(title, str) or not title.strip():
        raise StackError(f"{path}: title: a non-empty text is required")
    if not isinstance(slug, str) or not SLUG.match(slug):
        raise StackError(f"{path}: slug: {slug!r} must be lower-case letters, digits and '-'")
    charts_raw = data.get("charts")
    if not isinstance(charts_raw, dict) or not charts_raw:
        raise StackError(f"{path}: charts: at least one chart is required")
    charts: dict[str, ChartSpec] = {}
    for key, c in charts_raw.items():
        where = f"{path}: charts.{key}"
        if not isinstance(c, dict):
            raise StackError(f"{where}: a mapping is expected")
        extra = set(c) - {"name", "dataset", "viz_type", "params", "width", "height"}
        if extra:
            raise StackError(f"{where}: unknown key {sorted(extra)[0]!r}")
        dataset = str(c.get("dataset") or "")
        schema, _, table = dataset.partition(".")
        if not (IDENT.match(schema) and IDENT.match(table)):
            raise StackError(f"{where}.dataset: {dataset!r} is not schema.table (lower-case identifiers)")
        if not isinstance(c.get("name"), str) or not c["name"].strip():
            raise StackError(f"{where}.name: a non-empty text is required")
        if not isinstance(c.get("viz_type"), str) or not re.match(r"^[a-z0-9_]+$", c["viz_type"]):
            raise StackError(f"{where}.viz_type: {c.get('viz_type')!r} is not a Superset visualisation name")
        params = c.get("params") or {}
        if not isinstance(params, dict):
            raise StackError(f"{where}.params: a mapping (Superset form data) is expected")
        width, height = c.get("width", 6), c.get("height", 50)
        if not (isinstance(width, int) and 1 <= width <= 12 and isinstance(height, int) and 8 <= height <= 200):
            raise StackError(f"{where}: width must be 1-12 and height 8-200")
        charts[key] = ChartSpec(key, c["name"].strip(), schema, table, c["viz_type"], params, width, height)
    names = [c.name for c in charts.values()]
    if len(set(names)) != len(names):
        raise StackError(f"{path}: two charts share the name {next(n for n in names if names.count(n) > 1)!r}")
    rows_raw = data.get("rows") or [[k] for k in charts]
    rows = []
    placed: list[str] = []
    for i, row in enumerate(rows_raw):
        if not isinstance(row, list) or not row:
            raise StackError(f"{path}: rows[{i}]: a list of chart keys is expected")
        for key in row:
            if key not in charts:
                raise StackError(f"{path}: rows[{i}]: {key!r} is not a chart of this file")
        if sum(charts[k].width for k in row) > 12:
            raise StackError(f"{path}: rows[{i}]: the widths add up to more than 12")
        rows.append(tuple(row))
        placed.extend(row)
    missing = [k for k in charts if k not in placed]
    if missing or len(set(placed)) != len(placed):
        raise StackError(f"{path}: rows: every chart must be placed exactly once ({(missing or placed)[0]!r})")
    return DashboardSpec(path, title.strip(), slug, tuple(rows), charts)


def load_dashboards(folder: Path | None) -> list[DashboardSpec]:
    if folder is None:
        return []
    if not folder.is_dir():
        raise StackError(f"bi.superset.dashboards: {folder} is not a folder")
    specs = [load_dashboard(p) for p in sorted(folder.glob("*.y*ml"))]
    slugs = [s.slug for s in specs]
    if len(set(slugs)) != len(slugs):
        raise StackError(f"{folder}: two dashboard files use the slug {next(s for s in slugs if slugs.count(s) > 1)!r}")
    return specs


def position_json(spec: DashboardSpec, chart_ids: dict[str, int]) -> dict:
    """Superset's dashboard layout (v2): a grid of rows, each with the rows' charts."""
    layout: dict = {
        "DASHBOARD_VERSION_KEY": "v2",
        "ROOT_ID": {"type": "ROOT", "id": "ROOT_ID", "children": ["GRID_ID"]},
        "GRID_ID": {"type": "GRID", "id": "GRID_ID", "children": [], "parents": ["ROOT_ID"]},
        "HEADER_ID": {"id": "HEADER_ID", "type": "HEADER", "meta": {"text": spec.title}},
    }
    for i, row in enumerate(spec.rows):
        row_id = f"ROW-{i + 1}"
        layout["GRID_ID"]["children"].append(row_id)
        layout[row_id] = {"type": "ROW", "id": row_id, "children": [], "parents": ["ROOT_ID", "GRID_ID"],
                          "meta": {"background": "BACKGROUND_TRANSPARENT"}}
        for key in row:
            chart = spec.charts[key]
            cid = f"CHART-{key}"
            layout[row_id]["children"].append(cid)
            layout[cid] = {"type": "CHART", "id": cid, "children": [], "parents": ["ROOT_ID", "GRID_ID", row_id],
                           "meta": {"width": chart.width, "height": chart.height, "chartId": chart_ids[key],
                                    "sliceName": chart.name}}
    return layout


def sqlalchemy_uri(settings: Settings) -> str:
    """The BI connection: the estate's read-only reader role on the PostgreSQL reporting database."""
    pg = settings.estate.reporting.postgres
    if settings.backend != "postgres" or pg is None:
        raise StackError("Superset reads the reporting database over PostgreSQL as the read-only BI role: select "
                         "the PostgreSQL backend (reporting.backend: postgres, or REPORTING_BACKEND=postgres); a "
                         "DuckDB file is for the DuckDB CLI/DBeaver (docs/bi.md)")
    password = settings.secret(pg.reader.password, "reporting.postgres.reader.password")
    return (f"postgresql+psycopg2://{quote(pg.reader.user, safe='')}:{quote(password, safe='')}"
            f"@{pg.host}:{pg.port}/{quote(pg.database, safe='')}")


def ensure_database(api: SupersetApi, uri: str) -> int:
    body = {"database_name": DATABASE_NAME, "sqlalchemy_uri": uri, "expose_in_sqllab": True, "allow_dml": False,
            "allow_ctas": False, "allow_cvas": False, "allow_run_async": False, "allow_file_upload": False,
            "extra": json.dumps({"engine_params": {"connect_args": {"application_name": "superset"}},
                                 "metadata_params": {}, "schemas_allowed_for_file_upload": []})}
    api.call("POST", "/api/v1/database/test_connection/", {k: body[k] for k in ("database_name", "sqlalchemy_uri")})
    found = [d for d in api.list_all("database", ("id", "database_name")) if d["database_name"] == DATABASE_NAME]
    if found:
        api.call("PUT", f"/api/v1/database/{found[0]['id']}", body)
        return int(found[0]["id"])
    return int(api.call("POST", "/api/v1/database/", body)["id"])


def relations(api: SupersetApi, database_id: int, schema: str) -> list[str]:
    """Tables and views of `schema` the BI role can see, as Superset lists them."""
    body = api.call("GET", f"/api/v1/database/{database_id}/tables/?q=(force:!t,schema_name:{schema})")
    return sorted(r["value"] for r in body.get("result") or [])


def ensure_dataset(api: SupersetApi, database_id: int, schema: str, table: str, docs: RelationDocs | None,
                   existing: dict[tuple[str, str], int]) -> int:
    ds_id = existing.get((schema, table))
    if ds_id is None:
        ds_id = int(api.call("POST", "/api/v1/dataset/", {"database": database_id, "schema": schema,
                                                           "table_name": table})["id"])
    else:
        api.call("PUT", f"/api/v1/dataset/{ds_id}/refresh")  # columns as they are now
    current = api.call("GET", f"/api/v1/dataset/{ds_id}")["result"]
    docs = docs or RelationDocs()
    columns = []
    for col in current.get("columns") or []:
        kept = {k: col.get(k) for k in COLUMN_FIELDS if k in col}
        kept["description"] = docs.columns.get(col["column_name"]) or col.get("description")
        columns.append({k: v for k, v in kept.items() if v is not None})
    api.call("PUT", f"/api/v1/dataset/{ds_id}?override_columns=false",
             {"description": docs.description or None, "columns": columns})
    return ds_id


def ensure_dashboard(api: SupersetApi, spec: DashboardSpec, datasets: dict[tuple[str, str], int],
                     existing_dashboards: dict[str, int], existing_charts: dict[str, int]) -> int:
    meta = {"refresh_frequency": 0, "timed_refresh_immune_slices": [], "expanded_slices": {}, "color_scheme": "",
            "label_colors": {}, "native_filter_configuration": [], "cross_filters_enabled": False}
    body = {"dashboard_title": spec.title, "slug": spec.slug, "published": True, "json_metadata": json.dumps(meta)}
    dash_id = existing_dashboards.get(spec.slug)
    if dash_id is None:
        dash_id = int(api.call("POST", "/api/v1/dashboard/", body)["id"])
    chart_ids: dict[str, int] = {}
    for key, chart in spec.charts.items():
        ds_id = datasets.get((chart.schema, chart.table))
        if ds_id is None:
            raise StackError(f"{spec.path}: charts.{key}: {chart.schema}.{chart.table} is not in the reporting "
                             "database yet (build the marts: `reporting dbt build`, then `reporting bi superset provision`)")
        params = {**chart.params, "datasource": f"{ds_id}__table", "viz_type": chart.viz_type}
        cbody = {"slice_name": chart.name, "viz_type": chart.viz_type, "datasource_id": ds_id,
                 "datasource_type": "table", "params": json.dumps(params), "dashboards": [dash_id],
                 "query_context": None}
        cid = existing_charts.get(chart.name)
        if cid is None:
            cid = int(api.call("POST", "/api/v1/chart/", cbody)["id"])
        else:
            api.call("PUT", f"/api/v1/chart/{cid}", cbody)
        chart_ids[key] = cid
    api.call("PUT", f"/api/v1/dashboard/{dash_id}", {**body, "position_json": json.dumps(position_json(spec, chart_ids))})
    return dash_id


@dataclass(frozen=True)
class Provisioned:
    database_id: int
    datasets: dict[tuple[str, str], int]
    dashboards: dict[str, int]


def provision(settings: Settings, api: SupersetApi, dashboards_folder: Path | None,
              say: Callable[[str], None] = print) -> Provisioned:
    specs = load_dashboards(dashboards_folder)  # validate the files before touching Superset
    db_id = ensure_database(api, sqlalchemy_uri(settings))
    pg = settings.estate.reporting.postgres
    say(f"superset: database connection {DATABASE_NAME!r} as {pg.reader.user} (read-only) on {pg.host}:{pg.port}")
    docs = model_docs(settings.estate.dbt_project)
    existing = {(d["schema"], d["table_name"]): int(d["id"])
                for d in api.list_all("dataset", ("id", "schema", "table_name"))}
    wanted = [(MART_SCHEMA, t) for t in relations(api, db_id, MART_SCHEMA)]
    for spec in specs:
        for c in spec.charts.values():
            if (c.schema, c.table) not in wanted and c.table in relations(api, db_id, c.schema):
                wanted.append((c.schema, c.table))
    if not wanted:
        say(f"superset: no relation in {MART_SCHEMA} yet: build the marts (`reporting dbt build`), then "
            "`reporting bi superset provision`")
    datasets: dict[tuple[str, str], int] = {}
    for schema, table in wanted:
        datasets[(schema, table)] = ensure_dataset(api, db_id, schema, table, docs.get(table), existing)
    described = sum(1 for _s, t in wanted if t in docs)
    say(f"superset: {len(datasets)} datasets ({described} with dbt descriptions)")
    charts = {c["slice_name"]: int(c["id"]) for c in api.list_all("chart", ("id", "slice_name"))}
    dashes = {d["slug"]: int(d["id"]) for d in api.list_all("dashboard", ("id", "slug")) if d.get("slug")}
    done: dict[str, int] = {}
    if wanted:
        for spec in specs:
            done[spec.slug] = ensure_dashboard(api, spec, datasets, dashes, charts)
            say(f"superset: dashboard {spec.title!r} ({len(spec.charts)} charts) from {spec.path.name}: "
                f"{api.base}/superset/dashboard/{spec.slug}/")
    return Provisioned(db_id, datasets, done)
