"""A run folder → master rows (`results_consolidated.csv`), rebuilt from the run's store at any time.

Sources: `experiment.resolved.toml` (identity, parameters, serving args) and the store: each cell's result
documents (`Store.documents`: speed summary, speed/acceptance per category, determinism, niah — what the
phases' events carried) and the eval results. The `cells/<cell>/*.json` exports are not read.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from console.cluster.where import cell_columns
from console.errors import SpecdeckError
from console.redact import redact_env
from console.results.columns import normalize, read_csv, write_csv

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def _identity(cell: dict[str, Any], run_id: str, meta: dict[str, Any]) -> dict[str, Any]:
    return {
        "run_id": run_id, "cell_id": cell["id"], "model": cell["model"],
        "total_params_b": cell.get("total_params_b"), "active_params_b": cell.get("active_params_b"),
        "bytes_per_param": cell.get("bytes_per_param"), "precision": cell.get("precision"),
        "technique": cell.get("method"), "k": cell.get("k") or None, "sweep": cell.get("sweep"),
        "context": cell.get("context"),
        "context_tokens": cell.get("context_tokens"), "concurrency": cell.get("concurrency"),
        "serving_args": json.dumps({"vllm_args": cell.get("vllm_args", []), "env": redact_env(cell.get("env", {})),
                                    **({"vllm_ref": cell["vllm_ref"]} if cell.get("vllm_ref") else {})}),
        "vllm_version": meta.get("vllm_version"), "device_name": meta.get("device_name"), "node": meta.get("node"),
        "source": "specdeck", "notes": "toy model" if cell.get("toy") else None,
    }


def _acc_fields(acc: dict[str, Any] | None) -> dict[str, Any]:
    if not acc or acc.get("mean_acceptance_length") is None or acc.get("num_drafts") == 0:
        return {}
    return {"acceptance_length": acc.get("mean_acceptance_length"),
            "per_position": json.dumps(acc.get("per_position_rates") or []),
            "draft_acceptance_rate": acc.get("draft_acceptance_rate")}


def _speed_rows(base: dict[str, Any], docs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Speed rows (overall and per category) and, for speculative cells, their acceptance rows. The speed
    summary's acceptance length stands in where no acceptance document was recorded."""
    speed = docs.get("speed") or {}
    acc = dict(docs.get("acceptance") or {})
    stored = speed.get("summary")
    if stored and not acc.get("total") and stored.get("acceptance_length"):
        acc["total"] = {"mean_acceptance_length": stored["acceptance_length"],
                        "per_position_rates": stored.get("per_position"),
                        "draft_acceptance_rate": stored.get("draft_acceptance_rate")}
    rows: list[dict[str, Any]] = []
    s = stored
    if s and s.get("tok_s") is not None:
        rows.append({**base, "measurement": "speed", "category": "all", "tok_s_median": s.get("tok_s"),
                     "tok_s_min": s.get("tok_s_min"), "tok_s_max": s.get("tok_s_max"),
                     "tok_s_source": "nonstreaming", "repeats": s.get("repeats"), "n": s.get("requests")})
        fields = _acc_fields(acc.get("total"))
        if fields:
            rows.append({**base, "measurement": "acceptance", "category": "all", **fields})
    cat_acc = ((acc.get("categories") or {}).get("rows")) or {}
    for r in ((speed.get("categories") or {}).get("rows")) or []:
        cat = r["category"]
        rows.append({**base, "measurement": "speed", "category": cat, "tok_s_median": r.get("tok_s"),
                     "tok_s_min": r.get("tok_s"), "tok_s_max": r.get("tok_s"), "tok_s_source": "nonstreaming",
                     "repeats": 1, "n": r.get("requests")})
        fields = _acc_fields(cat_acc.get(cat))
        if fields:
            rows.append({**base, "measurement": "acceptance", "category": cat, **fields})
    return rows


def _determinism_rows(base: dict[str, Any], docs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    det = docs.get("determinism")
    if not det:
        return []
    rows = []
    for key, label in (("ar_vs_ar", "greedy_ar_vs_ar"), ("technique_vs_ar", "greedy_vs_ar")):
        s = det.get(key)
        if not s or not s.get("total"):
            continue
        divs = s.get("divergences") or []
        span = f"; divergence at tokens {min(divs)}–{max(divs)}" if divs else ""
        rows.append({**base, "measurement": "determinism", "benchmark": label, "n": s["total"],
                     "score": s["matches"] / s["total"],
                     "notes": f"{s['matches']}/{s['total']} identical{span}"})
    return rows


def _niah_rows(base: dict[str, Any], docs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    niah = docs.get("niah")
    if not niah:
        return []
    rows = []
    for tokens, r in (niah.get("per_length") or {}).items():
        found, total = r.get("found", 0), r.get("total", 0)
        if total:
            rows.append({**base, "measurement": "niah", "benchmark": f"niah-{tokens}", "category": str(tokens),
                         "n": total, "score": found / total, "notes": f"{found}/{total} needles found"})
    return rows


def consolidate_run(run_dir: Path) -> pd.DataFrame:
    """Every measurement of one run as master rows."""
    from console.run.folder import RunFolder

    folder = RunFolder(run_dir)
    resolved = tomllib.loads(folder.resolved_path.read_text(encoding="utf-8"))
    store = folder.read_store()
    meta = {k: store.meta(k) for k in ("vllm_version", "device_name")}
    frameworks = {b["id"]: b["framework"] for b in store.meta("benchmarks", []) or []}
    rows: list[dict[str, Any]] = []
    cells = {c["id"]: c for c in resolved.get("cell", [])}
    known = {r.cell_id for r in store.cells()}
    for cell_id, cell in cells.items():
        if cell_id not in known:
            continue  # not part of this run's selection
        base = _identity(cell, folder.name, {**meta, **cell_columns(store, cell_id)})
        docs = store.documents(cell_id)
        rows += _speed_rows(base, docs) + _determinism_rows(base, docs) + _niah_rows(base, docs)
    for cell_id, bench_id, stage, r in store.eval_results():
        if cell_id not in cells:
            continue
        base = _identity(cells[cell_id], folder.name, {**meta, **cell_columns(store, cell_id)})
        rows.append({**base, "measurement": "accuracy" if stage == "full" else "smoke", "benchmark": bench_id,
                     "framework": r.get("framework") or frameworks.get(bench_id), "n": r.get("n"),
                     "score": r.get("score"), "stderr": r.get("stderr"), "blanks": r.get("blanks"),
                     "extraction_failures": r.get("extraction_failures"), "truncations": r.get("truncations")})
    store.close()
    return normalize(pd.DataFrame(rows))


class ResultsWouldShrink(SpecdeckError, ValueError):
    """Rebuilding a run's results file from its store would drop rows the file holds (a store copied without
    its -wal, or emptied): the file is kept; `fix` says how to go on."""


def write_consolidated(run_dir: Path, *, force: bool = False) -> Path:
    """Rebuild `results_consolidated.csv` in the run folder; returns its path.

    Never silently with fewer rows than the file holds: unless `force`, that raises `ResultsWouldShrink` and
    the file stays as it was (the runner, whose store is the truth, passes force)."""
    import os

    from console.run.folder import RunFolder

    folder = RunFolder(run_dir)
    path = folder.consolidated_csv
    frame = consolidate_run(run_dir)
    if not force and path.exists():
        try:
            old = len(read_csv(path))
        except (ValueError, OSError, pd.errors.ParserError):
            old = 0  # an unreadable results file holds nothing to lose
        if len(frame) < old:
            raise ResultsWouldShrink(
                f"{path} holds {old} rows but {folder.store_path} gives only {len(frame)}: the store looks "
                f"incomplete (copied without {folder.store_path.name}-wal, or emptied), so the CSV is kept",
                f"Copy the run folder again with {folder.store_path.name}-wal and -shm beside "
                f"{folder.store_path.name}, or pass --force to replace the CSV with the store's {len(frame)} rows")
    tmp = path.with_name(path.name + ".tmp")
    write_csv(frame, tmp)
    os.replace(tmp, path)  # a crash mid-write never leaves half a results file
    return path
