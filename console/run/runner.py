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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from console.evals.base import EvalAdapter, EvalItem, EvalResult, EvalTarget
from console.evals.smoke import estimate_full_run, judge_smoke
from console.events import (
    ApprovalDecided,
    ApprovalRequested,
    CellStateChanged,
    EvalFinished,
    EvalItemDone,
    Event,
    PhaseProgress,
    RunFinished,
    RunStarted,
    SmokeVerdictEvent,
)
from console.run.eventlog import EventLog
from console.run.folder import RunFolder
from console.run.resolved import freeze
from console.run.states import CAN_RERUN_SMOKE, CellState
from console.run.store import Decision, Store
from console.serve.pool import ServerPool
from console.serve.server import Server, ServerStartError
from console.spec.caveats import engine_caveats, installed_engine
from console.spec.cells import Cell
from console.spec.loader import LoadedExperiment
from console.spec.schema import Benchmark

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
    """Keep running while cells await approval; False: exit and let `specdeck resume` pick them up."""
    idle_timeout_s: float = 300.0
    """A server idle this long while waiting for approval is stopped (restarted on approval)."""
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

    def speed(self, rc: RunContext, cell: Cell, server: Server) -> dict[str, Any]:
        """Measure; return at least {"tok_s": median tok/s}. Writes its own files and events."""
        ...

    def adapter(self, bench: Benchmark) -> EvalAdapter: ...

    def full_items(self, bench: Benchmark) -> int:
        """How many items the full run has (for the estimate)."""
        ...


def device_name(exp: LoadedExperiment) -> str:
    """The accelerator as the machine reports it (nvidia-smi), else `cpu`."""
    import shutil
    import subprocess

    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=10).stdout.strip().splitlines()
            if out:
                return out[0].strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return "cpu"


class Runner:
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
        self.log = EventLog(self.folder.events_path)
        self._on_event = on_event
        globs = [g.strip() for g in (options.cells or "").split(",") if g.strip()]
        self.cells = [c for c in exp.cells if not globs or any(fnmatch.fnmatchcase(c.id, g) for g in globs)]
        if not self.cells:
            raise ValueError(f"no cell matches {options.cells!r}: `specdeck validate FILE` lists the ids")
        self.rep: dict[str, str] = {}
        for c in self.cells:  # accuracy does not depend on context or concurrency: one cell per server config
            self.rep.setdefault(c.serving_key, c.id)
        self.rc = RunContext(self.run_dir, self.run_id, exp, self.store, self.emit)
        self.pool: ServerPool | None = pool
        self._last_used: dict[str, float] = {}
        self._stop = threading.Event()

    # --- plumbing ---------------------------------------------------------------------------------
    def emit(self, event: Event) -> None:
        if not event.run_id:
            event = dataclasses.replace(event, run_id=self.run_id)
        self.log.append(event)
        if self._on_event:
            self._on_event(event)

    def move(self, cell: Cell | str, new: CellState, reason: str | None = None) -> None:
        cell_id = cell if isinstance(cell, str) else cell.id
        old = self.store.set_state(cell_id, new, reason)
        if old != new:
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
            self.store.set_meta("experiment", str(self.exp.path.resolve()))
            self.store.set_meta("origin_dir", str(self.exp.base_dir.resolve()))
            self.store.set_meta("benchmarks", [b.model_dump() for b in self.exp.spec.benchmarks])
            self.store.set_meta("vllm_version", installed_engine())
            self.store.set_meta("device_name", device_name(self.exp))
        self.store.add_cells([(c.id, c.serving_key, {"model": c.model.id, "technique": c.technique.id,
                                                     "method": c.method, "context": c.context.label,
                                                     "concurrency": c.concurrency, "toy": c.model.toy,
                                                     "eval_cell": self.rep[c.serving_key]})
                              for c in self.cells])
        self.emit(RunStarted(experiment=str(self.exp.path), cells=tuple(c.id for c in self.cells),
                             resumed=resumed, pid=os.getpid()))
        caveats = engine_caveats(self.exp.spec, self.cells)
        self.store.set_meta("caveats", [c.message for c in caveats])
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
        mine = {c.id for c in self.cells}
        released = False
        try:
            while True:
                self.work()
                self.pool.close()
                self.consolidate()
                # Leave only if no decision for our cells arrived meanwhile (checked and released in one
                # transaction): an approval recorded while the servers were stopping is taken, not orphaned.
                if self.store.release_runner(unless_pending_for=mine):
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
        """Advance cells until none has work left (or, waiting for approval, until the operator decides)."""
        assert self.pool is not None
        mine = {c.id for c in self.cells}
        while True:
            self.apply_decisions()
            cell = self.next_cell()
            if cell is not None:
                self.advance(cell)
                continue
            waiting = [r for r in self.store.cells() if r.state is S.AWAITING_APPROVAL and r.cell_id in mine]
            if waiting and self.opt.until == "full" and self.opt.wait_for_approval:
                self.release_idle()
                time.sleep(self.opt.poll_s)
                continue
            return

    def consolidate(self) -> None:
        try:
            from console.results.consolidate import write_consolidated

            write_consolidated(self.run_dir, force=True)  # the runner's store is the truth
        except Exception as exc:  # noqa: BLE001 - the results file is rebuildable; never lose the run over it
            self.emit(PhaseProgress(phase="consolidate", detail=f"results_consolidated.csv not written: {exc}"))

    def release_idle(self) -> None:
        assert self.pool is not None
        now = time.monotonic()
        for key in list(self.pool.live):
            if now - self._last_used.get(key, now) > self.opt.idle_timeout_s:
                self.pool.release(key)

    def next_cell(self) -> Cell | None:
        """The next cell with work, preferring one whose server is already up."""
        rows = {r.cell_id: r for r in self.store.cells()}
        ready = [c for c in self.cells if self.has_work(c, rows[c.id].state)]
        live = set(self.pool.live) if self.pool else set()
        for c in ready:
            if c.serving_key in live:
                return c
        return ready[0] if ready else None

    def has_work(self, cell: Cell, state: CellState) -> bool:
        if state is S.FULL:
            return self.opt.until == "full"
        if state in ACTIVE:
            return not self._speed_done(cell) or self.opt.until != "speed"
        return state is S.SMOKE_PASSED and self.opt.until == "full"

    def _speed_done(self, cell: Cell) -> bool:
        return bool(self.store.measurements(cell.id, "speed"))

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
        self._last_used[cell.serving_key] = time.monotonic()
        return server

    def advance(self, cell: Cell) -> None:
        state = self.store.cell(cell.id).state
        if state is S.SMOKE_PASSED:
            self.request_approval(cell)
            return
        resume_full = state is S.FULL
        server = self.server_for(cell)
        if server is None:
            return
        if resume_full:
            self.run_full(cell, server)
            return
        if not self._speed_done(cell):
            self.move(cell, S.SPEED)
            try:
                summary = self.phases.speed(self.rc, cell, server)
            except Exception as exc:  # noqa: BLE001 - a phase bug fails the cell, not the run
                self.move(cell, S.FAILED, f"speed phase failed: {type(exc).__name__}: {exc}")
                return
            self.store.put_measurement(cell.id, "speed", "summary", summary)
            self._last_used[cell.serving_key] = time.monotonic()
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

    def _target(self, cell: Cell, server: Server) -> EvalTarget:
        from console.serve.argv import resolve_model_path

        tok = resolve_model_path(cell.model.path, self.exp.base_dir, self.opt.models_dir)
        return EvalTarget(server.base_url, server.api_key, cell.model.name, tok)

    def run_stage(self, cell: Cell, server: Server, bench: Benchmark, stage: str, limit: int | None) -> EvalResult:
        done = self.store.done_items(cell.id, bench.id, stage)
        total = (limit or self.phases.full_items(bench)) * bench.epochs  # every epoch is an item

        def on_item(item: EvalItem) -> None:
            if self.store.put_item(cell.id, bench.id, stage, item.item_id, item.to_dict(), item.correct):
                self.emit(EvalItemDone(cell_id=cell.id, bench_id=bench.id, stage=stage, item_id=item.item_id,
                                       correct=item.correct, extracted=item.extracted))
                n = len(self.store.done_items(cell.id, bench.id, stage))
                self.emit(PhaseProgress(cell_id=cell.id, phase=f"{stage}:{bench.id}", done=n, total=total))
            self._last_used[cell.serving_key] = time.monotonic()

        out = self.rc.cell_dir(cell) / "evals" / bench.id / stage
        out.mkdir(parents=True, exist_ok=True)
        generation = bench.generation or self.exp.spec.generation
        t0 = time.monotonic()
        self.phases.adapter(bench).run(bench, self._target(cell, server), stage=stage, limit=limit,
                                        generation=generation, out_dir=out, skip_ids=done, on_item=on_item)
        # Score from the store: items committed by this and any earlier (killed) attempt, once each.
        items = [EvalItem(**{k: v for k, v in d.items() if k in EvalItem.__dataclass_fields__})
                 for d in self.store.items(cell.id, bench.id, stage)]
        result = EvalResult.from_items(bench.id, bench.framework, stage, items)
        # Wall time of this attempt (framework start-up included): set next to the estimate in `status`.
        self.store.put_eval_result(cell.id, bench.id, stage, {**result.to_dict(), "wall_s": time.monotonic() - t0,
                                                             "resumed_with": len(done)})
        self.emit(EvalFinished(cell_id=cell.id, bench_id=bench.id, stage=stage, result=result.to_dict()))
        return result

    def run_smoke(self, cell: Cell, server: Server, benches: list[Benchmark]) -> None:
        self.move(cell, S.SMOKE)
        tok_s = self._tok_s(cell)
        failed: list[str] = []
        for bench in benches:
            try:
                result = self.run_stage(cell, server, bench, "smoke", bench.smoke_items)
            except Exception as exc:  # noqa: BLE001
                self.move(cell, S.FAILED, f"smoke of {bench.id} failed: {type(exc).__name__}: {exc}")
                return
            verdict = judge_smoke(bench, result, estimate_full_run(bench, self.phases.full_items(bench), tok_s))
            self.store.put_verdict(cell.id, bench.id, verdict.passed, verdict.to_dict())
            self.emit(SmokeVerdictEvent(cell_id=cell.id, bench_id=bench.id, passed=verdict.passed,
                                        reasons=verdict.reasons, score=verdict.score,
                                        estimate=verdict.estimate.to_dict() if verdict.estimate else {}))
            if not verdict.passed:
                failed.append(f"{bench.id}: {verdict.reasons[0]}")
        if failed:
            self.move(cell, S.SMOKE_FAILED, "; ".join(failed))
            return
        self.move(cell, S.SMOKE_PASSED)
        if self.opt.until == "full":
            self.request_approval(cell)

    def _tok_s(self, cell: Cell) -> float | None:
        m = self.store.measurements(cell.id, "speed")
        if not m:
            return None
        return float(m[-1][3].get("tok_s") or 0.0) or None

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
            self.store.decide(cell.id, "approve", f"{self.opt.who} (--yes-after-smoke)", estimate=est)

    # --- decisions ------------------------------------------------------------------------------------------
    def apply_decisions(self) -> None:
        by_id = {c.id: c for c in self.cells}
        for d in self.store.decisions(pending_only=True):
            cell = by_id.get(d.cell_id)
            if cell is None:
                continue  # for a cell outside this runner's --cells: leave it for the runner that has it
            self._apply(cell, d)
            self.store.consume(d.id)

    def _apply(self, cell: Cell, d: Decision) -> None:
        state = self.store.cell(cell.id).state
        if d.action == "cancel":
            if not state.terminal:
                self.move(cell, S.CANCELLED, f"cancelled by {d.who}" + (f": {d.reason}" if d.reason else ""))
            return
        if d.action == "rerun_smoke" and state in CAN_RERUN_SMOKE:
            self.store.clear_stage(cell.id, "smoke")
            self.move(cell, S.SERVING, f"smoke re-run requested by {d.who}")
            return
        if state is not S.AWAITING_APPROVAL:
            return  # too late or too early: nothing to approve
        approved = d.action == "approve"
        self.emit(ApprovalDecided(cell_id=cell.id, bench_id=d.bench_id, approved=approved, who=d.who,
                                  reason=d.reason))
        if not approved:
            self.move(cell, S.CANCELLED, f"full run rejected by {d.who}" + (f": {d.reason}" if d.reason else ""))
            return
        self.store.set_meta(f"approved:{cell.id}", {"bench": d.bench_id, "who": d.who, "ts": d.ts,
                                                     "estimate": d.estimate})
        server = self.server_for(cell)
        if server is not None:
            self.run_full(cell, server)

    def run_full(self, cell: Cell, server: Server) -> None:
        approval = self.store.meta(f"approved:{cell.id}")
        if not approval:  # FULL without an approval record cannot happen through the machine; refuse anyway
            self.move(cell, S.FAILED, "full run without an approval record")
            return
        self.move(cell, S.FULL)
        for bench in self.benches(cell):
            if approval.get("bench") and approval["bench"] != bench.id:
                continue
            try:
                self.run_stage(cell, server, bench, "full", bench.full_items)
            except Exception as exc:  # noqa: BLE001
                self.move(cell, S.FAILED, f"full run of {bench.id} failed: {type(exc).__name__}: {exc}")
                return
        self.move(cell, S.DONE)
