"""inspect-ai logs (`.eval` / `.json`) → master accuracy rows, read with ``inspect_ai.log.read_eval_log``.

Identity comes from the log's ``eval.metadata`` (specdeck writes cell_id, technique, model, k there), else
from the model name (``openai-api/local/<served-name>``) or the run folder. The score metric is
``accuracy`` when present, else the first of ``final_acc`` / ``acc`` / ``mean`` (the study's IFEval trap:
the metric is named ``final_acc``), else the first non-stderr metric.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from console.results.columns import normalize
from console.results.import_common import (
    ImportFormatError,
    apply_overrides,
    cell_from_path,
    identity,
    run_from_path,
)
from console.results.naming import parse_name

METRIC_ORDER = ("accuracy", "final_acc", "acc", "mean")
TRUNCATED = ("max_tokens", "model_length")


def _log_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    files = sorted(root.rglob("*.eval")) + sorted(p for p in root.rglob("*.json") if "logs.json" not in p.name)
    return files


def _served_name(model: str) -> str:
    return model.split("/")[-1] if model else model


def _correct(value: Any) -> bool | None:
    if isinstance(value, str):
        return {"C": True, "I": False}.get(value.upper())
    if isinstance(value, bool | int | float):
        return bool(float(value) >= 1.0)
    return None


def _read(path: Path) -> Any:
    from inspect_ai.log import read_eval_log

    try:
        return read_eval_log(str(path))
    except Exception as exc:  # a JSON file that is not a log, a truncated zip, …
        raise ImportFormatError(f"{path}: not an inspect-ai log ({type(exc).__name__}: {exc})") from None


def _identity(log: Any, path: Path) -> dict[str, Any]:
    meta = dict(log.eval.metadata or {})
    served = _served_name(str(log.eval.model))
    parts = parse_name(str(meta.get("cell_id") or served))
    ident = identity(meta, parts)
    ident.setdefault("model", parts.model or served)
    ident["cell_id"] = ident.get("cell_id") or cell_from_path(path) or parts.variant or served
    return ident


def import_inspect(root: str | Path, overrides: Mapping[str, Any] | None = None,
                   run_id: str | None = None) -> pd.DataFrame:
    """Every finished log under ``root`` → one accuracy row per scorer; unfinished logs are skipped with a note
    in the returned frame's ``attrs['skipped']``."""
    root = Path(root)
    files = _log_files(root)
    if not files:
        raise ImportFormatError(f"{root}: no .eval or .json inspect logs")
    rows, skipped = [], []
    for path in files:
        log = _read(path)
        if log.status != "success" or log.results is None:
            skipped.append(f"{path.name}: status {log.status}")
            continue
        ident = _identity(log, path)
        rid = ident.pop("run_id", None) or run_id or run_from_path(path) or f"inspect:{root.name}"
        samples = log.samples or []
        blanks = sum(1 for s in samples if s.output is not None and not (s.output.completion or "").strip())
        truncs = sum(1 for s in samples if s.output is not None and s.output.stop_reason in TRUNCATED)
        for score in log.results.scores:
            metrics = score.metrics
            name = next((m for m in METRIC_ORDER if m in metrics), None) or next(
                (m for m in metrics if m not in ("stderr", "std")), None)
            if name is None:
                continue
            fails = sum(1 for s in samples if s.scores and score.name in s.scores
                        and (s.output is not None and (s.output.completion or "").strip())
                        and s.scores[score.name].answer in (None, ""))
            stderr = metrics["stderr"].value if "stderr" in metrics else None
            row = {
                "run_id": rid, **ident, "measurement": "accuracy",
                "benchmark": str(log.eval.task).split("/")[-1], "framework": "inspect",
                "n": log.results.completed_samples, "score": metrics[name].value,
                "stderr": stderr if isinstance(stderr, int | float) and not math.isnan(stderr) else None,
                "blanks": blanks, "extraction_failures": fails, "truncations": truncs,
                "serving_args": {"model": log.eval.model, "model_base_url": log.eval.model_base_url,
                                 "generate_config": log.eval.model_generate_config.model_dump(exclude_none=True)},
                "source": "inspect", "timestamp": log.stats.completed_at or log.eval.created,
                "notes": f"scorer {score.name}, metric {name}",
            }
            rows.append(apply_overrides(row, overrides))
    frame = normalize(pd.DataFrame(rows))
    frame.attrs["skipped"] = skipped
    return frame


def inspect_items(root: str | Path) -> pd.DataFrame:
    """Per-item correctness (first scorer) for the paired test: cell_id, benchmark, framework, item_id, correct."""
    rows = []
    for path in _log_files(Path(root)):
        log = _read(path)
        if log.status != "success" or log.results is None or not log.results.scores:
            continue
        cell = _identity(log, path)["cell_id"]
        scorer = log.results.scores[0].name
        for s in log.samples or []:
            if s.scores and scorer in s.scores:
                ok = _correct(s.scores[scorer].value)
                if ok is not None:
                    rows.append({"cell_id": cell, "benchmark": str(log.eval.task).split("/")[-1],
                                 "framework": "inspect", "item_id": f"{s.id}#{s.epoch}", "correct": ok})
    return pd.DataFrame(rows, columns=["cell_id", "benchmark", "framework", "item_id", "correct"])
