"""`RunSession`: what the console may do to a run — start runners for cells, record operator decisions.

The runner owns the run; the console only (1) starts detached runners (`specdeck run|resume … --cells G
--no-wait --detach`), and (2) writes decisions (approve, reject, cancel, re-run smoke) into the store, where
the runner that has the cell picks them up. When no runner has the cell, one is started for it. No Textual.
"""

from __future__ import annotations

import getpass
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from console.app.launch import Launcher, selection_globs
from console.app.runview import CellInfo, RunSnapshot
from console.run.folder import RunFolder
from console.run.states import CellState
from console.run.store import Store


@dataclass(frozen=True)
class ApprovalInfo:
    """What the approval dialog shows (from `decide.smoke_summary`, the CLI's own summary)."""

    cell_id: str
    lines: tuple[str, ...]
    estimate: dict[str, Any]
    gpu_hours: float | None
    wall_s: float | None


class RunSession:
    """One experiment and (once started) its run folder."""

    def __init__(self, infos: list[CellInfo], launcher: Launcher, *, exp_path: Path | None = None,
                 run_dir: Path | None = None, experiment_name: str = "run", runs_root: Path | None = None,
                 models_dir: Path | None = None, who: str | None = None) -> None:
        self.infos = infos
        self.launcher = launcher
        self.exp_path = exp_path
        self.run_dir = run_dir
        self.experiment_name = experiment_name
        self.runs_root = runs_root
        self.models_dir = models_dir
        self.who = who or getpass.getuser()
        self.queue: deque[str] = deque()
        self._store: Store | None = None
        self.started_run = False
        self._rescued: set[str] = set()

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

    # --- runners --------------------------------------------------------------------------------------------
    def busy(self, snap: RunSnapshot | None) -> bool:
        """A runner (ours, still starting, or any live one on this run) owns the run right now."""
        return self.launcher.alive() or bool(snap and snap.runner_alive)

    def start(self, ids: list[str], snap: RunSnapshot | None) -> str:
        """Start runners for these cells (speed → smoke → approval request); returns what happened."""
        states = {c.cell_id: (c.state if c.in_run else CellState.PLANNED) for c in snap.cells} if snap else {}
        todo = [i for i in ids if states.get(i, CellState.PLANNED).startable]
        left = len(ids) - len(todo)
        note = f"; {left} cell(s) left out (done, failed, cancelled or waiting for approval)" if left else ""
        if not todo:
            return "nothing to start: the selected cells are done, failed, cancelled or waiting for approval"
        globs = selection_globs(todo, self.all_ids or [c.cell_id for c in snap.cells] if snap else self.all_ids)
        self.queue.extend(globs)
        if self.busy(snap):
            pid = snap.runner_pid if snap else None
            return (f"queued {len(todo)} cell(s): runner {f'pid {pid} ' if pid else ''}is busy with this run; "
                    f"they start when it finishes (keep this console open){note}")
        msg = self._launch_next()
        more = f"; {len(self.queue)} more group(s) follow, one runner at a time" if self.queue else ""
        return f"{msg}{more}{note}"

    def tick(self, snap: RunSnapshot | None) -> str | None:
        """Start the next queued runner when nobody owns the run; returns a message when it did."""
        if not self.queue and snap is not None and not self.busy(snap):
            self.queue.extend(self.orphaned_decisions(snap))
        if self.queue and not self.busy(snap):
            return self._launch_next()
        return None

    def orphaned_decisions(self, snap: RunSnapshot) -> list[str]:
        """Cells with a decision recorded but no runner left to take it (it ended just as the decision landed,
        or was killed): each gets one runner from this console."""
        todo = [c.cell_id for c in snap.cells if c.in_run and c.pending and not c.state.terminal
                and c.cell_id not in self._rescued]
        self._rescued.update(todo)
        return todo

    def _launch_next(self) -> str:
        glob = self.queue.popleft()
        extra = ["--models-dir", str(self.models_dir)] if self.models_dir else []
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
        pid = f" (pid {launched.pid})" if launched.pid else ""
        return f"runner started{pid} for {glob!r}; it keeps going if you close this console"

    # --- decisions ------------------------------------------------------------------------------------------
    def approval_info(self, cell_id: str) -> ApprovalInfo:
        from console.run.decide import smoke_summary

        lines, estimate = smoke_summary(self.store, cell_id)
        per = estimate.get("benchmarks", {})
        walls = [e["wall_s"] for e in per.values() if e.get("wall_s")]
        return ApprovalInfo(cell_id, tuple(lines), estimate, estimate.get("gpu_hours"), sum(walls) if walls else None)

    def decide(self, cell_id: str, action: str, snap: RunSnapshot | None, reason: str | None = None) -> str:
        """Record a decision; make sure a runner that has the cell will carry it out."""
        if not self.has_store():
            return "no run yet: start the cell first (s)"
        estimate = self.approval_info(cell_id).estimate if action == "approve" else None
        self.store.decide(cell_id, action, self.who, reason=reason, estimate=estimate)
        covered = bool(snap and snap.runner_alive and cell_id in snap.runner_cells)
        if covered:
            return f"{action} recorded for {cell_id}; runner pid {snap.runner_pid if snap else '?'} takes it between steps"
        self.queue.append(cell_id)
        started = self.tick(snap)
        if started:
            return f"{action} recorded for {cell_id}; {started}"
        return f"{action} recorded for {cell_id}; it is carried out when the current runner finishes"
