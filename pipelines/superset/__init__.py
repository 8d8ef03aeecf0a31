"""Apache Superset as the product's first BI tool: its own pinned virtual environment in the state folder,
a generated configuration, the reporting database registered through the read-only BI role, a dataset per
mart with the dbt column descriptions, and the estate's dashboards provisioned from files (docs/bi.md).

Modules: `venv` (install from `requirements.lock`, idempotent), `config` (superset_config.py, secrets,
ports), `server` (up / down / status), `api` (a small REST client), `provision` (database, datasets,
charts, dashboards), `cli` (`reporting bi ...`). Nothing here names an estate's tables: the dashboards
and their charts come from the estate's files (`bi.superset.dashboards`).
"""
