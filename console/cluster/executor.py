"""The head of a Ray run: the run's one runner, which hands serving-config groups to workers instead of serving.

`ClusterRunner` is the local `Runner` with its step replaced: it owns the run folder and the store exactly as a
local run does (the frozen experiment, cell registration, decisions, the results file, the runner lease), and
each group with work left becomes a worker task (`console.cluster.worker.run_group`) on a slot of the cluster.
What a worker ships comes back through a `Backend` and is applied with `apply_shipped_event` in arrival order.

Decisions stay here: an operator's decision for a cell whose group runs now is forwarded to that worker (and
consumed here); for a group that is not running it is taken as the local runner takes it, and an approval makes
the group's full run a new task on a slot (placed, softly, on the node the group was measured on).

Faults: a worker that dies (its process, its node) ends its task with a Ray system error; the head keeps every
record that reached it, and re-submits the group with the facts it holds NOW, so the new attempt skips every
committed item and a measured speed, up to `max_retries` times; then its cells fail with the reason. Ray's own
task retry is off for these tasks (`max_retries=0`): Ray would re-run the task with its original arguments
(ray 2.60.0 `ray.remote` docstring: "max_retries: ... the maximum number of times that the remote function
should be rerun when the worker process executing it crashes unexpectedly"), i.e. with the facts as they were at
the first submission.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from console.cluster.groups import GroupRequest, group_requests
from console.cluster.placement import Task, TaskKind, order_groups
from console.cluster.ray_tasks import RayPolicy, task_options
from console.cluster.replica import group_facts
from console.cluster.shipped import apply_shipped_event
from console.cluster.where import placement
from console.cluster.worker import GroupJob
from console.events import ApprovalRequested, Event, PhaseProgress
from console.experiment.cells import Cell
from console.experiment.loader import LoadedExperiment
from console.run.runner import Phases, Runner, RunOptions
from console.run.states import CellState
from console.run.store import DecisionConflict

S = CellState


class Backend(Protocol):
    """Where worker tasks run and how their records come back (Ray in production, threads in unit tests)."""

    def submit(self, job: GroupJob, options: dict[str, Any]) -> None: ...

    def take(self) -> list[dict[str, Any]]:
        """Records shipped since the last call, in arrival order."""
        ...

    def forward(self, attempt: str, decisions: list[dict[str, Any]]) -> None: ...

    def finished(self) -> list[tuple[str, str | None, str]]:
        """Attempts that ended since the last call: (attempt, None | "crashed" | "error", message)."""
        ...

    def close(self) -> None: ...


@dataclass
class Live:
    """A group's task in flight."""

    group: GroupRequest
    attempt: str
    started: float


class ClusterRunner(Runner):
    """The run's runner on the head of a Ray cluster (see the module docstring)."""

    def __init__(self, exp: LoadedExperiment, run_dir: Path, phases: Phases, options: RunOptions,
                 backend: Backend, *, policy: RayPolicy | None = None, job: GroupJob | None = None,
                 max_retries: int = 3, on_event: Callable[[Event], None] | None = None) -> None:
        super().__init__(exp, run_dir, phases, options, on_event=on_event)
        self.backend = backend
        self.policy = replace(policy or RayPolicy(), max_retries=0)  # the head re-submits with fresh facts (module docstring)
        self.job = job or GroupJob(run_id="", attempt="", experiment_text="", origin_dir=None, cell_ids=(),
                                   facts={})
        self.max_retries = max_retries
        self.live: dict[str, Live] = {}
        self.crashes: dict[str, int] = {}
        self.submitted: dict[str, int] = {}

    def run(self) -> dict[str, str]:
        try:
            return super().run()
        finally:
            self.backend.close()

    # --- the step: groups to workers ----------------------------------------------------------------------
    def groups(self) -> list[GroupRequest]:
        return order_groups(group_requests(self.cells, self.exp.spec.experiment.device))

    def group_has_work(self, group: GroupRequest) -> bool:
        rows = {r.cell_id: r.state for r in self.store.cells()}
        return any(self.has_work(c, rows[c.id]) for c in self.cells if c.id in group.cells)

    def work(self) -> None:
        while True:
            self.take_shipped()
            self.apply_decisions()
            self.reap()
            self.submit_ready()
            if not self.live:
                if not any(self.group_has_work(g) for g in self.groups()):
                    if not (self.waiting() and self.opt.until == "full" and self.opt.wait_for_approval):
                        return
            time.sleep(self.opt.poll_s)

    def take_shipped(self) -> None:
        for d in self.backend.take():
            event = apply_shipped_event(self.sink, self.run_dir, d)
            if event is not None:
                if self._on_event:
                    self._on_event(event)
                self._auto_approve(event)

    def submit_ready(self) -> None:
        running = {lv.group.key for lv in self.live.values()}
        for group in self.groups():
            if group.key in running:
                continue
            for cell in self.cells:  # asking needs no server: a resumed head asks itself, as a local runner does
                if cell.id in group.cells and self.store.cell(cell.id).state is S.SMOKE_PASSED \
                        and self.opt.until == "full":
                    self.request_approval(cell)
            if not self.group_has_work(group):
                continue
            n = self.submitted[group.key] = self.submitted.get(group.key, 0) + 1
            attempt = f"{group.label}#{n}"
            late = any(self.store.cell(c).state in (S.AWAITING_APPROVAL, S.FULL) for c in group.cells)
            node = (placement(self.store, group.cells[0]) or {}).get("node_id") if late else None
            task = Task(group, TaskKind.FULL if late else TaskKind.MEASURE, group.accelerator)
            job = replace(self.job, run_id=self.run_id, attempt=attempt, cell_ids=group.cells,
                          facts=group_facts(self.store, list(group.cells)), until=self.opt.until,
                          approval_window_s=self.window_s, poll_s=self.opt.poll_s)
            self.backend.submit(job, task_options(task, self.policy, node_id=node))
            self.live[attempt] = Live(group, attempt, time.time())
            self.emit(PhaseProgress(phase="cluster",
                                    detail=f"submitted {attempt} ({'full run' if late else 'measure'}, "
                                           f"{group.gpus} GPU(s){' of ' + group.accelerator if group.accelerator else ''})"))

    def reap(self) -> None:
        for attempt, failure, message in self.backend.finished():
            self.take_shipped()  # whatever it shipped before it ended, first
            lv = self.live.pop(attempt, None)
            if lv is None:
                continue
            cells = [c for c in self.cells if c.id in lv.group.cells]
            if failure == "crashed":
                n = self.crashes[lv.group.key] = self.crashes.get(lv.group.key, 0) + 1
                left = self.max_retries - n + 1
                self.emit(PhaseProgress(phase="cluster",
                                        detail=f"{attempt} died ({message}); "
                                               + (f"re-submitting ({left} retr{'y' if left == 1 else 'ies'} left)"
                                                  if left > 0 else "no retries left")))
                if left > 0:
                    continue
                self._fail(cells, f"its worker died {n} time(s), last: {message} — fix: check the node "
                                  "(`ray status`, its memory), then `specdeck resume RUN --ray --retry-failed`")
            elif failure == "error":
                self._fail(cells, f"the worker failed: {message} — fix: see the run's events; after fixing, "
                                  "`specdeck resume RUN --ray --retry-failed`")
            for cell in cells:  # a decision forwarded to a worker that was leaving: take it here
                if self.store.cell(cell.id).state is S.AWAITING_APPROVAL and not self.approved_todo(cell):
                    self.settle(cell)

    def _fail(self, cells: list[Cell], reason: str) -> None:
        for cell in cells:
            if not self.store.cell(cell.id).state.terminal:
                self.move(cell, S.FAILED, reason)

    # --- decisions stay on the head -----------------------------------------------------------------------------
    def apply_decisions(self) -> None:
        """A decision for a cell whose group runs now goes to its worker (consumed here); the rest as locally."""
        live = {c: lv.attempt for lv in self.live.values() for c in lv.group.cells}
        for d in self.store.decisions(pending_only=True):
            if d.cell_id in live and d.action in ("approve", "reject", "cancel", "rerun_smoke"):
                self.store.consume(d.id)
                self.backend.forward(live[d.cell_id], [vars(d)])
        super().apply_decisions()

    def settle(self, cell: Cell) -> None:
        """Approved benchmarks run on a worker (the group is submitted again), never on the head."""
        if self.approved_todo(cell):
            return
        super().settle(cell)

    def emit(self, event: Event) -> None:
        super().emit(event)
        self._auto_approve(event)

    def _auto_approve(self, event: Event) -> None:
        if isinstance(event, ApprovalRequested) and self.opt.yes_after_smoke and event.cell_id:
            try:  # recorded on the head, where decisions live, then forwarded like an operator's
                self.store.decide(event.cell_id, "approve", f"{self.opt.who} (--yes-after-smoke)",
                                  estimate=event.estimate)
            except DecisionConflict:
                pass

    def consolidate(self) -> None:
        if getattr(self, "backend", None) is not None:
            self.take_shipped()
        super().consolidate()
