"""How durations and GPU-hours are written for people: every screen and command uses these two."""

from __future__ import annotations


def human_seconds(s: float | None) -> str:
    """'42 s', '12.5 min', '3.2 h' ('unknown' for None)."""
    if s is None:
        return "unknown"
    if s < 90:
        return f"{s:.0f} s" if s >= 10 else f"{s:.1f} s"
    if s < 5400:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def gpu_hours(h: float | None) -> str:
    """'1.25 GPU-h'; '0.053 GPU-h' (two significant digits rather than 0.05); '< 0.01 GPU-h' below that."""
    if h is None:
        return "unknown GPU-h"
    if h >= 0.1:
        return f"{h:.2f} GPU-h"
    return f"{h:.2g} GPU-h" if h >= 0.01 else "< 0.01 GPU-h"
