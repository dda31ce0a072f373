"""`RunSession`: what the console may do to a run — start its runner, hand it newly selected cells, record
operator decisions. No Textual.

One runner per run. The console starts it (`specdeck run EXPERIMENT --cells G --no-wait --detach` for the first
start, `specdeck resume RUN --cells G --no-wait --detach` later) only when no runner is alive; while one is, a
selection is written to the store as `start` decisions and the runner takes those cells between steps, the way
it takes approvals. A runner about to leave checks for pending decisions and starts in the same transaction as
its release, so nothing is orphaned; if one lands just after, the console starts a runner for it (`tick`).
"""

from __future__ import annotations

import getpass
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from console.app.launch import Launcher, selection_globs
from console.app.runview import CellInfo, RunSnapshot
from console.run.folder import RunFolder
from console.run.states import CellState
from console.run.store import DecisionConflict, Store


@dataclass(frozen=True)
class BenchVerdict:
    """One benchmark's smoke verdict and full-run estimate, and how an earlier decision settled it."""

    bench_id: str
    passed: bool
    data: dict[str, Any]
    """The verdict as the store keeps it (score, n, threshold, reasons, estimate)."""
    decided: str = ""
    """'… already approved by ana at …' (the store's own answer to a repeat), or '' while undecided."""
    earlier: str = ""
    """The action of that earlier decision (approve, reject, cancel)."""

    @property
    def estimate(self) -> dict[str, Any]:
        return dict(self.data.get("estimate") or {})


@dataclass(frozen=True)
class ApprovalInfo:
    """What the approval dialog shows (from `decide.smoke_summary`, the CLI's own summary, and the store's
    verdicts and decisions per benchmark)."""

    cell_id: str
    lines: tuple[str, ...]
    estimate: dict[str, Any]
    gpu_hours: float | None
    wall_s: float | None
    benches: tuple[BenchVerdict, ...] = ()

    def estimate_for(self, bench_id: str | None) -> dict[str, Any]:
        """The estimate recorded with a decision: the cell's, or one benchmark's."""
        if bench_id is None:
            return self.estimate
        est = self.estimate.get("benchmarks", {}).get(bench_id) or {}
        return {"benchmarks": {bench_id: est}, "gpu_hours": est.get("gpu_hours")}


class RunSession:
    """One experiment and (once started) its run folder."""

    def __init__(self, infos: list[CellInfo], launcher: Launcher, *, exp_path: Path | None = None,
                 run_dir: Path | None = None, experiment_name: str = "run", runs_root: Path | None = None,
                 models_dir: Path | None = None, who: str | None = None, runner_args: Sequence[str] = ()) -> None:
        self.infos = infos
        self.runner_args = tuple(runner_args)
        self.launcher = launcher
        self.exp_path = exp_path
        self.run_dir = run_dir
        self.experiment_name = experiment_name
        self.runs_root = runs_root
        self.models_dir = models_dir
        self.who = who or getpass.getuser()
        self.queue: list[str] = []
        """Cells selected while the run's first runner is still creating the run folder (no store to write
        their `start` to yet): handed over as soon as the store exists."""
        self._store: Store | None = None
        self.started_run = False
        self._launched: tuple[int | None, float] | None = None
        """(pid, time) of the runner this console started last, until it is seen working or has ended."""
        self._rescued: set[tuple[str, str]] = set()
        """(cell, decision) pairs a runner was started for: one rescue each, never a loop."""

    @property
    def all_ids(self) -> list[str]:
        return [i.cell_id for i in self.infos]

    @property
    def store(self) -> Store:
        assert self.run_dir is not None
        if self._store is None:
            self._store = RunFolder(self.run_dir).open_store()
        return self._store

    def has_store(self) -> bool:
        return self.run_dir is not None and RunFolder(self.run_dir).is_run()

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    # --- the runner -----------------------------------------------------------------------------------------
    def runner_state(self, snap: RunSnapshot | None) -> str:
        """`working` (the store's runner is alive: heartbeat and pid), `starting` (a runner this console
        started is running but has not claimed the run yet), or `none`. Never `starting` for a runner that
        was seen working and is on its way out."""
        if snap is not None and snap.runner_alive:
            if self._launched is not None and (self._launched[0] in (None, snap.runner_pid)):
                self._launched = None  # ours claimed the run
            return "working"
        if self._launched is not None and self.launcher.alive():
            return "starting"
        self._launched = None
        return "none"

    def busy(self, snap: RunSnapshot | None) -> bool:
        """A runner owns the run, or one this console started is about to."""
        return self.runner_state(snap) != "none"

    def start(self, ids: list[str], snap: RunSnapshot | None) -> str:
        """Have the run's runner take these cells (speed → smoke → approval request); returns what happened."""
        states = {c.cell_id: (c.state if c.in_run else CellState.PLANNED) for c in snap.cells} if snap else {}
        todo = [i for i in ids if states.get(i, CellState.PLANNED).startable]
        left = len(ids) - len(todo)
        note = f"; {left} cell(s) left out (done, failed, cancelled or waiting for approval)" if left else ""
        if not todo:
            return "nothing to start: the selected cells are done, failed, cancelled or waiting for approval"
        state = self.runner_state(snap)
        if not self.has_store():
            if state != "none":  # the first runner is still creating the run folder
                self.queue.extend(i for i in todo if i not in self.queue)
                return f"queued {len(todo)} cell(s): the run's runner is starting and takes them next{note}"
            return self._launch(todo, snap) + note
        for cid in todo:
            self.store.decide(cid, "start", self.who)
        if state == "working":
            pid = snap.runner_pid if snap else None
            return (f"{len(todo)} cell(s) handed to runner pid {pid}: it takes them after its current step "
                    f"(one server at a time){note}")
        if state == "starting":
            return f"{len(todo)} cell(s) handed to the runner that is starting{note}"
        return self._launch(todo, snap) + note

    def tick(self, snap: RunSnapshot | None) -> str | None:
        """Hand over cells queued before the run folder existed; start a runner when decisions or selected
        cells wait in the store and no runner is alive (it left just as they landed, or was killed)."""
        if self.queue and self.has_store():
            for cid in self.queue:
                self.store.decide(cid, "start", self.who)
            self.queue.clear()
        if snap is None or not self.has_store() or self.runner_state(snap) != "none":
            return None
        # from the snapshot (the watcher reads the store read-only): an archived run folder is never written
        pending = {(c.cell_id, c.pending) for c in snap.cells
                   if c.pending and (c.pending == "start" or not (c.in_run and c.state.terminal))}
        self._rescued &= pending  # a decision taken since may come again (the next benchmark's approval)
        orphans = pending - self._rescued
        if not orphans:
            return None
        self._rescued |= orphans
        return self._launch(sorted({cell for cell, _ in orphans}), snap)

    def _launch(self, cells: list[str], snap: RunSnapshot | None) -> str:
        all_ids = self.all_ids or ([c.cell_id for c in snap.cells] if snap else [])
        glob = ",".join(selection_globs(cells, all_ids) or cells)  # one runner takes every glob
        extra = (["--models-dir", str(self.models_dir)] if self.models_dir else []) + list(self.runner_args)
        if self.run_dir is None or not RunFolder(self.run_dir).is_run():
            if self.exp_path is None:
                return "cannot start: no experiment file for this run"
            if self.run_dir is None:
                from console.run.paths import new_run_dir

                self.run_dir = new_run_dir(self.experiment_name, root=self.runs_root)
                self.started_run = True
            argv = ["run", str(self.exp_path.resolve()), "--cells", glob, "--no-wait", *extra]
        else:
            argv = ["resume", str(self.run_dir), "--cells", glob, "--no-wait", *extra]
        launched = self.launcher.launch(argv, self.run_dir)
        self._launched = (launched.pid, time.monotonic())
        pid = f" (pid {launched.pid})" if launched.pid else ""
        return (f"runner started{pid} for {len(cells)} cell(s); it takes them one serving config at a time and "
                "keeps going if you close this console")

    # --- decisions ------------------------------------------------------------------------------------------
    def approval_info(self, cell_id: str) -> ApprovalInfo:
        from console.run.decide import smoke_summary

        store = self.store
        lines, estimate = smoke_summary(store, cell_id)
        per = estimate.get("benchmarks", {})
        walls = [e["wall_s"] for e in per.values() if e.get("wall_s")]
        benches = []
        for _cid, bench_id, passed, data in store.verdicts(cell_id):
            conflict = store.conflict(cell_id, "approve", bench_id)  # the store's answer to a repeat
            benches.append(BenchVerdict(bench_id, passed, data, str(conflict).split(": ", 1)[-1] if conflict else "",
                                        conflict.earlier.action if conflict else ""))
        return ApprovalInfo(cell_id, tuple(lines), estimate, estimate.get("gpu_hours"), sum(walls) if walls else None,
                            tuple(benches))

    def decide(self, cell_id: str, action: str, snap: RunSnapshot | None, reason: str | None = None,
               bench_id: str | None = None) -> str:
        """Record a decision (for one benchmark, or without `bench_id` for every undecided one: the store call
        `specdeck approve RUN CELL [--bench B]` makes); make sure a runner that has the cell will carry it out."""
        if not self.has_store():
            return "no run yet: start the cell first (s)"
        estimate = self.approval_info(cell_id).estimate_for(bench_id) if action == "approve" else None
        what = f"{action} of {bench_id}" if bench_id else action
        try:
            self.store.decide(cell_id, action, self.who, bench_id=bench_id, reason=reason, estimate=estimate)
        except DecisionConflict as exc:  # another console or the CLI decided first: say what stands
            return f"nothing recorded: {exc}"
        state = self.runner_state(snap)
        if state == "working":
            return f"{what} recorded for {cell_id}; runner pid {snap.runner_pid if snap else '?'} takes it between steps"
        started = self.tick(snap)
        if started:
            return f"{what} recorded for {cell_id}; {started}"
        return f"{what} recorded for {cell_id}; the runner that is starting takes it"
