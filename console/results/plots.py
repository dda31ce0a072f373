"""PNG charts for the Markdown report (matplotlib, Agg canvas, one Figure per chart — no pyplot state).

Each function takes an already-derived table, writes one PNG and returns its path, or None when the table
has nothing to draw. ``available()`` tells the report whether matplotlib is installed at all.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from console import methods

MAX_BARS = 60


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _figure(n_rows: int, width: float = 9.0) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, max(2.6, 0.32 * n_rows + 1.4)), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _color(technique: Any) -> str:
    return methods.color(technique)


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def _label(row: pd.Series, *cols: str) -> str:
    """The cell id plus whichever of ``cols`` it does not already spell out (`…short.c1` needs no `· c1`)."""
    cell = str(row["cell_id"])
    words = set(re.split(r"[._\-]", cell))
    parts = [cell]
    for c in cols:
        v = row.get(c)
        if v is not None and not (isinstance(v, float) and math.isnan(v)) and v is not pd.NA:
            word = f"c{int(v)}" if c == "concurrency" else str(v)
            if word not in words:
                parts.append(word)
    return " · ".join(parts)


def _bar_chart(table: pd.DataFrame, column: str, path: Path,
               draw: Callable[[pd.DataFrame, Any, list[int]], None]) -> Path | None:
    """A horizontal bar chart of the rows of `table` with `column` set (at most MAX_BARS): `draw(rows, ax, y)`
    draws them at y (the first row on top) on a figure sized for them, saved to `path`; None when no row has
    `column`."""
    rows = table[table[column].notna()].head(MAX_BARS)
    if rows.empty:
        return None
    fig = _figure(len(rows))
    draw(rows, fig.add_subplot(), list(range(len(rows)))[::-1])
    return _save(fig, path)


def _cell_ticks(ax: Any, y: list[int], rows: pd.DataFrame) -> None:
    ax.set_yticks(y, [_label(r, "context", "concurrency", "category") for _, r in rows.iterrows()], fontsize=7)


def plot_tok_s(speed: pd.DataFrame, path: Path) -> Path | None:
    """Horizontal bars of median tok/s per cell × context × concurrency, whiskers at min/max repeats."""

    def draw(rows: pd.DataFrame, ax: Any, y: list[int]) -> None:
        med = rows["tok_s_median"].astype(float)
        lo = (med - rows["tok_s_min"].astype(float).fillna(med)).clip(lower=0).to_numpy()
        hi = (rows["tok_s_max"].astype(float).fillna(med) - med).clip(lower=0).to_numpy()
        ax.barh(y, med.to_numpy(), xerr=[lo, hi], color=[_color(t) for t in rows["technique"]], capsize=2)
        _cell_ticks(ax, y, rows)
        ax.set_xlabel("output tok/s (median; whiskers min–max)")
        ax.set_title("Throughput by cell")
        if rows["tok_s_source"].eq("streaming-import").fillna(False).any():
            ax.text(0.99, 0.01, "includes tok/s from a streaming client import", transform=ax.transAxes,
                    ha="right", va="bottom", fontsize=7, color="#a00")

    return _bar_chart(speed, "tok_s_median", path, draw)


def plot_speedup(speedups: pd.DataFrame, path: Path) -> Path | None:
    """Speed-up vs AR per cell, with the 1× line; cells with no baseline are left out of the chart."""

    def draw(rows: pd.DataFrame, ax: Any, y: list[int]) -> None:
        vals = rows["speedup"].astype(float).to_numpy()
        ax.barh(y, vals, color=[_color(t) for t in rows["technique"]])
        for yi, v in zip(y, vals, strict=True):
            ax.text(v, yi, f" {v:.2f}×", va="center", fontsize=7)
        ax.axvline(1.0, color="black", linewidth=0.8)
        _cell_ticks(ax, y, rows)
        ax.set_xlabel("speed-up vs the AR baseline (tok/s ratio)")
        ax.set_title("Speed-up vs AR")
        ax.set_xlim(0, max(vals.max() * 1.15, 1.2))

    return _bar_chart(speedups, "speedup", path, draw)


def plot_acceptance(acceptance: pd.DataFrame, path: Path, limit: int = 12) -> Path | None:
    """Per-position acceptance rate, one line per cell (first concurrency measured)."""
    rows = acceptance[acceptance["per_position"].notna()]
    rows = rows.drop_duplicates(["run_id", "cell_id", "context", "category"]).head(limit)
    if rows.empty:
        return None
    fig = _figure(10, width=8.0)
    ax = fig.add_subplot()
    for _, r in rows.iterrows():
        rates = json.loads(r["per_position"])
        if not rates:
            continue
        al = r["acceptance_length"]
        name = _label(r, "context", "category") + (f" (AL {al:.2f})" if pd.notna(al) else "")
        ax.plot(range(1, len(rates) + 1), rates, marker="o", markersize=3, label=name, color=_color(r["technique"])
                if rows["technique"].nunique() == len(rows) else None)
    ax.set_xlabel("draft position")
    ax.set_ylabel("acceptance rate")
    ax.set_ylim(0, 1.05)
    ax.set_title("Acceptance by position")
    ax.legend(fontsize=7)
    return _save(fig, path)


def plot_accuracy_delta(deltas: pd.DataFrame, path: Path) -> Path | None:
    """Δ accuracy vs AR with ±2·SE_Δ error bars (the within-noise band); cells without SE get a bare dot."""

    def draw(rows: pd.DataFrame, ax: Any, y: list[int]) -> None:
        err = (2 * rows["se_delta"].astype(float)).fillna(0).to_numpy()
        for yi, (_, r), e in zip(y, rows.iterrows(), err, strict=True):
            inside = r["within_noise"]
            color = "#7f7f7f" if pd.isna(inside) else ("#2ca02c" if bool(inside) else "#d62728")
            ax.errorbar([r["delta"]], [yi], xerr=[[e], [e]], fmt="o", color=color, capsize=3, markersize=4)
        ax.axvline(0, color="black", linewidth=0.8)
        labels = [f"{r['cell_id']} · {r['benchmark']} · {r['framework'] if pd.notna(r['framework']) else '?'}"
                  for _, r in rows.iterrows()]
        ax.set_yticks(y, labels, fontsize=7)
        from matplotlib.lines import Line2D

        ax.set_xlabel("Δ accuracy vs AR (error bars ±2·SE_Δ)")
        ax.set_title("Accuracy Δ vs AR")
        ax.legend(handles=[Line2D([], [], marker="o", linestyle="", color=c, label=lab) for c, lab in
                           (("#2ca02c", "within noise"), ("#d62728", "outside noise"), ("#7f7f7f", "no SE (n unknown)"))],
                  fontsize=7, loc="best")

    return _bar_chart(deltas, "delta", path, draw)
