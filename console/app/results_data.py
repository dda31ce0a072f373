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

import pandas as pd

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


@dataclass(frozen=True)
class ResultsData:
    speed: tuple[Section, ...]
    accuracy: tuple[Section, ...]
    tok_s: tuple[tuple[str, float], ...] = ()
    acceptance: tuple[tuple[str, tuple[float, ...]], ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)


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
    return ResultsData(speed, accuracy, tok, tuple(acc), tuple(d.notes))
