"""Plain-text and Markdown rendering of small frames: width-aware for terminals, escaped for Markdown.

Frames reach here already formatted as strings (see ``fmt``); this module only lays them out.
"""

from __future__ import annotations

import json
import math
import textwrap
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

Formatter = Callable[[Any], str]


def _missing(v: Any) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))


def num(spec: str, suffix: str = "") -> Formatter:
    """Format numbers with a format spec; missing → ``–``."""
    def f(v: Any) -> str:
        if _missing(v):
            return "–"
        try:
            return format(float(v), spec) + suffix
        except (TypeError, ValueError):
            return str(v)
    return f


def integer(v: Any) -> str:
    return "–" if _missing(v) else str(int(v))


def text(v: Any) -> str:
    return "" if _missing(v) else str(v)


def flag(v: Any) -> str:
    return "–" if _missing(v) else ("yes" if bool(v) else "no")


def positions(v: Any, limit: int = 8) -> str:
    """A JSON list of per-position rates as `0.80 0.62 …`."""
    if _missing(v):
        return "–"
    vals = json.loads(v) if isinstance(v, str) else list(v)
    shown = " ".join(f"{x:.2f}" for x in vals[:limit])
    return shown + (f" …(+{len(vals) - limit})" if len(vals) > limit else "")


def fmt(df: pd.DataFrame, columns: Mapping[str, tuple[str, Formatter]]) -> pd.DataFrame:
    """Select, rename and string-format columns: ``{source: (header, formatter)}``."""
    out = pd.DataFrame(index=df.index)
    for src, (header, f) in columns.items():
        out[header] = [f(v) for v in df[src]] if src in df.columns else ""
    return out.reset_index(drop=True)


def _is_numeric(values: list[str]) -> bool:
    seen = [v for v in values if v not in ("", "–")]
    return bool(seen) and all(v.lstrip("+-−").replace(".", "", 1).rstrip("×%").replace(",", "").isdigit()
                              for v in seen)


def _clip(value: str, width: int) -> str:
    return value if len(value) <= width else value[: max(1, width - 1)] + "…"


def drop_blank(df: pd.DataFrame) -> pd.DataFrame:
    """Leave out columns with nothing to show (every value empty or –)."""
    keep = [c for c in df.columns if any(str(v) not in ("", "–") for v in df[c])]
    return df[keep]


IDENTITY = {"benchmark", "framework", "workload"}
"""Columns never clipped: 'toy-mcq-…' would make three benchmarks look alike. Other columns clip first,
then trailing columns are dropped (and named)."""


def text_table(df: pd.DataFrame, width: int = 120, min_col: int = 6) -> str:
    """A plain table that fits ``width``: long columns are clipped with … (never the identity columns), then
    trailing columns dropped."""
    df = drop_blank(df)
    if df.empty:
        return "(none)\n"
    headers = [str(c) for c in df.columns]
    cells = [[str(v) for v in df[c]] for c in df.columns]
    widths = [max(len(h), *(len(v) for v in col)) for h, col in zip(headers, cells, strict=True)]
    gap = 2

    def total(ws: list[int]) -> int:
        return sum(ws) + gap * (len(ws) - 1)

    floors = [w if h in IDENTITY else min(w, max(min_col, min(len(h), 12)))
              for h, w in zip(headers, widths, strict=True)]
    floors[0] = min(widths[0], max(floors[0], width // 3))  # the first column names the row: clip it last
    while total(widths) > width:  # take one character at a time from the widest clippable column
        i = max(range(len(widths)), key=lambda j: widths[j] - floors[j])
        if widths[i] <= floors[i]:
            break
        widths[i] -= 1
    hidden: list[str] = []
    while total(widths) > width and len(widths) > 1:
        hidden.insert(0, headers.pop())
        cells.pop()
        widths.pop()
    numeric = [_is_numeric(col) for col in cells]

    def line(values: list[str]) -> str:
        parts = []
        for v, w, right in zip(values, widths, numeric, strict=True):
            v = _clip(v, w)
            parts.append(v.rjust(w) if right else v.ljust(w))
        return (" " * gap).join(parts).rstrip()

    out = [line([_clip(h, w) for h, w in zip(headers, widths, strict=True)]),
           line(["─" * w for w in widths])]
    out += [line([col[r] for col in cells]) for r in range(len(df))]
    if hidden:
        out.append(textwrap.fill(f"(+{len(hidden)} column(s) not shown: {', '.join(hidden)} — widen the "
                                 "terminal or use --markdown)", width))
    return "\n".join(out) + "\n"


def md_escape(value: str) -> str:
    return value.replace("|", "\\|").replace("\n", " ")


def md_table(df: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (numbers right-aligned)."""
    df = drop_blank(df)
    if df.empty:
        return "_(none)_\n"
    headers = [str(c) for c in df.columns]
    cols = [[str(v) for v in df[c]] for c in df.columns]
    align = ["---:" if _is_numeric(c) else "---" for c in cols]
    lines = ["| " + " | ".join(md_escape(h) for h in headers) + " |", "|" + "|".join(align) + "|"]
    for r in range(len(df)):
        lines.append("| " + " | ".join(md_escape(c[r]) for c in cols) + " |")
    return "\n".join(lines) + "\n"
