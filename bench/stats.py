"""The measurements' arithmetic: percentiles, medians, call-log timestamps, milliseconds."""

from __future__ import annotations

import math
import statistics
from datetime import datetime


def percentile(values: list[float], p: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return None
    xs = sorted(values)
    if len(xs) == 1:
        return xs[0]
    k = (len(xs) - 1) * p / 100
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def parse_ts(text: str) -> float:
    """Call-log timestamp (UTC ISO with Z) -> epoch seconds."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)
