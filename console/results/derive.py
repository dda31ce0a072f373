"""Derived tables: speed-up and accuracy Δ against the AR baseline of the same model, with the noise verdict.

Every comparison names the baseline row it used; a missing baseline is a NaN with a note, never a 1.0. A baseline
counts only when it was measured on the same device (`console.cluster.devices.device_key`: an H100 cell is never
divided by an A100 or H100 PCIe baseline, from another run or another node of a cluster).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from console.cluster.devices import device_key
from console.results.columns import eq, normalize

# A technique row and its baseline must agree on these (model = baseline_model when that is set).
SPEED_KEYS: tuple[str, ...] = ("model", "precision", "context", "concurrency", "category")
ACCURACY_KEYS: tuple[str, ...] = ("model", "precision", "benchmark", "framework")
AR = "ar"


def _text(value: Any) -> str:
    return "" if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)) else str(value)


def _num(value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return math.nan
    return out


def _ref_model(row: pd.Series) -> str:
    return _text(row.get("baseline_model")) or _text(row.get("model"))


def _same(row: pd.Series, cand: pd.DataFrame, cols: Sequence[str], device: bool = True) -> pd.Series:
    """Candidates agreeing with the row on `cols` and, with `device`, measured on the same device."""
    mask = pd.Series(True, index=cand.index)
    if device:
        mask &= cand["device_name"].map(lambda d: device_key(_text(d))) == device_key(_text(row.get("device_name")))
    for col in cols:
        want = _ref_model(row) if col == "model" else _text(row.get(col))
        mask &= cand[col].astype("string").fillna("").map(str) == want
    return mask


def _elsewhere(row: pd.Series, cand: pd.DataFrame, cols: Sequence[str]) -> str:
    """' (one exists on …: not paired across devices)' when baselines exist only on other devices, else ''."""
    others = cand[_same(row, cand, cols, device=False)]
    names = sorted({_text(d) or "an unknown device" for d in others["device_name"]})
    return f" on {_text(row.get('device_name')) or 'an unknown device'} (one exists on {', '.join(names)}: " \
           "not paired across devices)" if names else ""


def _pick(row: pd.Series, cand: pd.DataFrame, prefer: Sequence[str] = ()) -> pd.Series | None:
    """The best baseline among candidates: same run first, then the `prefer` columns equal, then newest."""
    if cand.empty:
        return None
    score = pd.DataFrame(index=cand.index)
    score["run"] = (cand["run_id"].astype("string").fillna("") == _text(row.get("run_id"))).astype(int)
    for i, col in enumerate(prefer):
        score[f"p{i}"] = (cand[col].astype("string").fillna("") == _text(row.get(col))).astype(int)
    score["ts"] = pd.to_datetime(cand["timestamp"], utc=True, errors="coerce")
    best = score.sort_values(list(score.columns), kind="stable", na_position="first").index[-1]
    return cand.loc[best]


def aggregate_categories(df: pd.DataFrame, label: str = "all") -> pd.DataFrame:
    """Mean over prompt categories, per cell × context × concurrency, for speed and acceptance rows.

    Only cells measured in more than one category are aggregated (the thread's "mean across 11 SPEED-Bench
    categories"); the rows get ``category = label`` and a note naming the categories averaged.
    """
    df = normalize(df)
    rows = df[df["measurement"].isin(["speed", "acceptance"]) & df["category"].notna()
              & ~eq(df["category"], label)]
    group = ["run_id", "cell_id", "measurement", "context", "concurrency"]
    out = []
    for _, g in rows.groupby(group, dropna=False, sort=False):
        if g["category"].nunique() < 2:
            continue
        first = g.iloc[0].copy()
        first["category"] = label
        cats = sorted(g["category"].dropna().unique())
        first["notes"] = f"mean over {len(cats)} categories: {', '.join(cats)}"
        for col in ("tok_s_median", "acceptance_length", "draft_acceptance_rate"):
            first[col] = g[col].astype("Float64").mean()
        first["tok_s_min"] = g["tok_s_min"].astype("Float64").min()
        first["tok_s_max"] = g["tok_s_max"].astype("Float64").max()
        first["n"] = g["n"].astype("Int64").sum(min_count=1)
        lists = [json.loads(v) for v in g["per_position"].dropna()]
        if lists:
            width = max(len(v) for v in lists)
            first["per_position"] = json.dumps([
                sum(v[i] for v in lists if i < len(v)) / sum(1 for v in lists if i < len(v))
                for i in range(width)])
        first["timestamp"] = g["timestamp"].dropna().max() if g["timestamp"].notna().any() else pd.NA
        out.append(first)
    return normalize(pd.DataFrame(out)) if out else normalize(df.iloc[0:0])


def speedup_table(df: pd.DataFrame) -> pd.DataFrame:
    """Each non-AR speed row divided by the AR speed row of the same model/precision/context/concurrency/category."""
    df = normalize(df)
    speed = df[eq(df["measurement"], "speed")]
    ar = speed[eq(speed["technique"], AR)]
    rows = []
    for _, row in speed[~eq(speed["technique"], AR)].iterrows():
        base = _pick(row, ar[_same(row, ar, SPEED_KEYS)])
        notes = []
        tok = _num(row["tok_s_median"])
        if base is None:
            notes.append(f"no AR baseline for {_ref_model(row)} {_text(row['precision'])} "
                         f"{_text(row['context'])} c={_text(row['concurrency'])} {_text(row['category'])}".strip()
                         + _elsewhere(row, ar, SPEED_KEYS))
            base_tok, ratio = math.nan, math.nan
        else:
            base_tok = _num(base["tok_s_median"])
            ratio = tok / base_tok if base_tok and not math.isnan(base_tok) else math.nan
            if _text(base["run_id"]) != _text(row["run_id"]):
                notes.append(f"baseline from run {_text(base['run_id'])}")
            if _text(base["tok_s_source"]) != _text(row["tok_s_source"]):
                notes.append("baseline and cell measured by different meters")
            if _text(base["notes"]).startswith("mean over") and _text(base["notes"]) != _text(row["notes"]):
                notes.append("category sets differ")
        if _text(row["tok_s_source"]) == "streaming-import":
            notes.append("tok/s from a streaming client")
        rows.append({
            "run_id": row["run_id"], "cell_id": row["cell_id"], "model": row["model"],
            "precision": row["precision"], "technique": row["technique"], "k": row["k"],
            "context": row["context"], "concurrency": row["concurrency"], "category": row["category"],
            "tok_s": tok, "baseline_cell_id": None if base is None else base["cell_id"],
            "baseline_tok_s": base_tok, "speedup": ratio, "tok_s_source": row["tok_s_source"],
            "note": "; ".join(notes),
        })
    return pd.DataFrame(rows, columns=[
        "run_id", "cell_id", "model", "precision", "technique", "k", "context", "concurrency", "category",
        "tok_s", "baseline_cell_id", "baseline_tok_s", "speedup", "tok_s_source", "note"])


def standard_error(score: float, n: float, stderr: float = math.nan) -> float:
    """The framework's stderr when given, else √(p(1−p)/n); NaN when neither is known."""
    if not math.isnan(stderr):
        return stderr
    if math.isnan(score) or math.isnan(n) or n <= 0:
        return math.nan
    return math.sqrt(score * (1 - score) / n)


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value on the discordant pairs (b, c): a sign test at p = 0.5."""
    n = b + c
    if n == 0:
        return 1.0
    try:
        from scipy.stats import binomtest

        return float(binomtest(min(b, c), n, 0.5).pvalue)
    except ImportError:  # pragma: no cover - scipy comes with the vLLM stack
        tail = sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2**n
        return min(1.0, 2 * tail)


def _paired(items: pd.DataFrame | None, row: pd.Series, base: pd.Series) -> dict[str, Any]:
    empty = {"paired_n": pd.NA, "paired_b": pd.NA, "paired_c": pd.NA, "paired_p": math.nan}
    if items is None or items.empty:
        return empty

    def pick(r: pd.Series) -> pd.Series:
        m = ((items["cell_id"].astype(str) == _text(r["cell_id"]))
             & (items["benchmark"].astype(str) == _text(r["benchmark"]))
             & (items["framework"].astype(str) == _text(r["framework"])))
        if "run_id" in items.columns:
            m &= items["run_id"].astype(str) == _text(r["run_id"])
        sel = items[m].drop_duplicates("item_id", keep="last")
        return sel.set_index(sel["item_id"].astype(str))["correct"].astype(bool)

    tech, ref = pick(row), pick(base)
    shared = tech.index.intersection(ref.index)
    if len(shared) == 0:
        return empty
    t, r = tech[shared], ref[shared]
    b = int((r & ~t).sum())  # baseline right, technique wrong
    c = int((~r & t).sum())  # baseline wrong, technique right
    return {"paired_n": len(shared), "paired_b": b, "paired_c": c, "paired_p": mcnemar_exact(b, c)}


def accuracy_delta_table(df: pd.DataFrame, items: pd.DataFrame | None = None) -> pd.DataFrame:
    """Accuracy of each non-AR cell minus its AR baseline, with SE, SE_Δ and the within-noise verdict.

    Baselines match on model (or baseline_model) / precision / benchmark / framework, preferring the same
    run, context and concurrency. ``items`` (cell_id, benchmark, framework, item_id, correct[, run_id])
    adds an exact McNemar test on the items both cells scored.
    """
    df = normalize(df)
    acc = df[eq(df["measurement"], "accuracy")]
    ar = acc[eq(acc["technique"], AR)]
    rows = []
    for _, row in acc[~eq(acc["technique"], AR)].iterrows():
        base = _pick(row, ar[_same(row, ar, ACCURACY_KEYS)], prefer=("context", "concurrency"))
        p, n = _num(row["score"]), _num(row["n"])
        se = standard_error(p, n, _num(row["stderr"]))
        out: dict[str, Any] = {
            "run_id": row["run_id"], "cell_id": row["cell_id"], "model": row["model"],
            "precision": row["precision"], "technique": row["technique"], "k": row["k"],
            "benchmark": row["benchmark"], "framework": row["framework"], "n": row["n"], "score": p, "se": se,
        }
        if base is None:
            out.update(baseline_cell_id=None, baseline_n=pd.NA, baseline_score=math.nan, baseline_se=math.nan,
                       delta=math.nan, se_delta=math.nan, within_noise=pd.NA,
                       verdict="n/a", note=f"no AR baseline for {_ref_model(row)} {_text(row['benchmark'])}"
                       + _elsewhere(row, ar, ACCURACY_KEYS))
            out.update(_paired(None, row, row))
            rows.append(out)
            continue
        bp, bn = _num(base["score"]), _num(base["n"])
        bse = standard_error(bp, bn, _num(base["stderr"]))
        delta = p - bp
        se_d = math.sqrt(se**2 + bse**2)
        # A Δ of 0 is no difference even when both scores are 0 or 1 (SE_Δ = 0, so |Δ| < 2·SE_Δ cannot hold).
        within: Any = (pd.NA if math.isnan(se_d) or math.isnan(delta)
                       else bool(abs(delta) < 2 * se_d or abs(delta) < 1e-12))
        verdict = "n/a (no n or stderr)" if within is pd.NA else (
            "within noise" if within else "outside noise")
        note = f"baseline from run {_text(base['run_id'])}" if _text(base["run_id"]) != _text(row["run_id"]) else ""
        out.update(baseline_cell_id=base["cell_id"], baseline_n=base["n"], baseline_score=bp, baseline_se=bse,
                   delta=delta, se_delta=se_d, within_noise=within, verdict=verdict, note=note)
        out.update(_paired(items, row, base))
        rows.append(out)
    cols = ["run_id", "cell_id", "model", "precision", "technique", "k", "benchmark", "framework", "n", "score",
            "se", "baseline_cell_id", "baseline_n", "baseline_score", "baseline_se", "delta", "se_delta",
            "within_noise", "verdict", "paired_n", "paired_b", "paired_c", "paired_p", "note"]
    table = pd.DataFrame(rows, columns=cols)
    table["within_noise"] = table["within_noise"].astype("boolean")
    return table


def delta_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per technique × benchmark × framework: cells compared, mean Δ, range, and how many sit within noise."""
    cols = ["technique", "benchmark", "framework", "cells", "mean_delta", "min_delta", "max_delta", "within_noise", "judged"]
    have = table[table["delta"].notna()] if len(table) else table
    if have.empty:
        return pd.DataFrame(columns=cols)
    out = []
    for (tech, bench, fw), g in have.groupby(["technique", "benchmark", "framework"], dropna=False, sort=False):
        judged = g["within_noise"].dropna()
        out.append({"technique": tech, "benchmark": bench, "framework": fw, "cells": len(g), "mean_delta": g["delta"].mean(),
                    "min_delta": g["delta"].min(), "max_delta": g["delta"].max(),
                    "within_noise": int(judged.sum()), "judged": len(judged)})
    return pd.DataFrame(out, columns=cols)
