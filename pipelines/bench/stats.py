"""Pure statistics for the benchmarks: percentiles, medians of repeated runs, lag trends.

No I/O here, so it is unit-tested directly (tests/unit/bench). The machine is shared with other
engineers' test runs, so the suite reports medians of repetitions and ratios measured within the
same repetition, never a single absolute time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], p: float) -> float | None:
    """The p-th percentile (0..100) with linear interpolation between closest ranks; None if empty."""
    if not values:
        return None
    if not 0 <= p <= 100:
        raise ValueError(f"percentile {p} outside 0..100")
    xs = sorted(values)
    if len(xs) == 1:
        return float(xs[0])
    rank = (len(xs) - 1) * p / 100.0
    lo = math.floor(rank)
    hi = math.ceil(rank)
    return float(xs[lo] + (xs[hi] - xs[lo]) * (rank - lo))


def median(values: Sequence[float]) -> float | None:
    return percentile(values, 50)


def latency_summary(seconds: Sequence[float]) -> dict:
    """count, p50/p95/p99/max (seconds, 3 decimals) of a latency sample."""
    def r(x: float | None) -> float | None:
        return None if x is None else round(x, 3)

    return {"count": len(seconds), "p50": r(percentile(seconds, 50)), "p95": r(percentile(seconds, 95)),
            "p99": r(percentile(seconds, 99)), "max": r(max(seconds) if seconds else None)}


def spread(values: Sequence[float]) -> dict:
    """Median with min and max of repeated measurements (what the tables and error bars show)."""
    if not values:
        return {"n": 0, "median": None, "min": None, "max": None}
    return {"n": len(values), "median": median(values), "min": float(min(values)), "max": float(max(values))}


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def slope(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope dy/dx of (x, y) points; 0 for fewer than two distinct x."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in points) / sxx


def sustained(lag_points: Sequence[tuple[float, float]], event_rate: float, tolerance: float = 0.05,
              floor_events: float = 2000.0) -> bool:
    """Did a consumer keep up? `lag_points` are (seconds, events behind) over a steady step.

    Kept up when the lag trend over the second half of the step grows by less than `tolerance` of
    the offered event rate and the lag at the end is below `floor_events` or one second of traffic
    (a batch in flight is not a backlog).
    """
    if not lag_points:
        return False
    half = [p for p in lag_points if p[0] >= lag_points[0][0] + (lag_points[-1][0] - lag_points[0][0]) / 2]
    growth = slope(half)
    end_lag = lag_points[-1][1]
    return growth < tolerance * max(event_rate, 1.0) and end_lag <= max(floor_events, event_rate)


def rate(points: Sequence[tuple[float, float]]) -> float:
    """Average rate of a monotonic counter sampled as (seconds, count): (last - first) / elapsed."""
    if len(points) < 2 or points[-1][0] <= points[0][0]:
        return 0.0
    return (points[-1][1] - points[0][1]) / (points[-1][0] - points[0][0])
