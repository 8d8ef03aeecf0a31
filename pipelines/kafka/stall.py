"""Noticing a Kafka consumer that stopped making progress (pure: the caller brings the clock and the facts).

Seen on 2 busy cores with kafka-python 3.0.12 (2026-12-02): after a new change topic appeared, both
members of a two-worker group joined the new generation and then never received their assignment (no
SyncGroup answer, no error, no timeout), so the group applied nothing for minutes while each worker's
status line said `lag 0`; and once a single stream, idle for ~6 minutes, stopped fetching while its lag
grew. Nothing is lost in either case (positions come from the reporting database), but nothing moves
either. The worker asks `StallWatch.check` at every status line and, when it names a reason, applies what
it holds and opens a new consumer, which joins the group again and seeks to the stored offsets.
"""

from __future__ import annotations

from dataclasses import dataclass

STALL_RESTART_S = 120.0
"""Default bound: a rebalance that has not finished, or records waiting with none fetched, for this long.

A healthy rebalance of this pipeline's group takes seconds (members quiesce one in-flight batch, then
rejoin); 120 s leaves room for a long batch on a loaded machine."""


@dataclass
class StallWatch:
    limit_s: float = STALL_RESTART_S
    _unstable_since: float | None = None
    _waiting_since: float | None = None

    def check(self, now: float, group_stable: bool, lag: int, records_at: float) -> str | None:
        """A reason to restart the consumer, or None.

        `group_stable`: the member has finished its last rebalance (joined and received an assignment,
        possibly empty); `lag`: records between the positions and the ends of the assigned partitions;
        `records_at`: when the last records were returned by a poll (same clock as `now`)."""
        if not group_stable:
            self._waiting_since = None
            if self._unstable_since is None:
                self._unstable_since = now
            if now - self._unstable_since >= self.limit_s:
                return f"the consumer group's rebalance has not finished after {now - self._unstable_since:.0f}s"
            return None
        self._unstable_since = None
        if lag <= 0:
            self._waiting_since = None
            return None
        if self._waiting_since is None:
            self._waiting_since = now
        quiet = now - max(self._waiting_since, records_at)
        if quiet >= self.limit_s:
            return f"{lag:,} records wait on the assigned partitions but none was fetched for {quiet:.0f}s"
        return None

    def rebalancing_for(self, now: float) -> float | None:
        """Seconds since the member started its unfinished rebalance (None: it is stable)."""
        return None if self._unstable_since is None else now - self._unstable_since

    def reset(self) -> None:
        self._unstable_since = None
        self._waiting_since = None
