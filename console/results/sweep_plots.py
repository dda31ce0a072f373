"""PNG charts of k sweeps and Pareto frontiers (matplotlib, Agg canvas, one Figure per chart).

Inputs are the tables of ``console.results.sweeps`` and ``console.results.frontiers``; each function writes one
PNG and returns its path, or None when there is nothing to draw.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from console.results.plots import _color, _figure, _save

MAX_CURVES = 12


def _curve_label(r: pd.Series) -> str:
    return f"{r['sweep']} · {r['context']} · c{int(r['concurrency'])}" + (
        f" · {r['category']}" if pd.notna(r["category"]) and str(r["category"]) != "all" else "")


def plot_k_curves(curves: pd.DataFrame, path: Path) -> Path | None:
    """Left: tok/s against k, one line per sweep × context × concurrency, the best k starred. Right: acceptance
    by draft position for each k of each sweep × context (its lowest concurrency)."""
    if curves.empty:
        return None
    fig = _figure(12, width=12.0)
    left, right = fig.subplots(1, 2)
    keys = ["run_id", "model", "precision", "sweep", "context", "concurrency", "category"]
    groups = list(curves.groupby([curves[c].astype("string").fillna("") for c in keys], sort=False))[:MAX_CURVES]
    for _, g in groups:
        g = g.sort_values("k")
        line = left.plot(g["k"], g["tok_s"], marker="o", markersize=3, label=_curve_label(g.iloc[0]))[0]
        b = g[g["best"]].iloc[0]
        left.scatter([b["k"]], [b["tok_s"]], marker="*", s=160, color=line.get_color(), zorder=3,
                     edgecolors="black", linewidths=0.5)
        left.annotate(f"k={int(b['k'])}", (b["k"], b["tok_s"]), textcoords="offset points", xytext=(4, 6),
                      fontsize=7)
    left.set_xlabel("k (num_speculative_tokens)")
    left.set_ylabel("output tok/s (median)")
    left.set_title("tok/s against k (★ = best k)")
    left.set_xticks(sorted(curves["k"].unique()))
    left.legend(fontsize=7)
    lowest = curves.sort_values("concurrency").drop_duplicates(["run_id", "sweep", "context", "category", "k"])
    for (sweep, ctx), g in lowest.groupby(["sweep", "context"], sort=False):
        for _, r in g.sort_values("k").iterrows():
            if pd.isna(r["per_position"]):
                continue
            rates = json.loads(r["per_position"])
            right.plot(range(1, len(rates) + 1), rates, marker="o", markersize=3,
                       label=f"{sweep} · {ctx} · k={int(r['k'])}")
    right.set_xlabel("draft position")
    right.set_ylabel("acceptance rate")
    right.set_ylim(0, 1.05)
    right.set_title("Acceptance by position, per k")
    if right.lines:
        right.legend(fontsize=6)
    return _save(fig, path)


def plot_speed_accuracy(points: pd.DataFrame, path: Path) -> Path | None:
    """Score against tok/s per benchmark (one panel each), frontier points ringed and joined."""
    pts = points[points["tok_s"].notna()]
    if pts.empty:
        return None
    benches = list(pts.groupby(["benchmark", pts["framework"].astype("string").fillna("")], sort=False))[:6]
    fig = _figure(8, width=4.2 * len(benches))
    axes = fig.subplots(1, len(benches), squeeze=False)[0]
    for ax, ((bench, fw), g) in zip(axes, benches, strict=True):
        for _, r in g.iterrows():
            ax.scatter([r["tok_s"]], [r["score"]], color=_color(r["technique"]), s=40 if r["frontier"] else 18,
                       edgecolors="black" if r["frontier"] else "none", linewidths=1.2, zorder=3)
            ax.annotate(str(r["config"]).split(".")[-1], (r["tok_s"], r["score"]), textcoords="offset points",
                        xytext=(3, 3), fontsize=6)
        front = g[g["frontier"]].sort_values("tok_s")
        ax.plot(front["tok_s"], front["score"], color="black", linewidth=0.8, linestyle="--")
        stage = " (smoke)" if (g["stage"] == "smoke").all() else ""
        ax.set_title(f"{bench}{' · ' + fw if fw else ''}{stage}", fontsize=9)
        ax.set_xlabel("tok/s (c=1, shortest context)")
        ax.set_ylabel("score")
    fig.suptitle("Speed × accuracy: ringed = Pareto frontier")
    return _save(fig, path)


def plot_user_total(points: pd.DataFrame, path: Path) -> Path | None:
    """Total tok/s against per-user tok/s, one line per configuration across concurrency (vLLM's
    plot_pareto view), frontier points ringed; one panel per context."""
    if points.empty or points["concurrency"].nunique() < 2:
        return None
    ctxs = list(points.groupby(points["context"].astype("string").fillna(""), sort=False))[:4]
    fig = _figure(8, width=5.5 * len(ctxs))
    axes = fig.subplots(1, len(ctxs), squeeze=False)[0]
    for ax, (ctx, g) in zip(axes, ctxs, strict=True):
        for config, c in g.groupby("config", sort=False):
            c = c.sort_values("concurrency")
            ax.plot(c["per_user_tok_s"], c["total_tok_s"], marker="o", markersize=3,
                    label=str(config).split(".")[-1], color=_color(c["technique"].iloc[0])
                    if g["technique"].nunique() == g["config"].nunique() else None)
            for _, r in c.iterrows():
                ax.annotate(f"c{int(r['concurrency'])}", (r["per_user_tok_s"], r["total_tok_s"]),
                            textcoords="offset points", xytext=(3, 3), fontsize=6)
        front = g[g["frontier"]].sort_values("per_user_tok_s")
        ax.scatter(front["per_user_tok_s"], front["total_tok_s"], s=70, facecolors="none", edgecolors="black",
                   linewidths=1.2, zorder=3, label="Pareto frontier")
        ax.set_xlabel("tok/s per user (total / concurrency)")
        ax.set_ylabel("total tok/s")
        ax.set_title(f"context {ctx}", fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle("Per-user vs total throughput across concurrency")
    return _save(fig, path)
