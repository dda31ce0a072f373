"""Plain-text rendering of run events and cell tables for the CLI (the TUI renders the same events)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TextIO

from console.events import (
    ApprovalDecided,
    ApprovalRequested,
    CellStateChanged,
    EvalFinished,
    Event,
    PhaseProgress,
    RunFinished,
    RunStarted,
    ServerFailed,
    ServerReady,
    ServerStarting,
    ServerStopped,
    SmokeVerdictEvent,
    UnknownEvent,
)
from console.run.folder import RunFolder
from console.run.store import Store
from console.units import gpu_hours, human_seconds


def unknown_text(e: UnknownEvent) -> str:
    """What a reader says about an event kind it does not know (once per kind)."""
    return (f"events of kind {e.unknown_kind!r} are not known to this specdeck (a newer version wrote them?): "
            "they are kept in events.jsonl but not shown; upgrade specdeck to see them")


def describe(e: Event) -> str | None:
    """One line for an event, or None for events too chatty for a terminal."""
    cell = f"{e.cell_id}: " if e.cell_id else ""
    match e:
        case RunStarted():
            return f"run started ({'resumed' if e.resumed else 'new'}), {len(e.cells)} cells, pid {e.pid}"
        case CellStateChanged():
            if e.old == e.new:  # only the reason changed
                return f"{cell}{e.new}: {e.reason}" if e.reason else None
            return f"{cell}{e.old} → {e.new}" + (f"  ({e.reason})" if e.reason else "")
        case ServerStarting():
            return f"{cell}starting vLLM: {e.command}"
        case ServerReady():
            s = f" in {e.startup_s:.0f} s" if e.startup_s else ""
            return f"{cell}server ready at {e.url}{s}"
        case ServerFailed():
            return f"{cell}server FAILED: {e.reason}: {e.message} — fix: {e.fix}"
        case ServerStopped():
            left = "nothing survived" if not e.survivors else f"SURVIVORS {e.survivors}"
            return f"server stopped ({e.signal_used}, {e.seconds:.1f} s): {left}"
        case PhaseProgress():
            count = f" {e.done}/{e.total}" if e.total else ""
            return f"{cell}{e.phase}{count} {e.detail or ''}".rstrip()
        case SmokeVerdictEvent():
            score = f"{e.score:.3f}" if e.score is not None else "-"
            lines = [f"{cell}smoke {e.bench_id}: {'PASSED' if e.passed else 'FAILED'} (score {score})"]
            lines += [f"    - {r}" for r in e.reasons]
            est = e.estimate or {}
            if est.get("wall_s"):
                lines.append(f"    full run: {est['items']} items ≈ {human_seconds(est['wall_s'])}, "
                             f"{gpu_hours(est['gpu_hours'])}")
            return "\n".join(lines)
        case ApprovalRequested():
            return (f"{cell}waiting for approval: specdeck approve {e.run_id} {e.cell_id}"
                    f"   (or reject …, or the TUI)")
        case ApprovalDecided():
            return f"{cell}full run {'APPROVED' if e.approved else 'REJECTED'} by {e.who}"
        case EvalFinished():
            r = e.result
            score = f"{r['score']:.3f}" if r.get("score") is not None else "-"
            return (f"{cell}{e.stage} {e.bench_id}: score {score} n={r['n']} blanks={r['blanks']} "
                    f"extraction failures={r['extraction_failures']} truncations={r['truncations']}")
        case RunFinished():
            return "run finished"
        case UnknownEvent():
            return unknown_text(e)
    return None  # per-item, measurement and live-stats events: the status table and the console show them


class EventPrinter:
    """Prints events as they happen (the runner's `on_event`)."""

    def __init__(self, run_dir: Path, out: TextIO | None = None) -> None:
        self.run_dir = run_dir
        self.out = out or sys.stdout
        self._unknown: set[str] = set()

    def __call__(self, e: Event) -> None:
        if isinstance(e, UnknownEvent):  # said once per kind, not once per line
            if e.unknown_kind in self._unknown:
                return
            self._unknown.add(e.unknown_kind)
        text = describe(e)
        if text:
            stamp = time.strftime("%H:%M:%S", time.localtime(e.ts))
            print(f"[{stamp}] {text}", file=self.out, flush=True)

    def summary(self, states: dict[str, str]) -> None:
        store = RunFolder(self.run_dir).read_store()
        print("\n" + cell_table(store), file=self.out)
        store.close()


def smoke_summary(verdicts: list[tuple[str, bool, float | None]]) -> str:
    """'toy-mcq ok 1.00' for one or two benchmarks; '3/4 ok; FAIL toy-mcq-first 0.00' for more (the
    passed ones are in `specdeck approve`, the failed ones are what the operator must see)."""
    def one(bench: str, passed: bool, score: float | None) -> str:
        return f"{bench} {'ok' if passed else 'FAIL'}" + (f" {score:.2f}" if score is not None else "")

    if len(verdicts) <= 2:
        return ", ".join(one(*v) for v in verdicts)
    ok = sum(1 for _b, p, _s in verdicts if p)
    failed = [one(*v) for v in verdicts if not v[1]]
    return f"{ok}/{len(verdicts)} ok" + (f"; {', '.join(failed)}" if failed else "")


def cell_table(store: Store) -> str:
    """The status table: state and reason, speed, smoke verdicts per cell."""
    speed = {m[0]: m[3] for m in store.measurements(kind="speed")}
    per_cell: dict[str, list[tuple[str, bool, float | None]]] = {}
    for cell_id, bench_id, passed, data in store.verdicts():
        per_cell.setdefault(cell_id, []).append((bench_id, passed, data.get("score")))
    verdicts = {cid: [smoke_summary(v)] for cid, v in per_cell.items()}
    rows = [("cell", "state", "tok/s", "acc len", "smoke", "reason")]
    for c in store.cells():
        s = speed.get(c.cell_id, {})
        tok = f"{s['tok_s']:.0f}" if s.get("tok_s") else "-"
        acc = f"{s['acceptance_length']:.2f}" if s.get("acceptance_length") else "-"
        rows.append((c.cell_id, c.state.value, tok, acc, ", ".join(verdicts.get(c.cell_id, [])) or "-",
                     (c.reason or "")[:70]))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    out = []
    for i, r in enumerate(rows):
        out.append("  ".join(f"{v:<{w}}" for v, w in zip(r[:5], widths, strict=True)) + "  " + r[5])
        if i == 0:
            out.append("  ".join("-" * w for w in widths) + "  ------")
    return "\n".join(out)


def eval_table(store: Store) -> str:
    """Per cell × benchmark × stage: items, score, wall time; for a full run, the estimate shown at approval
    next to what it took (estimates use the speed phase's tok/s: short eval answers and framework start-up
    make them optimistic or pessimistic, and this table says which)."""
    results = store.eval_results()
    if not results:
        return ""
    estimates = {(cid, b): (d.get("estimate") or {}) for cid, b, _p, d in store.verdicts()}
    rows = [("cell", "benchmark", "stage", "n", "score", "wall", "estimate")]
    for cell_id, bench_id, stage, r in results:
        score = r.get("score")
        wall = r.get("wall_s")
        est = estimates.get((cell_id, bench_id), {}).get("wall_s") if stage == "full" else None
        resumed = f" (resumed at {r['resumed_with']})" if r.get("resumed_with") else ""
        rows.append((cell_id, bench_id, stage, str(r.get("n", "-")), f"{score:.3f}" if score is not None else "-",
                     (f"{wall:.1f} s" if wall is not None else "-") + resumed,
                     f"{est:.1f} s" if est is not None else ""))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for i, r in enumerate(rows):
        out.append("  ".join(f"{v:<{w}}" for v, w in zip(r, widths, strict=True)).rstrip())
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)
