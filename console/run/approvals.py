"""The runner's approval flow: asking the operator, taking their decisions, and the approval window.

A cell whose smoke passed waits for an approve or reject per benchmark; decisions arrive through the store
(console/run/operator_decisions.py) and the runner takes them between steps. While a config's approval cell
waits, its server stays up for the approval window, so an approval in time runs the full run on the warm
server. What the runner records of it (the state moves, `ApprovalDecided`, a re-run's `StageCleared`) is
emitted as events, like every other fact.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from console.events import (
    ApprovalDecided,
    ApprovalRequested,
    ApprovalWindowOpened,
    PhaseProgress,
    StageCleared,
)
from console.experiment.cells import Cell
from console.experiment.loader import LoadedExperiment
from console.run.states import CAN_RERUN_SMOKE, CellState
from console.run.store import Decision, DecisionConflict

if TYPE_CHECKING:
    from console.experiment.schema import Benchmark
    from console.run.runner import RunOptions
    from console.run.store import Store
    from console.serve.pool import ServerPool
    from console.serve.server import Server

S = CellState

GPU_WINDOW_S = 900.0
CPU_WINDOW_S = 300.0


def default_window(exp: LoadedExperiment) -> float:
    """15 min on a GPU (a large model's start is minutes of an idle GPU); 5 min on a CPU box, where a start
    takes under a minute and a held server keeps other configs waiting."""
    device = (exp.spec.experiment.device or "").lower()
    return CPU_WINDOW_S if "cpu" in device else GPU_WINDOW_S


class ApprovalFlow:
    """The approval part of `Runner` (a mixin: it works on the runner's store, cells, pool and events)."""

    if TYPE_CHECKING:
        store: Store
        cells: list[Cell]
        opt: RunOptions
        pool: ServerPool | None
        window_s: float
        _window: dict[str, float]
        _window_closed: set[str]

        def emit(self, event: Any) -> None: ...
        def move(self, cell: Cell | str, new: CellState, reason: str | None = None) -> None: ...
        def benches(self, cell: Cell) -> list[Benchmark]: ...
        def has_work(self, cell: Cell, state: CellState) -> bool: ...
        def take(self, cell_ids: list[str], why: str) -> list[Cell]: ...
        def server_for(self, cell: Cell) -> Server | None: ...
        def run_full(self, cell: Cell, server: Server, benches: list[str]) -> bool: ...

    def waiting(self) -> list[Cell]:
        """This runner's approval cells waiting for a decision on at least one benchmark."""
        rows = {r.cell_id: r.state for r in self.store.cells()}
        return [c for c in self.cells if rows.get(c.id) is S.AWAITING_APPROVAL and self.undecided(c)]

    # --- the approval window: one server start per serving config when the operator answers in time ----------
    def tend_windows(self) -> None:
        """Open a window for each config whose approval cell waits with its server up; close those whose cell
        was decided or whose time ran out (then the server stops, unless the config has other work)."""
        assert self.pool is not None
        now = time.monotonic()
        live = set(self.pool.live)
        waiting = {c.serving_key: c for c in self.waiting()}
        for key in list(self._window):
            if key not in waiting or key not in live:
                del self._window[key]
        self._window_closed &= set(waiting)
        for key, cell in waiting.items():
            if key in live and key not in self._window and key not in self._window_closed and self.window_s > 0:
                self._window[key] = now + self.window_s
                self.emit(ApprovalWindowOpened(cell_id=cell.id, serving_key=key, until=time.time() + self.window_s,
                                               seconds=self.window_s))
        for key, deadline in list(self._window.items()):
            if now < deadline:
                continue
            del self._window[key]
            self._window_closed.add(key)
            cell = waiting[key]
            busy = any(c.serving_key == key and self.has_work(c, self.store.cell(c.id).state) for c in self.cells)
            if not busy:
                self.pool.release(key)
            self.emit(PhaseProgress(cell_id=cell.id, phase="approval_window",
                                    detail=f"no decision within {self.window_s / 60:.0f} min: server "
                                           f"{'kept for other work' if busy else 'stopped'}; an approval now "
                                           "starts it again"))

    def estimate(self, cell: Cell) -> dict[str, Any]:
        per = {}
        for cell_id, bench_id, _passed, data in self.store.verdicts(cell.id):
            if cell_id == cell.id and data.get("estimate"):
                per[bench_id] = data["estimate"]
        hours = [e["gpu_hours"] for e in per.values() if e.get("gpu_hours") is not None]
        return {"benchmarks": per, "gpu_hours": sum(hours) if hours else None,
                "wall_s": sum(e["wall_s"] for e in per.values() if e.get("wall_s")) or None}

    def request_approval(self, cell: Cell) -> None:
        self.move(cell, S.AWAITING_APPROVAL)
        est = self.estimate(cell)
        self.emit(ApprovalRequested(cell_id=cell.id, estimate=est))
        if self.opt.yes_after_smoke:
            try:
                self.store.decide(cell.id, "approve", f"{self.opt.who} (--yes-after-smoke)", estimate=est)
            except DecisionConflict:
                pass  # an operator decided already: theirs stands

    # --- decisions ------------------------------------------------------------------------------------------
    def apply_decisions(self) -> None:
        """Take the operators' decisions. One runner per run: a decision for a cell outside this runner's
        selection (or a newly selected cell: `start`) takes that cell in."""
        by_id = {c.id: c for c in self.cells}
        for d in self.store.decisions(pending_only=True):
            if d.cell_id not in by_id:
                taken = self.take([d.cell_id], f"(a {d.action} recorded by {d.who})")
                by_id.update({c.id: c for c in taken})
            self.store.consume(d.id)  # consumed first: a runner killed right after finds the approval in `decided`
            cell = by_id.get(d.cell_id)
            if cell is None:
                self.emit(PhaseProgress(phase="decisions", detail=f"{d.action} for {d.cell_id}: no such cell in "
                                                                 "this run's experiment; ignored"))
                continue
            if d.action != "start":
                self._apply(cell, d)

    def decided(self, cell: Cell) -> dict[str, Decision]:
        """Benchmark → the approve / reject the runner took for it (without --bench: every one not decided)."""
        every = [b.id for b in self.benches(cell)]
        out: dict[str, Decision] = {}
        for d in self.store.decisions():
            if d.cell_id == cell.id and d.consumed is not None and d.action in ("approve", "reject"):
                for b in ([d.bench_id] if d.bench_id else every):
                    out.setdefault(b, d)
        return out

    def undecided(self, cell: Cell) -> list[str]:
        decided = self.decided(cell)
        return [b.id for b in self.benches(cell) if b.id not in decided]

    def approved_todo(self, cell: Cell) -> list[str]:
        """Approved benchmarks whose full run has not finished."""
        decided = self.decided(cell)
        finished = {b for c, b, stage, _ in self.store.eval_results() if c == cell.id and stage == "full"}
        return [b.id for b in self.benches(cell) if b.id not in finished
                and decided.get(b.id) is not None and decided[b.id].action == "approve"]

    def _apply(self, cell: Cell, d: Decision) -> None:
        state = self.store.cell(cell.id).state
        if d.action == "cancel":
            if not state.terminal:
                self.move(cell, S.CANCELLED, f"cancelled by {d.who}" + (f": {d.reason}" if d.reason else ""))
            return
        if d.action == "rerun_smoke" and state in CAN_RERUN_SMOKE:
            why = f"smoke re-run requested by {d.who}"
            self.emit(StageCleared(cell_id=cell.id, stage="smoke", reason=why))
            self.move(cell, S.SERVING, why)
            return
        if state is not S.AWAITING_APPROVAL:
            return  # too late or too early: nothing to approve
        approved = d.action == "approve"
        self.emit(ApprovalDecided(cell_id=cell.id, bench_id=d.bench_id, approved=approved, who=d.who,
                                  reason=d.reason, decided_at=d.ts, estimate=d.estimate or {}))
        self.settle(cell)

    def settle(self, cell: Cell) -> None:
        """Run the approved benchmarks not yet run; then the cell waits for the undecided ones, or is done
        (every benchmark approved and run, or rejected), or cancelled (every benchmark rejected)."""
        todo = self.approved_todo(cell)
        if todo:
            server = self.server_for(cell)
            if server is None or not self.run_full(cell, server, todo):
                return
        state = self.store.cell(cell.id).state
        left = self.undecided(cell)
        if left:
            if state is not S.AWAITING_APPROVAL:
                self.move(cell, S.AWAITING_APPROVAL, f"waiting for a decision on {', '.join(left)}")
            return
        decided = self.decided(cell)
        rejected = sorted({f"{b} rejected by {d.who}" + (f": {d.reason}" if d.reason else "")
                           for b, d in decided.items() if d.action == "reject"})
        if any(d.action == "approve" for d in decided.values()):
            self.move(cell, S.DONE, "; ".join(rejected) or None)
        else:
            whos = {d.who for d in decided.values()}
            reasons = {d.reason for d in decided.values() if d.reason}
            self.move(cell, S.CANCELLED, f"full run rejected by {', '.join(sorted(whos))}"
                      + (f": {'; '.join(sorted(reasons))}" if reasons else ""))
