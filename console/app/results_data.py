"""The results screen's data: a run's store as master-schema rows, then `console.results.report.build` —
the same derivation `specdeck report` prints (speed-up vs AR, accuracy Δ with SE and the noise verdict).

`run_rows` is `console.results.consolidate.consolidate_run`: one code path for the TUI and the report.
No Textual here.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from console.results.report import ReportData

if sys.version_info >= (3, 11):
    pass
else:  # pragma: no cover
    pass


@dataclass(frozen=True)
class Section:
    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    notes: tuple[str, ...] = ()
    empty: str = "(nothing yet)"


Curve = tuple[str, tuple[tuple[float, float], ...]]
"""A labelled line: (label, ((x, y), …))."""


@dataclass(frozen=True)
class ResultsData:
    speed: tuple[Section, ...]
    accuracy: tuple[Section, ...]
    tok_s: tuple[tuple[str, float], ...] = ()
    acceptance: tuple[tuple[str, tuple[float, ...]], ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)
    k_sweep: tuple[Section, ...] = ()
    """tok/s against k per sweep × context × concurrency (★ = best k), acceptance per position beside it."""
    k_curves: tuple[Curve, ...] = ()
    """(sweep · ctx · cN, ((k, tok/s), …)) per curve."""
    best_k: tuple[tuple[float, float], ...] = ()
    """(k, tok/s) of each curve's best k."""
    frontiers: tuple[Section, ...] = ()
    """Pareto tables: per-user × total tok/s across concurrency, speed × accuracy per benchmark."""
    user_total: tuple[Curve, ...] = ()
    """(configuration · ctx, ((tok/s per user, total tok/s), …)) across concurrency."""
    frontier_points: tuple[tuple[float, float], ...] = ()
    """The per-user × total points on the Pareto frontier."""


def run_rows(run_dir: Path) -> pd.DataFrame:
    """Master rows for one run folder: the same consolidation `specdeck report RUN_DIR` uses."""
    from console.results.consolidate import consolidate_run
    from console.run.folder import RunFolder

    if not RunFolder(run_dir).resolved_path.exists():
        from console.results.columns import empty_frame

        return empty_frame()
    return consolidate_run(run_dir)


def common_prefix(ids: list[str]) -> str:
    """`model.precision.` when every cell id starts with the same one (shown once, in the title)."""
    heads = {".".join(i.split(".")[:2]) + "." for i in ids if i.count(".") >= 4}
    return heads.pop() if len(heads) == 1 and len(ids) == sum(i.count(".") >= 4 for i in ids) else ""


def _section(title: str, frame: pd.DataFrame, keep: tuple[str, ...], empty: str,
             notes: tuple[str, ...] = ()) -> Section:
    cols = [c for c in keep if c in frame.columns]
    rows = [[str(v) for v in r] for r in frame[cols].itertuples(index=False)] if len(frame) else []
    if rows and "cell" in cols:
        i = cols.index("cell")
        prefix = common_prefix([r[i] for r in rows])
        if prefix:  # a narrow terminal keeps the columns that matter
            title += f" — cells of {prefix.rstrip('.')}"
            for r in rows:
                r[i] = r[i].removeprefix(prefix)
    return Section(title, tuple(cols), tuple(tuple(r) for r in rows), notes, empty)


def results_data(run_dir: Path) -> ResultsData:
    """Everything the results screen shows, derived by console.results."""
    from console.results import report

    d = report.build(run_rows(run_dir))
    speedup = report.speedup_view(d.speedups)
    speed_only = report.speed_view(d)
    acc_view = report.accuracy_view(d)
    delta = report.delta_view(d)
    speed = (
        _section("Speed-up vs AR (same model, precision, context, concurrency)", speedup,
                 ("cell", "AR tok/s", "tok/s", "speed-up", "note"),
                 "no technique cell with a measured AR baseline yet"),
        _section("Throughput (non-streaming, median of repeats)", speed_only,
                 ("cell", "tok/s", "min–max", "meter"), "no speed measured yet"),
        _section("Acceptance (/metrics)", report.acceptance_view(d),
                 ("cell", "accept len", "draft acc", "per position"), "no acceptance measured yet"),
    )
    accuracy = (
        _section("Accuracy Δ vs AR (|Δ| < 2·SE_Δ = within noise)", delta,
                 ("cell", "benchmark", "score", "AR", "Δ", "SE_Δ", "verdict", "note"),
                 "no full accuracy run of a technique cell and its AR baseline yet"),
        _section("Accuracy (full runs)", acc_view,
                 ("cell", "benchmark", "n", "score", "stderr", "blank", "no answer", "truncated"),
                 "no full accuracy run finished yet (approve a cell after its smoke)"),
    )
    prefix = common_prefix([str(c) for c in d.rows["cell_id"].dropna()])
    tok = tuple((str(r["cell_id"]).removeprefix(prefix), float(r["tok_s_median"])) for _, r in d.speed.iterrows()
                if pd.notna(r["tok_s_median"]))
    acc: list[tuple[str, tuple[float, ...]]] = []
    for _, r in d.acceptance.iterrows():
        if pd.notna(r["per_position"]):
            acc.append((str(r["cell_id"]).removeprefix(prefix),
                        tuple(float(x) for x in json.loads(r["per_position"]))))
    k_sweep = (
        _section("k sweep: tok/s against k (★ = best k of its curve)", report.k_curve_view(d),
                 ("sweep", "ctx", "c", "k", "best", "tok/s", "speed-up", "accept len", "per position"),
                 "no k sweep measured: write k = [1, 2, 4, 6, 8] in a technique"),
        _section("Best k per sweep × context × concurrency", report.best_k_view(d),
                 ("sweep", "ctx", "c", "best k", "tok/s", "speed-up", "worst k tok/s", "k measured"),
                 "no k sweep measured yet"),
    )
    frontiers = (
        _section("Pareto: per-user × total tok/s across concurrency (◆ = frontier)", report.user_total_view(d),
                 ("configuration", "ctx", "c", "tok/s per user", "total tok/s", "Pareto"),
                 "no speed measured yet"),
        _section("Pareto: speed × accuracy per benchmark (◆ = frontier)", report.speed_accuracy_view(d),
                 ("benchmark", "stage", "configuration", "score", "n", "tok/s", "Pareto"),
                 "no accuracy scored yet (smoke or full)"),
    )
    return ResultsData(speed, accuracy, tok, tuple(acc), tuple(d.notes), k_sweep, *_k_plot(d), frontiers,
                       *_user_total_plot(d))


def _k_plot(d: ReportData) -> tuple[tuple[Curve, ...], tuple[tuple[float, float], ...]]:
    curves = d.k_curves
    if curves.empty:
        return (), ()
    out: list[Curve] = []
    keys = ["run_id", "model", "precision", "sweep", "context", "concurrency", "category"]
    for _, g in curves.groupby([curves[c].astype("string").fillna("") for c in keys], sort=False):
        g = g.sort_values("k")
        r = g.iloc[0]
        out.append((f"{r['sweep']} {r['context']} c{int(r['concurrency'])}",
                    tuple((float(k), float(v)) for k, v in zip(g["k"], g["tok_s"], strict=True))))
    best = tuple((float(r["k"]), float(r["tok_s"])) for _, r in curves[curves["best"]].iterrows())
    return tuple(out), best


def _user_total_plot(d: ReportData) -> tuple[tuple[Curve, ...], tuple[tuple[float, float], ...]]:
    pts = d.user_total
    if pts.empty or pts["concurrency"].nunique() < 2:
        return (), ()
    out: list[Curve] = []
    for (config, ctx), g in pts.groupby(["config", pts["context"].astype("string").fillna("")], sort=False):
        g = g.sort_values("concurrency")
        label = f"{str(config).split('.')[-1]} {ctx}".strip()
        out.append((label, tuple((float(x), float(y)) for x, y in
                                 zip(g["per_user_tok_s"], g["total_tok_s"], strict=True))))
    front = tuple((float(r["per_user_tok_s"]), float(r["total_tok_s"])) for _, r in pts[pts["frontier"]].iterrows())
    return tuple(out), front
