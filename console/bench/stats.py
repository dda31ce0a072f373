"""Small, pure statistics the bench phases share: spread of repeats, percentiles, divergence of two token
sequences. No I/O here, so every rule is a plain unit test."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Spread:
    """Repeats are reported as median with min and max, never as a lone mean (docs/design.md)."""

    median: float
    min: float
    max: float
    n: int

    def to_dict(self) -> dict[str, float | int]:
        return {"median": self.median, "min": self.min, "max": self.max, "n": self.n}

    def fmt(self, digits: int = 0) -> str:
        """`812 (795–820)` style."""
        if self.n == 0:
            return "-"
        if self.n == 1:
            return f"{self.median:.{digits}f}"
        return f"{self.median:.{digits}f} ({self.min:.{digits}f}–{self.max:.{digits}f})"


def spread(values: Sequence[float]) -> Spread:
    """Median / min / max of `values` (all NaN-free); an empty input gives n=0 and NaNs."""
    vals = [float(v) for v in values]
    if not vals:
        return Spread(math.nan, math.nan, math.nan, 0)
    return Spread(statistics.median(vals), min(vals), max(vals), len(vals))


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile, q in [0, 100] (numpy's default method); NaN when empty."""
    vals = sorted(float(v) for v in values)
    if not vals:
        return math.nan
    if len(vals) == 1:
        return vals[0]
    pos = (len(vals) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(vals) - 1)
    return vals[lo] + (vals[hi] - vals[lo]) * (pos - lo)


def latency_summary(values: Sequence[float]) -> dict[str, float | int]:
    """mean / p50 / p90 / p99 / max of latencies in seconds (NaN when empty)."""
    vals = [float(v) for v in values]
    return {
        "n": len(vals),
        "mean": statistics.fmean(vals) if vals else math.nan,
        "p50": percentile(vals, 50),
        "p90": percentile(vals, 90),
        "p99": percentile(vals, 99),
        "max": max(vals) if vals else math.nan,
    }


def first_divergence(a: Sequence[int], b: Sequence[int]) -> int | None:
    """Index of the first token where `a` and `b` differ; None when identical. When one is a prefix of
    the other, the divergence is at the shorter length (one stopped, the other went on)."""
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    if len(a) != len(b):
        return min(len(a), len(b))
    return None


def throughput(completion_tokens: int, first_send: float, last_response: float) -> float:
    """The one throughput rule: Σ completion_tokens / (last response − first send); 0 for an empty span."""
    wall = last_response - first_send
    return completion_tokens / wall if wall > 0 else 0.0


def nan_to_none(value: float | None) -> float | None:
    """JSON has no NaN: missing values are written as null."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value
