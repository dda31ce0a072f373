"""The campaign's cost before anything starts: GPU-hours of every speed phase, smoke and full run, summed.

Per cell: speed = (warm-up + repeats × requests per repeat) × output_tokens ÷ tok/s. Per server config (its first
cell runs the evals, as the runner does): smoke = smoke_items × epochs × expected_output_tokens ÷ tok/s and
full = full items × epochs × expected_output_tokens ÷ tok/s, per benchmark — the same rule as the approval's estimate
(console.evals.smoke.estimate_full_run). tok/s is the cell's measured speed from an earlier run under runs/
when there is one, else the roofline ceiling at c=1 (memory bandwidth ÷ active params × bytes per param) of the
experiment's device: an optimistic figure for AR at c=1, so those hours are a lower bound. Server start-ups
and prompt prefill are not counted.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from console.experiment.cells import Cell
from console.experiment.schema import Experiment
from console.run.folder import list_runs


@dataclass(frozen=True)
class CostLine:
    """One phase of one cell: tokens to generate, at what rate, and where the rate comes from."""

    cell_id: str
    phase: str
    """speed | smoke | full"""
    benchmark: str | None
    tokens: int
    tok_s: float | None
    basis: str
    """measured (run id) | roofline (device) | unknown"""

    @property
    def hours(self) -> float | None:
        return self.tokens / self.tok_s / 3600 if self.tok_s else None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "gpu_hours": self.hours}


def measured_speeds(runs_root: Path) -> dict[str, tuple[float, str]]:
    """cell id → (tok/s, run id) from the newest speed measurement in any run under `runs_root` (read-only)."""
    out: dict[str, tuple[float, float, str]] = {}
    if not runs_root.is_dir():
        return {}
    for run in list_runs(runs_root):
        try:
            store = run.read_store()
            try:
                rows = store.db.execute("SELECT cell_id, data, ts FROM measurements WHERE kind = 'speed'").fetchall()
            finally:
                store.close()
        except sqlite3.Error:
            continue
        for cell_id, data, ts in rows:
            try:
                tok_s = float(json.loads(data).get("tok_s") or 0)
            except (ValueError, TypeError):
                continue
            if tok_s > 0 and (cell_id not in out or ts > out[cell_id][1]):
                out[cell_id] = (tok_s, ts, run.name)
    return {k: (v[0], v[2]) for k, v in out.items()}


def ceiling(cell: Cell, device: str, bandwidth: Mapping[str, float] | None) -> tuple[float | None, str]:
    from console.results.roofline import bandwidth_table, ceiling_tok_s, lookup_bandwidth

    bw, key = lookup_bandwidth(device, bandwidth_table(bandwidth))
    if key is None:
        return None, "unknown"
    tok = ceiling_tok_s(bw, cell.model.active_b, cell.model.bytes_per_param)
    return (None, "unknown") if math.isnan(tok) else (tok, f"roofline c=1 on {key}")


def campaign(exp: Experiment, cells: list[Cell], *, runs_root: Path, base_dir: Path | None,
             bandwidth: Mapping[str, float] | None = None) -> dict[str, Any]:
    """Every phase's line, the totals per phase, and what could not be priced."""
    from console.evals.registry import requests as eval_requests

    measured = measured_speeds(runs_root)
    device = exp.experiment.device or ""
    w = exp.workload
    lines: list[CostLine] = []
    first_of: dict[str, str] = {}
    for cell in cells:
        tok_s: float | None
        if cell.id in measured:
            tok_s, basis = measured[cell.id][0], f"measured in {measured[cell.id][1]}"
        else:
            tok_s, basis = ceiling(cell, device, bandwidth)
        per_repeat = w.requests_per_repeat or max(4, 2 * cell.concurrency)
        requests = w.warmup_requests + w.repeats * per_repeat
        lines.append(CostLine(cell.id, "speed", None, requests * w.output_tokens, tok_s, basis))
        if cell.serving_key in first_of:
            continue
        first_of[cell.serving_key] = cell.id
        for bench in exp.benchmarks:
            for stage in ("smoke", "full"):  # items (a group's smoke: across its subtasks) × epochs
                lines.append(CostLine(cell.id, stage, bench.id,
                                      eval_requests(bench, stage, base_dir) * bench.expected_output_tokens, tok_s, basis))
    totals: dict[str, float] = {}
    unknown: dict[str, int] = {}
    for line in lines:
        if line.hours is None:
            unknown[line.phase] = unknown.get(line.phase, 0) + 1
        else:
            totals[line.phase] = totals.get(line.phase, 0.0) + line.hours
    bases = sorted({line.basis for line in lines})
    return {"lines": [line.to_dict() for line in lines], "gpu_hours": totals, "total_gpu_hours": sum(totals.values()),
            "unpriced": unknown, "bases": bases, "cells": len(cells), "server_configs": len(first_of),
            "not_counted": "server start-ups, prompt prefill, re-runs"}
