"""Percentiles and medians, small enough to read at a glance.

Percentiles interpolate linearly between the two closest ranks (numpy's default), so a p99 of
100 samples lies between the 99th and the 100th value rather than jumping to the maximum.
"""

from __future__ import annotations

from collections.abc import Sequence


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0-100) of ``values``; ``nan`` for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    """The median: every figure of the report is the median of its rounds."""
    return percentile(values, 50)


def fmt(value: float, digits: int = 1) -> str:
    """A number as the table shows it; ``nan`` (nothing measured) as a dash."""
    if value != value:  # nan
        return "—"
    return f"{value:.{digits}f}"
