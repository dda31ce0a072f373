"""The runner: takes a run's cells through serving → speed → smoke → approval → full → done.

It owns the servers and every write to the run folder; operators' decisions arrive through the store.
Killed at any point, it resumes from the store: finished measurements and scored items are never redone.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import getpass
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from console.evals.base import EvalAdapter
from console.events import (
    CellsRegistered,
    CellsSelected,
    CellStateChanged,
    Event,
    PhaseProgress,
    RunFinished,
    RunFrozen,
    RunStarted,
    ServerBusy,
)
from console.experiment.caveats import engine_caveats, installed_engine
from console.experiment.cells import Cell
from console.experiment.loader import LoadedExperiment
from console.experiment.schema import Benchmark
from console.run.approvals import ApprovalFlow, default_window
from console.run.folder import RunFolder
from console.run.resolved import device_name, freeze
from console.run.sink import EventSink
from console.run.stages import EvalStages
from console.run.states import CellState
from console.run.store import Store
from console.serve.pool import ServerPool
from console.serve.server import Server, ServerStartError

S = CellState
Until = Literal["speed", "smoke", "full"]
ACTIVE = (S.PLANNED, S.SERVING, S.SPEED, S.SMOKE, S.FULL)


@dataclass
class RunOptions:
    """How far to go and how to behave while waiting for an operator."""

    until: Until = "full"
    cells: str | None = None
    """Glob over cell ids, several separated by commas; None = all."""
    yes_after_smoke: bool = False
    """Approve every passed smoke automatically (unattended use; never the default)."""
    wait_for_approval: bool = True
    """Keep running while cells await approval; False: leave once no approval window is open (the console's
    runners), and let `specdeck resume` (or the console) pick the decisions up."""
    approval_window_s: float | None = None
    """How long a serving config's server stays up waiting for its approval (None: `default_window`). An
    approval inside it runs the full run on the warm server; after it the server is stopped and restarted on
    approval. While a window is open, other configs wait when the pool holds one server at a time."""
    poll_s: float = 1.0
    models_dir: Path | None = None
    who: str = field(default_factory=getpass.getuser)
    retry_failed: bool = False
    """Put failed cells (of this runner's --cells) back to planned: measured speeds and scored items are kept,
    so a retry redoes only what failed."""


@dataclass
class RunContext:
    """What a phase gets: the run, its store and a way to emit events."""

    run_dir: Path
    run_id: str
    exp: LoadedExperiment
    store: Store
    emit: Callable[[Event], None]

    def cell_dir(self, cell: Cell) -> Path:
        path = RunFolder(self.run_dir).cell_dir(cell.id)
        path.mkdir(parents=True, exist_ok=True)
        return path


class Phases(Protocol):
    """The measurement and eval work the runner schedules (real ones in console.run.phases)."""

    def speed(self, rc: RunContext, cell: Cell, server: Server) -> object:
        """Measure, and emit the cell's `SpeedMeasured` (scope `point`) through `rc.emit`: that event is the
        speed result the store keeps (console/run/sink.py). What it returns is not used."""
        ...

    def adapter(self, bench: Benchmark) -> EvalAdapter: ...

    def full_items(self, bench: Benchmark) -> int:
        """How many items the full run has (for the estimate)."""
        ...


class Runner(ApprovalFlow, EvalStages):
    """Drives one run. `run()` returns when nothing is left to do (or to wait for)."""

    def __init__(self, exp: LoadedExperiment, run_dir: Path, phases: Phases, options: RunOptions,
                 on_event: Callable[[Event], None] | None = None, pool: ServerPool | None = None) -> None:
        self.exp = exp
        self.run_dir = Path(run_dir)
        self.run_id = self.run_dir.name
        self.phases = phases
        self.opt = options
        self.folder = RunFolder(self.run_dir)
        self.store = self.folder.open_store()
        self.sink = EventSink(self.folder, self.store)
        """The run's one write path: every fact the runner records is an event it applies (console/run/sink.py)."""
        self._on_event = on_event
        globs = [g.strip() for g in (options.cells or "").split(",") if g.strip()]
        known = {r.cell_id: r for r in self.store.cells()}
        if globs:
            self.cells = [c for c in exp.cells if any(fnmatch.fnmatchcase(c.id, g) for g in globs)]
        elif known:  # a resume continues the run's own selection; more cells only when the operator asks
            self.cells = [c for c in exp.cells if c.id in known]
        else:
            self.cells = list(exp.cells)
        if not self.cells:
            raise ValueError(f"no cell matches {options.cells!r}: `specdeck validate FILE` lists the ids")
        self.rep: dict[str, str] = {}
        for row in known.values():  # the run's own choice stands (an earlier runner may have had other cells)
            if row.serving_key and row.info.get("eval_cell"):
                self.rep.setdefault(row.serving_key, str(row.info["eval_cell"]))
        self._set_reps()
        self.rc = RunContext(self.run_dir, self.run_id, exp, self.store, self.emit)
        self.pool: ServerPool | None = pool
        self._window: dict[str, float] = {}
        """Serving key → monotonic deadline of its open approval window."""
        self._window_closed: set[str] = set()
        self.window_s = options.approval_window_s if options.approval_window_s is not None else default_window(exp)
        self._stop = threading.Event()

    def _set_reps(self) -> None:
        for c in self.cells:  # accuracy does not depend on context or concurrency: one cell per server config
            self.rep.setdefault(c.serving_key, c.id)

    def _register(self, cells: list[Cell]) -> None:
        self.emit(CellsRegistered(cells=tuple(
            {"cell_id": c.id, "serving_key": c.serving_key,
             "info": {"model": c.model.id, "technique": c.technique.id, "method": c.method,
                      "context": c.context.label, "concurrency": c.concurrency, "toy": c.model.toy,
                      "eval_cell": self.rep[c.serving_key]}} for c in cells)))

    def take(self, cell_ids: list[str], why: str) -> list[Cell]:
        """Take cells of the experiment into this runner's selection (registered as planned if new)."""
        have = {c.id for c in self.cells}
        new = [c for c in self.exp.cells if c.id in set(cell_ids) and c.id not in have]
        if not new:
            return []
        order = {c.id: i for i, c in enumerate(self.exp.cells)}
        self.cells = sorted([*self.cells, *new], key=lambda c: order[c.id])
        self._set_reps()
        self._register(new)
        self.emit(CellsSelected(cells=tuple(c.id for c in new), pid=os.getpid()))
        self.emit(PhaseProgress(phase="selection", detail=f"took {len(new)} cell(s) {why}"))
        return new

    # --- plumbing ---------------------------------------------------------------------------------
    def emit(self, event: Event) -> None:
        """Record an event (and the fact it carries) through the run's sink, then show it."""
        if not event.run_id:
            event = dataclasses.replace(event, run_id=self.run_id)
        self.sink.apply(event)
        if self._on_event:
            self._on_event(event)

    def move(self, cell: Cell | str, new: CellState, reason: str | None = None) -> None:
        cell_id = cell if isinstance(cell, str) else cell.id
        old = self.store.cell(cell_id).state
        self.emit(CellStateChanged(cell_id=cell_id, old=old.value, new=new.value, reason=reason))

    def _heartbeat(self) -> None:
        while not self._stop.wait(5.0):
            try:
                self.store.heartbeat()
            except Exception:  # noqa: BLE001 - a missed heartbeat must not kill the run
                pass

    def benches(self, cell: Cell) -> list[Benchmark]:
        return list(self.exp.spec.benchmarks) if self.rep.get(cell.serving_key) == cell.id else []

    # --- main loop ----------------------------------------------------------------------------------
    def run(self) -> dict[str, str]:
        self.store.claim_runner()
        resumed = bool(self.store.cells())
        if not self.folder.experiment_copy.exists():
            freeze(self.exp, self.run_dir, self.opt.models_dir)
            self.emit(RunFrozen(experiment=str(self.exp.path.resolve()), origin_dir=str(self.exp.base_dir.resolve()),
                                benchmarks=tuple(b.model_dump() for b in self.exp.spec.benchmarks),
                                vllm_version=installed_engine(), device_name=device_name(self.exp)))
        self._register(self.cells)
        caveats = engine_caveats(self.exp.spec, self.cells)
        self.emit(RunStarted(experiment=str(self.exp.path), cells=tuple(c.id for c in self.cells),
                             resumed=resumed, pid=os.getpid(), until=self.opt.until,
                             caveats=tuple(c.message for c in caveats)))
        for caveat in caveats:
            self.emit(PhaseProgress(phase="caveat", detail=caveat.message))
        if self.opt.retry_failed:
            for c in self.cells:
                row = self.store.cell(c.id)
                if row.state is S.FAILED:
                    was = (row.reason or "failed").splitlines()[0][:120]
                    self.move(c, S.PLANNED, f"retry requested by {self.opt.who} (was: {was})")
        beat = threading.Thread(target=self._heartbeat, daemon=True)
        beat.start()
        if self.pool is None:
            self.pool = ServerPool(self.run_dir, run_id=self.run_id, api_key=self.folder.api_key(),
                                   base_dir=self.exp.base_dir, models_dir=self.opt.models_dir,
                                   on_event=self.emit, registry=self.store)
            for note in self.pool.adopt_or_reap():
                self.emit(PhaseProgress(phase="resume", detail=note))
        released = False
        try:
            while True:
                self.work()
                self.pool.close()
                self.consolidate()
                # Leave only if no decision for the run's cells (and no newly selected cell) arrived meanwhile,
                # checked and released in one transaction: a decision recorded while the servers were
                # stopping is taken, not orphaned.
                if self.store.release_runner(unless_pending_for={r.cell_id for r in self.store.cells()}):
                    released = True
                    break
                self.emit(PhaseProgress(phase="decisions", detail="a decision arrived while stopping: taking it"))
        finally:
            self.pool.close()
            self._stop.set()
            if not released:  # an error or an interrupt: still leave the results file as the run stands
                self.consolidate()
            states = {r.cell_id: r.state.value for r in self.store.cells()}
            self.emit(RunFinished(states=states))
            if not released:
                self.store.release_runner()
        return states

    def work(self) -> None:
        """Advance cells until none has work left (or, waiting for approval, until the operator decides or
        every approval window has closed)."""
        assert self.pool is not None
        while True:
            self.apply_decisions()
            self.tend_windows()
            cell = self.next_cell()
            if cell is not None:
                self.advance(cell)
                continue
            if self.waiting() and self.opt.until == "full" and (self.opt.wait_for_approval or self._window):
                for key in list(self.pool.live):  # waiting with no window: nothing to keep a server up for
                    if key not in self._window:
                        self.pool.release(key)
                time.sleep(self.opt.poll_s)
                continue
            return

    def consolidate(self) -> None:
        try:
            from console.results.consolidate import write_consolidated

            write_consolidated(self.run_dir, force=True)  # the runner's store is the truth
        except Exception as exc:  # noqa: BLE001 - the results file is rebuildable; never lose the run over it
            self.emit(PhaseProgress(phase="consolidate", detail=f"results_consolidated.csv not written: {exc}"))

    def next_cell(self) -> Cell | None:
        """The next cell with work: on a live server first (its approval cell first, so the operator is asked
        early), then other configs, unless a config holds the only server for its approval window."""
        rows = {r.cell_id: r for r in self.store.cells()}
        ready = [c for c in self.cells if self.has_work(c, rows[c.id].state)]
        live = set(self.pool.live) if self.pool else set()
        on_live = [c for c in ready if c.serving_key in live]
        if on_live:
            return min(on_live, key=lambda c: self.rep.get(c.serving_key) != c.id)
        held = [k for k in self._window if k in live]
        if held and len(live) >= getattr(self.pool, "max_live", 1):
            return None
        return ready[0] if ready else None

    def has_work(self, cell: Cell, state: CellState) -> bool:
        if state in (S.FULL, S.AWAITING_APPROVAL):  # an approved benchmark not yet run (a resumed runner)
            return self.opt.until == "full" and bool(self.approved_todo(cell))
        if state in ACTIVE:
            return not self._speed_done(cell) or self.opt.until != "speed"
        return state is S.SMOKE_PASSED and self.opt.until == "full"

    def _speed_done(self, cell: Cell) -> bool:
        return self._tok_s(cell) is not None

    # --- one step of one cell ---------------------------------------------------------------------------
    def server_for(self, cell: Cell) -> Server | None:
        assert self.pool is not None
        state = self.store.cell(cell.id).state
        if state is not S.SERVING:
            self.move(cell, S.SERVING)
        try:
            server = self.pool.acquire(cell)
        except ServerStartError as exc:
            self.move(cell, S.FAILED, f"{exc.reason}: {exc.message} — fix: {exc.fix}")
            return None
        return server

    @contextmanager
    def busy(self, cell: Cell, phase: str) -> Iterator[None]:
        """A phase that sends requests: recorded as a ServerBusy span (the GPU-busy figure)."""
        t0, m0 = time.time(), time.monotonic()
        try:
            yield
        finally:
            self.emit(ServerBusy(cell_id=cell.id, serving_key=cell.serving_key, phase=phase, started=t0,
                                 seconds=time.monotonic() - m0))

    def advance(self, cell: Cell) -> None:
        state = self.store.cell(cell.id).state
        if state is S.SMOKE_PASSED:
            self.request_approval(cell)
            return
        if state in (S.FULL, S.AWAITING_APPROVAL):
            self.settle(cell)
            return
        server = self.server_for(cell)
        if server is None:
            return
        if not self._speed_done(cell):
            self.move(cell, S.SPEED)
            try:
                with self.busy(cell, "speed"):
                    self.phases.speed(self.rc, cell, server)
                if not self._speed_done(cell):
                    raise RuntimeError("the speed phase produced no throughput (every request failed?): see "
                                       f"{self.folder.cell_dir(cell.id) / 'speed.json'}")
            except Exception as exc:  # noqa: BLE001 - a phase bug fails the cell, not the run
                self.move(cell, S.FAILED, f"speed phase failed: {type(exc).__name__}: {exc}")
                return
        if self.opt.until == "speed":
            self.move(cell, S.SPEED, "stopped after speed (--until speed); resume with a later --until")
            return
        benches = self.benches(cell)
        if not benches:
            rep = self.rep[cell.serving_key]
            why = "no benchmarks declared" if not self.exp.spec.benchmarks else f"accuracy is measured on {rep}"
            self.move(cell, S.DONE, why)
            return
        self.run_smoke(cell, server, benches)
