"""k sweeps: tok/s against num_speculative_tokens per technique × context × concurrency, the best k marked,
with each point's acceptance per position beside it.

A sweep is the cells of one technique that differ only in k: a specdeck run names it in the `sweep` column
(`k = [1, 2, 4, 6, 8]` in a technique); imported rows (no `sweep`) form one per method and k. Only groups with at
least two values of k make a curve. "A sweet spot in draft length" (the MTP-vs-DFlash thread): too short
leaves accepted tokens on the table, too long pays the target for drafts it rejects.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from console.results.columns import eq, normalize
from console.results.derive import _num, speedup_table

CURVE_KEYS: tuple[str, ...] = ("run_id", "model", "precision", "sweep", "context", "concurrency", "category")
CURVE_COLUMNS: tuple[str, ...] = (
    *CURVE_KEYS, "technique", "k", "cell_id", "tok_s", "tok_s_min", "tok_s_max", "speedup", "acceptance_length",
    "per_position", "best")


def _family(row: pd.Series) -> Any:
    """The sweep a speed row belongs to: its `sweep`, or for an import (not a specdeck run) its method."""
    if pd.notna(row["sweep"]):
        return row["sweep"]
    if pd.notna(row["k"]) and str(row["source"]) != "specdeck":
        return row["technique"]
    return pd.NA


def k_curves(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (sweep × context × concurrency × category) and k, sorted by k, with `best` True at the
    k of highest median tok/s in its group (the first such k on a tie); groups with one k are left out."""
    df = normalize(df)
    speed = df[eq(df["measurement"], "speed") & df["k"].notna() & df["tok_s_median"].notna()].copy()
    if speed.empty:
        return pd.DataFrame(columns=list(CURVE_COLUMNS))
    speed["sweep"] = [_family(r) for _, r in speed.iterrows()]
    speed = speed[speed["sweep"].notna()]
    ups = speedup_table(df)
    up = {(r.run_id, r.cell_id, str(r.context), str(r.concurrency), str(r.category)): r.speedup
          for r in ups.itertuples()}
    acc = df[eq(df["measurement"], "acceptance")]
    accept = {(r.run_id, r.cell_id, str(r.context), str(r.concurrency), str(r.category)): (
        r.acceptance_length, r.per_position) for r in acc.itertuples()}
    rows: list[dict[str, Any]] = []
    keys = [speed[c].astype("string").fillna("") for c in CURVE_KEYS]
    for _, group in speed.groupby(keys, sort=False):
        group = group.sort_values(["k", "timestamp"], na_position="first").drop_duplicates("k", keep="last")
        if group["k"].nunique() < 2:
            continue
        best_k = int(group.loc[group["tok_s_median"].astype(float).idxmax(), "k"])
        for _, r in group.iterrows():
            key = (r["run_id"], r["cell_id"], str(r["context"]), str(r["concurrency"]), str(r["category"]))
            al, pos = accept.get(key, (math.nan, pd.NA))
            rows.append({**{c: r[c] for c in CURVE_KEYS}, "technique": r["technique"], "k": int(r["k"]),
                         "cell_id": r["cell_id"], "tok_s": float(r["tok_s_median"]),
                         "tok_s_min": r["tok_s_min"], "tok_s_max": r["tok_s_max"],
                         "speedup": up.get(key, math.nan), "acceptance_length": al, "per_position": pos,
                         "best": int(r["k"]) == best_k})
    return pd.DataFrame(rows, columns=list(CURVE_COLUMNS))


def best_k(curves: pd.DataFrame) -> pd.DataFrame:
    """The best k of each curve, with the range of k measured, how far the worst k fell behind, the runner-up k
    and the best k's margin over it, and whether the repeats separate them (`call`)."""
    cols = ["sweep", "model", "precision", "context", "concurrency", "category", "best_k", "tok_s", "speedup",
            "ks", "worst_tok_s", "next_k", "margin", "call"]
    if curves.empty:
        return pd.DataFrame(columns=cols)
    out = []
    keys = [curves[c].astype("string").fillna("") for c in CURVE_KEYS]
    for _, g in curves.groupby(keys, sort=False):
        b = g[g["best"]].iloc[0]
        others = g[~g["best"]]
        nxt = others.loc[others["tok_s"].astype(float).idxmax()]
        out.append({"sweep": b["sweep"], "model": b["model"], "precision": b["precision"], "context": b["context"],
                    "concurrency": b["concurrency"], "category": b["category"], "best_k": int(b["k"]),
                    "tok_s": b["tok_s"], "speedup": b["speedup"], "ks": ", ".join(str(k) for k in g["k"]),
                    "worst_tok_s": float(g["tok_s"].min()), "next_k": int(nxt["k"]),
                    "margin": float(b["tok_s"]) / float(nxt["tok_s"]) - 1.0, "call": best_k_call(b, others)})
    return pd.DataFrame(out, columns=cols)


def best_k_call(best: pd.Series, others: pd.DataFrame) -> str:
    """Whether the repeats separate the best k from the others: "yes" when its slowest repeat beats every
    other k's fastest; "no: overlap" when they overlap; "? one repeat" with one repeat per point
    (min = max): no spread to judge by, and a few per cent between two k can be the box's noise (docs/models.md:
    the demo's best k changed from run to run)."""
    pts = [best, *(r for _, r in others.iterrows())]
    lo = [_num(r["tok_s_min"]) for r in pts]
    hi = [_num(r["tok_s_max"]) for r in pts]
    if any(math.isnan(v) for v in lo + hi) or all(a == b for a, b in zip(lo, hi, strict=True)):
        return "? one repeat"
    return "yes" if lo[0] > max(hi[1:]) else "no: overlap"
