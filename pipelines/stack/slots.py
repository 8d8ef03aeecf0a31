"""Replication slots of the PostgreSQL sources: how much WAL each one keeps.

Operational warning: a slot whose connector is stopped (or failing) keeps every WAL segment since
its `restart_lsn`, until the disk is full. Heartbeats (`heartbeat.interval.ms` + an action query)
keep idle sources' slots moving; `reporting status` warns above REPORTING_WAL_WARN_MB (default 1024).
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class SlotStatus:
    service: str
    slot: str
    active: bool
    retained_bytes: int

    def warning(self, threshold_bytes: int) -> str | None:
        """One line when this slot needs attention, else None (pure)."""
        mb = self.retained_bytes / 2**20
        if self.retained_bytes > threshold_bytes:
            state = "active" if self.active else "INACTIVE (no connector reading it)"
            return (f"{self.service}: slot {self.slot} retains {mb:,.0f} MB of WAL ({state}); "
                    f"threshold {threshold_bytes / 2**20:,.0f} MB")
        return None


def wal_warn_threshold() -> int:
    return int(float(os.environ.get("REPORTING_WAL_WARN_MB", "1024")) * 2**20)


def slot_statuses(stack) -> list[SlotStatus]:
    """Slots of every PostgreSQL source cluster that is running (superuser over the local socket)."""
    out = []
    for service, cluster in stack.pg.items():
        if not cluster.healthy():
            continue
        rows = cluster.psql("SELECT slot_name, active, coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)"
                            "::bigint FROM pg_replication_slots ORDER BY 1")
        for line in filter(None, rows.splitlines()):
            name, active, retained = line.split("|")
            out.append(SlotStatus(service, name, active == "t", int(retained)))
    return out
