"""Operator decisions from the CLI (the TUI's approval dialog writes the same records)."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Any

from console.errors import SpecdeckError
from console.run.folder import RunFolder
from console.run.store import DecisionConflict, Store
from console.units import gpu_hours, human_seconds


class DecisionRefused(SpecdeckError, ValueError):
    """The decision cannot be taken now; the message says why and what to do."""

    fix = "`specdeck status RUN` shows each cell's state and what it waits for"


def smoke_summary(store: Store, cell_id: str) -> tuple[list[str], dict[str, Any]]:
    """Lines describing a cell's smoke verdicts, and the combined full-run estimate."""
    lines: list[str] = []
    per: dict[str, Any] = {}
    for _cid, bench_id, passed, data in store.verdicts(cell_id):
        score = data.get("score")
        s = f"{score:.3f}" if score is not None else "-"
        lines.append(f"  {bench_id}: {'passed' if passed else 'FAILED'}  score {s} on {data.get('n')} items "
                     f"(threshold {data.get('threshold', 0):.3f})")
        lines += [f"    - {r}" for r in data.get("reasons", [])]
        est = data.get("estimate") or {}
        if est:
            per[bench_id] = est
            if est.get("wall_s"):
                lines.append(f"    full run: {est['items']} items × {est['expected_output_tokens']} tokens ÷ "
                             f"{est['tok_s']:.0f} tok/s ≈ {human_seconds(est['wall_s'])}, {gpu_hours(est['gpu_hours'])}")
            else:
                lines.append(f"    full run: {est.get('items')} items, cost unknown (no speed measured)")
    hours = [e["gpu_hours"] for e in per.values() if e.get("gpu_hours") is not None]
    return lines, {"benchmarks": per, "gpu_hours": sum(hours) if hours else None}


def _answer_conflict(exc: DecisionConflict) -> int:
    """A repeat of the recorded decision is not an error (exit 0); a contradiction is refused (exit 2).
    Either way nothing new is recorded."""
    if exc.repeat:
        print(f"{exc}; nothing new recorded")
        return 0
    raise DecisionRefused(f"{exc}; nothing recorded")


def decide(run_dir: Path, cell_id: str, action: str, *, bench: str | None = None, reason: str | None = None,
           yes: bool = False, who: str | None = None, ask=input) -> int:
    store = RunFolder(run_dir).open_store()
    try:
        row = store.cell(cell_id)
    except KeyError:
        ids = ", ".join(c.cell_id for c in store.cells() if c.state.value == "awaiting_approval") or "none"
        raise DecisionRefused(f"no cell {cell_id!r} in {run_dir.name}; awaiting approval: {ids}") from None
    conflict = store.conflict(cell_id, action, bench) if action in ("approve", "reject", "cancel") else None
    if conflict is not None:  # answered at once, before any prompt: who decided, when, and what became of it
        return _answer_conflict(conflict)
    if action in ("approve", "reject") and row.state.value != "awaiting_approval":
        raise DecisionRefused(f"{cell_id} is {row.state.value}, not awaiting_approval: only a cell whose smoke "
                              "passed can be approved or rejected")
    lines, estimate = smoke_summary(store, cell_id)
    print(f"{cell_id} — smoke results:")
    print("\n".join(lines) or "  (none)")
    if bench and bench not in estimate["benchmarks"]:
        raise DecisionRefused(f"no smoke verdict for benchmark {bench!r}; have {', '.join(estimate['benchmarks'])}")
    if action == "approve" and not yes:
        if not sys.stdin.isatty():
            raise DecisionRefused("approving spends GPU time: confirm with --yes when not at a terminal")
        if ask(f"start the full run of {cell_id}? type 'yes': ").strip().lower() != "yes":
            print("not approved")
            return 1
    if action == "reject" and not reason:
        raise DecisionRefused("say why with --reason (it is kept with the run)")
    try:
        store.decide(cell_id, action, who or getpass.getuser(), bench_id=bench, reason=reason, estimate=estimate)
    except DecisionConflict as exc:  # another operator decided between the check above and now
        return _answer_conflict(exc)
    runner = store.runner()
    note = "the runner takes it between steps (once its current phase ends)" if runner else \
        f"no runner is active: `specdeck resume {run_dir}` carries it out"
    print(f"{action} recorded for {cell_id}{f' ({bench})' if bench else ''}; {note}")
    return 0
