"""Replication slots of the PostgreSQL sources: how much WAL each one keeps.

Operational warning: a slot whose connector is stopped (or failing) keeps every WAL segment since
its `restart_lsn`, until the disk is full. Heartbeats (`heartbeat.interval.ms` + an action query)
keep idle sources' slots moving; `reporting status` warns above the estate's pipeline.wal_warn_mb
(default 1024).
"""

from __future__ import annotations

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


def slot_statuses(settings) -> tuple[list[SlotStatus], list[str]]:
    """Replication slots in every PostgreSQL source database of the estate, read as the service's
    declared reader (`pg_replication_slots` is readable by any role). Returns (slots, problems): a
    source that cannot be reached is a problem line naming the service, not an exception."""
    import psycopg

    out, problems = [], []
    for svc in settings.estate.services:
        if svc.engine != "postgresql":
            continue
        try:
            password = settings.secret(svc.reader.password, f"services.{svc.name}.reader.password")
            with psycopg.connect(host=svc.host, port=svc.port, dbname=svc.database, user=svc.reader.user,
                                 password=password, connect_timeout=5) as conn:
                rows = conn.execute(
                    "SELECT slot_name, active, coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::bigint "
                    "FROM pg_replication_slots WHERE database = current_database() ORDER BY 1").fetchall()
        except Exception as exc:  # noqa: BLE001 - reported per service
            problems.append(f"{svc.name} ({svc.host}:{svc.port}): {str(exc).strip().splitlines()[0] if str(exc) else type(exc).__name__}")
            continue
        out.extend(SlotStatus(svc.name, name, bool(active), int(retained)) for name, active, retained in rows)
    return out, problems
