"""The results screen's data: a run's store as master-schema rows, then `console.results.report.build` —
the same derivation `specdeck report` prints (speed-up vs AR, accuracy Δ with SE and the noise verdict).

`run_rows` reads what the runner committed (speed summaries, acceptance, full-run eval results) and merges
`results_consolidated.csv` when the run has one (newest row wins). No Textual here.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from console.run.store import Store

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


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


def _resolved_cells(run_dir: Path) -> dict[str, dict[str, Any]]:
    path = run_dir / "experiment.resolved.toml"
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    return {c["id"]: c for c in data.get("cell", []) if "id" in c}


def _acceptance_file(run_dir: Path, cell_id: str) -> dict[str, Any]:
    path = run_dir / "cells" / cell_id / "acceptance.json"
    try:
        total = json.loads(path.read_text(encoding="utf-8")).get("total") or {}
    except (OSError, ValueError):
        return {}
    return total if isinstance(total, dict) else {}


def run_rows(run_dir: Path) -> pd.DataFrame:
    """Master rows (see console/results/columns.py) for one run folder."""
    from console.results.columns import merge_master, normalize

    store = Store(run_dir / "state.sqlite")
    try:
        resolved = _resolved_cells(run_dir)
        rows: list[dict[str, Any]] = []
        base: dict[str, dict[str, Any]] = {}
        for c in store.cells():
            r = resolved.get(c.cell_id, {})
            parts = c.cell_id.split(".")
            base[c.cell_id] = {
                "run_id": run_dir.name, "cell_id": c.cell_id, "model": c.info.get("model", parts[0]),
                "precision": r.get("precision", parts[1] if len(parts) > 1 else None),
                "technique": c.info.get("technique"), "k": r.get("k") or None,
                "context": c.info.get("context"), "context_tokens": r.get("context_tokens"),
                "concurrency": c.info.get("concurrency"), "total_params_b": r.get("total_params_b"),
                "active_params_b": r.get("active_params_b"), "bytes_per_param": r.get("bytes_per_param"),
                "serving_args": r.get("vllm_args"), "source": "specdeck",
            }
        for cell_id, _kind, _key, s in store.measurements(kind="speed"):
            b = base.get(cell_id)
            if b is None or s.get("tok_s") is None:
                continue
            rows.append({**b, "measurement": "speed", "tok_s_median": s.get("tok_s"),
                         "tok_s_min": s.get("tok_s_min"), "tok_s_max": s.get("tok_s_max"),
                         "repeats": s.get("repeats"), "n": s.get("requests"), "tok_s_source": "nonstreaming"})
            acc = _acceptance_file(run_dir, cell_id)
            mal = acc.get("mean_acceptance_length", s.get("mean_acceptance_length", s.get("acceptance_length")))
            if mal is not None:
                rows.append({**b, "measurement": "acceptance", "acceptance_length": mal,
                             "per_position": acc.get("per_position_rates") or s.get("per_position"),
                             "draft_acceptance_rate": acc.get("draft_acceptance_rate")})
        for cell_id, bench, stage, r in store.eval_results():
            b = base.get(cell_id)
            if b is None or stage != "full":
                continue
            rows.append({**b, "measurement": "accuracy", "benchmark": bench, "framework": r.get("framework"),
                         "n": r.get("n"), "score": r.get("score"), "stderr": r.get("stderr"),
                         "blanks": r.get("blanks"), "extraction_failures": r.get("extraction_failures"),
                         "truncations": r.get("truncations")})
    finally:
        store.close()
    frame = normalize(pd.DataFrame(rows))
    csv = run_dir / "results_consolidated.csv"
    if csv.exists():
        frame = merge_master([frame], existing_csv=csv).frame
    return frame


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
