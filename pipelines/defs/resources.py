"""Dagster resources: configuration read at run time (EnvVar / Settings.load()), never at import."""

from __future__ import annotations

import dagster as dg

from pipelines.settings import Settings


class ReportingResource(dg.ConfigurableResource):
    """Where the reporting DB, Kafka and the state folder are. Empty fields fall back to the
    REPORTING_* environment (pipelines/settings.py), resolved when a run starts."""

    backend: str = ""
    """'duckdb' or 'postgres'; empty = REPORTING_BACKEND (default duckdb)."""
    consumer_group: str = "reporting-pipeline"

    def settings(self) -> Settings:
        import os

        if self.backend:
            os.environ["REPORTING_BACKEND"] = self.backend
        return Settings.load()
