"""Reports from master rows: terminal tables (plain text, width-aware) and a Markdown report with PNG plots.

``build`` derives every table once (``ReportData``); ``terminal_report`` and ``markdown_report`` only lay
them out, so the CLI, the TUI and tests see the same numbers.
"""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from console.results import plots
from console.results import tables as t
from console.results.columns import eq, normalize
from console.results.derive import accuracy_delta_table, aggregate_categories, delta_summary, speedup_table
from console.results.frontiers import speed_accuracy, user_vs_total
from console.results.guide import workload_guide
from console.results.roofline import bandwidth_table, roofline_table
from console.results.sweeps import best_k, k_curves

METHOD = (
    "Throughput is Σ completion tokens / wall clock from first send to last response, non-streaming, "
    "`ignore_eos`, fixed output length, prefix caching off, warm-up not counted; median (min–max) over "
    "repeats. Acceptance comes from `/metrics` counters diffed around a quiet phase: acceptance length = "
    "1 + Δaccepted / Δdrafts. Accuracy Δ is against the AR baseline of the same model and precision; "
    "SE = √(p(1−p)/n) unless the framework reports one, SE_Δ = √(SE_a² + SE_b²), and a Δ is *within noise* "
    "when |Δ| < 2·SE_Δ (a Δ of 0 always is, even at SE 0). Roofline ceiling at c=1 = memory bandwidth / "
    "(active params × bytes per param)."
)
STREAMING_NOTE = (
    "{n} speed row(s) come from a streaming client import (`vllm bench serve` `output_throughput` = "
    "Σ output tokens / duration), labelled `streaming-import`. They are comparable with each other; do not "
    "mix them with specdeck's non-streaming meter, and never read a per-token streaming rate "
    "(`max_output_tokens_per_s`, decode tok/s) for a speculative cell: bursts of accepted tokens hide in it."
)


@dataclass
class ReportData:
    """Every table a report shows, derived once from the master rows."""

    rows: pd.DataFrame
    speed: pd.DataFrame
    speedups: pd.DataFrame
    speedups_by_category: pd.DataFrame
    acceptance: pd.DataFrame
    deltas: pd.DataFrame
    summary: pd.DataFrame
    roofline: pd.DataFrame
    other: pd.DataFrame
    guide: pd.DataFrame | None
    bandwidth: dict[str, float]
    notes: list[str] = field(default_factory=list)
    k_curves: pd.DataFrame = field(default_factory=pd.DataFrame)
    """console.results.sweeps.k_curves: tok/s against k, the best k marked."""
    speed_accuracy: pd.DataFrame = field(default_factory=pd.DataFrame)
    """console.results.frontiers.speed_accuracy: score × tok/s per benchmark, frontier marked."""
    user_total: pd.DataFrame = field(default_factory=pd.DataFrame)
    """console.results.frontiers.user_vs_total: per-user × total tok/s across concurrency, frontier marked."""


def collapse_categories(df: pd.DataFrame) -> pd.DataFrame:
    """Replace per-category speed/acceptance rows by their mean where a cell was measured in several."""
    agg = aggregate_categories(df)
    if agg.empty:
        return df
    keys = ["run_id", "cell_id", "measurement", "context", "concurrency"]

    def key(frame: pd.DataFrame) -> pd.Series:
        return frame[keys].astype("string").fillna("").agg("|".join, axis=1)

    drop = df["measurement"].isin(["speed", "acceptance"]) & key(df).isin(set(key(agg)))
    return normalize(pd.concat([df[~drop], agg], ignore_index=True))


def build(df: pd.DataFrame, items: pd.DataFrame | None = None, bandwidth: Mapping[str, float] | None = None,
          guide_rules: Sequence[Mapping[str, Any]] | None = None) -> ReportData:
    rows = normalize(df)
    view = collapse_categories(rows)
    speed = view[eq(view["measurement"], "speed")]
    speedups = speedup_table(view)
    multi = aggregate_categories(rows)
    by_cat = speedup_table(rows) if not multi.empty else speedup_table(rows.iloc[0:0])
    deltas = accuracy_delta_table(rows, items)
    bw = bandwidth_table(bandwidth)
    data = ReportData(
        rows=rows, speed=speed, speedups=speedups, speedups_by_category=by_cat,
        acceptance=view[eq(view["measurement"], "acceptance")], deltas=deltas, summary=delta_summary(deltas),
        roofline=roofline_table(view, bw), other=rows[rows["measurement"].isin(["determinism", "niah"])],
        guide=workload_guide(rows, guide_rules) if guide_rules else None, bandwidth=bw,
        k_curves=k_curves(view), speed_accuracy=speed_accuracy(view), user_total=user_vs_total(view),
    )
    n_stream = int(eq(speed["tok_s_source"], "streaming-import").sum())
    if n_stream:
        data.notes.append(STREAMING_NOTE.format(n=n_stream))
    missing = int(speedups["speedup"].isna().sum())
    if missing:
        data.notes.append(f"{missing} speed-up(s) have no AR baseline (shown as –, never as 1.0).")
    acc = rows[eq(rows["measurement"], "accuracy")]
    bad = acc[(acc["truncations"].fillna(0) > 0) | (acc["blanks"].fillna(0) > 0)
              | (acc["extraction_failures"].fillna(0) > 0)]
    if len(bad):
        data.notes.append(f"{len(bad)} accuracy row(s) counted blanks, extraction failures or truncations "
                          "(see the Accuracy table); they are scored as wrong, not dropped.")
    if eq(rows["source"], "study").any():
        data.notes.append("Rows with source `study` were typed in from a published write-up, not measured here.")
    if not multi.empty:
        data.notes.append("Cells measured in several prompt categories are shown as the mean over categories "
                          "(category `all`); per-category speed-ups are listed separately.")
    return data


# ---- formatted views (shared by the terminal and Markdown renderings) -------------------------------------

def _range(r: pd.Series) -> str:
    lo, hi = r["tok_s_min"], r["tok_s_max"]
    return "–" if pd.isna(lo) or pd.isna(hi) else f"{lo:.1f}–{hi:.1f}"


def speed_view(d: ReportData) -> pd.DataFrame:
    s = d.speed.assign(range=[_range(r) for _, r in d.speed.iterrows()])
    return t.fmt(s, {"cell_id": ("cell", t.text), "technique": ("tech", t.text), "k": ("k", t.integer),
                     "context": ("ctx", t.text), "concurrency": ("c", t.integer), "category": ("category", t.text),
                     "tok_s_median": ("tok/s", t.num(".1f")), "range": ("min–max", t.text),
                     "tok_s_source": ("meter", t.text)})


def speedup_view(frame: pd.DataFrame) -> pd.DataFrame:
    return t.fmt(frame, {"cell_id": ("cell", t.text), "technique": ("tech", t.text), "k": ("k", t.integer),
                         "context": ("ctx", t.text), "concurrency": ("c", t.integer),
                         "category": ("category", t.text), "tok_s": ("tok/s", t.num(".1f")),
                         "baseline_tok_s": ("AR tok/s", t.num(".1f")), "speedup": ("speed-up", t.num(".2f", "×")),
                         "note": ("note", t.text)})


def category_pivot(frame: pd.DataFrame) -> pd.DataFrame:
    """Speed-up by category: rows = cell × concurrency, columns = categories."""
    if frame.empty or frame["category"].isna().all():
        return pd.DataFrame()
    f = frame.assign(row=frame["cell_id"].astype(str) + " c" + frame["concurrency"].astype("string").fillna("?"))
    pv = f.pivot_table(index="row", columns="category", values="speedup", aggfunc="mean", sort=False)
    out = pv.map(lambda v: "–" if pd.isna(v) else f"{v:.2f}×").reset_index().rename(columns={"row": "cell"})
    out.columns.name = None
    return out


def acceptance_view(d: ReportData) -> pd.DataFrame:
    return t.fmt(d.acceptance, {
        "cell_id": ("cell", t.text), "technique": ("tech", t.text), "k": ("k", t.integer),
        "context": ("ctx", t.text), "concurrency": ("c", t.integer), "category": ("category", t.text),
        "acceptance_length": ("accept len", t.num(".2f")), "draft_acceptance_rate": ("draft acc", t.num(".1%")),
        "per_position": ("per position", t.positions)})


def accuracy_view(d: ReportData) -> pd.DataFrame:
    acc = d.rows[eq(d.rows["measurement"], "accuracy")]
    return t.fmt(acc, {"cell_id": ("cell", t.text), "technique": ("tech", t.text),
                       "benchmark": ("benchmark", t.text), "framework": ("framework", t.text),
                       "n": ("n", t.integer), "score": ("score", t.num(".3f")), "stderr": ("stderr", t.num(".3f")),
                       "blanks": ("blank", t.integer), "extraction_failures": ("no answer", t.integer),
                       "truncations": ("truncated", t.integer), "source": ("source", t.text)})


def delta_view(d: ReportData) -> pd.DataFrame:
    cols: dict[str, tuple[str, t.Formatter]] = {
        "cell_id": ("cell", t.text), "benchmark": ("benchmark", t.text), "framework": ("framework", t.text),
        "n": ("n", t.integer), "score": ("score", t.num(".3f")), "baseline_score": ("AR", t.num(".3f")),
        "delta": ("Δ", t.num("+.3f")), "se_delta": ("SE_Δ", t.num(".3f")), "verdict": ("verdict", t.text)}
    if d.deltas["paired_n"].notna().any():
        cols.update({"paired_b": ("AR✓ only", t.integer), "paired_c": ("cell✓ only", t.integer),
                     "paired_p": ("McNemar p", t.num(".3f"))})
    cols["note"] = ("note", t.text)
    return t.fmt(d.deltas, cols)


def summary_view(d: ReportData) -> pd.DataFrame:
    s = d.summary.assign(noise=[f"{w}/{j}" if j else "–" for w, j in zip(d.summary["within_noise"], d.summary["judged"],
                                                            strict=True)])
    return t.fmt(s, {"technique": ("tech", t.text), "benchmark": ("benchmark", t.text),
                     "framework": ("framework", t.text), "cells": ("cells", t.integer),
                     "mean_delta": ("mean Δ", t.num("+.3f")), "min_delta": ("min Δ", t.num("+.3f")),
                     "max_delta": ("max Δ", t.num("+.3f")), "noise": ("within noise", t.text)})


def roofline_view(d: ReportData) -> pd.DataFrame:
    return t.fmt(d.roofline, {  # results first, inputs after: a narrow terminal drops the inputs
        "cell_id": ("cell", t.text), "technique": ("tech", t.text), "context": ("ctx", t.text),
        "category": ("category", t.text), "tok_s": ("tok/s", t.num(".1f")),
        "ceiling_tok_s": ("ceiling", t.num(".1f")), "pct_of_ceiling": ("% ceiling", t.num(".0f", "%")),
        "device_name": ("device", t.text), "bandwidth_tbps": ("TB/s", t.num(".2f")),
        "active_params_b": ("active B", t.num("g")), "bytes_per_param": ("B/param", t.num("g")),
        "note": ("note", t.text)})


def guide_view(d: ReportData) -> pd.DataFrame:
    assert d.guide is not None
    return t.fmt(d.guide, {"workload": ("workload", t.text), "best": ("best configuration", t.text),
                           "score": ("score", t.num(".3f")), "tok_s": ("tok/s", t.num(".1f")),
                           "reason": ("why", t.text)})


def k_curve_view(d: ReportData) -> pd.DataFrame:
    """One line per point of each k sweep; ★ marks the best k of its curve."""
    c = d.k_curves.assign(mark=["★" if b else "" for b in d.k_curves["best"]]) if len(d.k_curves) else d.k_curves
    return t.fmt(c, {"sweep": ("sweep", t.text), "context": ("ctx", t.text), "concurrency": ("c", t.integer),
                     "category": ("category", t.text), "k": ("k", t.integer), "mark": ("best", t.text),
                     "tok_s": ("tok/s", t.num(".1f")), "speedup": ("speed-up", t.num(".2f", "×")),
                     "acceptance_length": ("accept len", t.num(".2f")), "per_position": ("per position", t.positions)})


def best_k_view(d: ReportData) -> pd.DataFrame:
    return t.fmt(best_k(d.k_curves), {
        "sweep": ("sweep", t.text), "context": ("ctx", t.text), "concurrency": ("c", t.integer),
        "category": ("category", t.text), "best_k": ("best k", t.integer), "tok_s": ("tok/s", t.num(".1f")),
        "speedup": ("speed-up", t.num(".2f", "×")), "worst_tok_s": ("worst k tok/s", t.num(".1f")),
        "ks": ("k measured", t.text), "next_k": ("next best k", t.integer), "margin": ("margin", t.num("+.1%")),
        "call": ("separated?", t.text)})


def speed_accuracy_view(d: ReportData) -> pd.DataFrame:
    p = d.speed_accuracy
    p = p.assign(mark=["◆ frontier" if f else "" for f in p["frontier"]]) if len(p) else p
    return t.fmt(p, {"benchmark": ("benchmark", t.text), "framework": ("framework", t.text),
                     "stage": ("stage", t.text), "config": ("configuration", t.text), "score": ("score", t.num(".3f")),
                     "n": ("n", t.integer), "tok_s": ("tok/s", t.num(".1f")), "concurrency": ("c", t.integer),
                     "mark": ("Pareto", t.text)})


def user_total_view(d: ReportData) -> pd.DataFrame:
    p = d.user_total
    p = p.assign(mark=["◆ frontier" if f else "" for f in p["frontier"]]) if len(p) else p
    return t.fmt(p, {"config": ("configuration", t.text), "context": ("ctx", t.text),
                     "concurrency": ("c", t.integer), "per_user_tok_s": ("tok/s per user", t.num(".1f")),
                     "total_tok_s": ("total tok/s", t.num(".1f")), "mark": ("Pareto", t.text)})


def other_view(d: ReportData) -> pd.DataFrame:
    return t.fmt(d.other, {"cell_id": ("cell", t.text), "measurement": ("measurement", t.text),
                           "benchmark": ("check", t.text), "context": ("ctx", t.text), "n": ("n", t.integer),
                           "score": ("pass share", t.num(".3f")), "notes": ("notes", t.text)})


def serving_view(d: ReportData) -> pd.DataFrame:
    rows = d.rows.drop_duplicates(["run_id", "cell_id", "serving_args", "vllm_version", "device_name"])
    return t.fmt(rows, {"run_id": ("run", t.text), "cell_id": ("cell", t.text),
                        "serving_args": ("serving settings", lambda v: "–" if pd.isna(v) else f"`{v}`"),
                        "vllm_version": ("vLLM", t.text), "device_name": ("device", t.text),
                        "source": ("source", t.text)})


def _sections(d: ReportData) -> list[tuple[str, pd.DataFrame]]:
    out = [("Throughput", speed_view(d)), ("Speed-up vs AR", speedup_view(d.speedups))]
    pivot = category_pivot(d.speedups_by_category)
    if not pivot.empty:
        out.append(("Speed-up by category", pivot))
    out.append(("Acceptance", acceptance_view(d)))
    if not d.k_curves.empty:
        out += [("k sweep: tok/s against k", k_curve_view(d)), ("Best k", best_k_view(d))]
    if not d.user_total.empty and d.user_total["concurrency"].nunique() > 1:
        out.append(("Pareto: per-user × total tok/s", user_total_view(d)))
    out += [("Accuracy", accuracy_view(d)), ("Accuracy Δ vs AR", delta_view(d)),
            ("Accuracy Δ summary", summary_view(d))]
    if not d.speed_accuracy.empty:
        out.append(("Pareto: speed × accuracy", speed_accuracy_view(d)))
    if not d.other.empty:
        out.append(("Determinism / NIAH", other_view(d)))
    out.append(("Roofline (c=1)", roofline_view(d)))
    if d.guide is not None:
        out.append(("Workload guide", guide_view(d)))
    return out


def terminal_report(d: ReportData, width: int | None = None) -> str:
    """All tables as plain text for a terminal of ``width`` columns (default: the current terminal)."""
    width = width or shutil.get_terminal_size((120, 40)).columns
    runs = ", ".join(sorted(d.rows["run_id"].dropna().unique())) or "–"
    parts = [f"specdeck report — {len(d.rows)} rows from run(s): {runs}\n"]
    for title, frame in _sections(d):
        if title == "Workload guide":  # reasons are sentences: wrap them under the table instead of clipping
            why = frame.pop("why")
            frame = frame.assign(**{"#": [str(i) for i in range(1, len(frame) + 1)]})[["#", *frame.columns]]
            body = t.text_table(frame, width) + "".join(
                textwrap.fill(f"{i}. {w}", width, subsequent_indent="   ") + "\n" for i, w in enumerate(why, 1))
        else:
            body = t.text_table(frame, width)
        parts.append(f"\n{title}\n{'=' * len(title)}\n" + body)
    if d.notes:
        parts.append("\nNotes\n=====\n" + "".join(
            textwrap.fill(f"- {n}", width, subsequent_indent="  ") + "\n" for n in d.notes))
    return "".join(parts)


def write_plots(d: ReportData, plots_dir: Path) -> dict[str, Path | None]:
    """The PNGs by report section ({} when matplotlib is missing; None for a chart with no data)."""
    if not plots.available():
        return {}
    from console.results import sweep_plots

    return {
        "k sweep: tok/s against k": sweep_plots.plot_k_curves(d.k_curves, plots_dir / "k_sweep.png"),
        "Pareto: per-user × total tok/s": sweep_plots.plot_user_total(d.user_total, plots_dir / "pareto_user_total.png"),
        "Pareto: speed × accuracy": sweep_plots.plot_speed_accuracy(d.speed_accuracy,
                                                                   plots_dir / "pareto_speed_accuracy.png"),
        "Throughput": plots.plot_tok_s(d.speed, plots_dir / "tok_s_by_cell.png"),
        "Speed-up vs AR": plots.plot_speedup(d.speedups, plots_dir / "speedup.png"),
        "Acceptance": plots.plot_acceptance(d.acceptance, plots_dir / "acceptance_by_position.png"),
        "Accuracy Δ vs AR": plots.plot_accuracy_delta(d.deltas, plots_dir / "accuracy_delta.png"),
    }


def markdown_report(d: ReportData, md_path: str | Path, plots_dir: str | Path | None = None,
                    title: str = "specdeck results", inputs: Sequence[str] = (),
                    with_plots: bool = True) -> tuple[Path, list[Path]]:
    """Write the Markdown report (and its PNGs unless ``with_plots`` is off); returns (report, PNGs written)."""
    md_path = Path(md_path)
    plots_dir = Path(plots_dir) if plots_dir else md_path.parent / f"{md_path.stem}_plots"
    pngs = write_plots(d, plots_dir) if with_plots else {}
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    rows = d.rows
    devices = ", ".join(sorted(rows["device_name"].dropna().unique())) or "not recorded"
    versions = ", ".join(sorted(rows["vllm_version"].dropna().unique())) or "not recorded"
    lines = [f"# {title}", "", f"_Generated {now} by `specdeck report` from {', '.join(inputs) or 'a frame'}._", "",
             "## Summary", "",
             f"- {len(rows)} rows, runs: {', '.join(sorted(rows['run_id'].dropna().unique())) or '–'}",
             "- measurements: " + ", ".join(f"{m} {c}" for m, c in rows["measurement"].value_counts().items()),
             f"- sources: {', '.join(sorted(rows['source'].dropna().unique())) or '–'}",
             f"- devices: {devices}; vLLM: {versions}"]
    best = d.speedups.dropna(subset=["speedup"])
    if len(best):
        top = best.loc[best["speedup"].idxmax()]
        lines.append(f"- largest speed-up: {top['cell_id']} {top['speedup']:.2f}× "
                     f"({top['tok_s']:.1f} vs {top['baseline_tok_s']:.1f} tok/s)")
    for _, s in d.summary.iterrows():
        fw = s["framework"] if pd.notna(s["framework"]) else "framework not stated"
        noise = (f"{s['within_noise']}/{s['judged']} within noise" if s["judged"]
                 else "noise not judged (n unknown)")
        lines.append(f"- {s['technique']} vs AR on {s['benchmark']} ({fw}): mean Δ {s['mean_delta']:+.3f} "
                     f"over {s['cells']} cell(s), {noise}")
    lines += ["", "## How these numbers were measured", "", METHOD, ""]
    if d.notes:
        lines += ["> **Notes**", ">"] + [f"> - {n}" for n in d.notes] + [""]
    if with_plots and not plots.available():
        lines += ["_Plots skipped: matplotlib is not installed._", ""]
    for section, frame in _sections(d):
        lines += [f"## {section}", ""]
        if section == "Roofline (c=1)":
            used = sorted({(r["device_name"], r["bandwidth_tbps"]) for _, r in d.roofline.iterrows()
                           if pd.notna(r["bandwidth_tbps"])})
            lines += ["Bandwidth used: " + ("; ".join(f"{dev} {bw:g} TB/s" for dev, bw in used) or "none matched")
                      + ". Above 100 % is possible for speculative cells (several tokens per weight read).", ""]
        png = pngs.get(section)
        if png is not None:
            lines += [f"![{section}]({Path(png).relative_to(md_path.parent) if png.is_relative_to(md_path.parent) else png})",
                      ""]
        lines += [t.md_table(frame), ""]
    lines += ["## Serving settings per cell", "",
              "Each cell ran with its own serving settings (disclosed, not normalised):", "",
              t.md_table(serving_view(d)), "",
              "Column reference: `docs/results.md` (rendered from `console/results/columns.py`).", ""]
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text("\n".join(lines))
    return md_path, [p for p in pngs.values() if p is not None]

