"""The console's picture of a run: events and store reads folded into one immutable snapshot per cell.

Pure Python (no Textual): the watcher thread owns a `RunModel`, applies what it reads, and posts
`RunSnapshot`s; screens only render them. The store is the truth for states, measurements and verdicts;
events add what the store does not keep (progress, live acceptance and throughput, the activity list).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from console.cluster.where import node_label
from console.events import (
    AcceptanceMeasured,
    ApprovalWindowOpened,
    CellStateChanged,
    EngineStatsLive,
    Event,
    PhaseProgress,
    ResultRecorded,
    RunFinished,
    RunStarted,
    ServerStarting,
    ServerStopped,
    SpecDecodeLive,
    SpeedMeasured,
    UnknownEvent,
)
from console.experiment.cells import config_of
from console.run.cli_output import describe
from console.run.folder import RunFolder
from console.run.gpu_busy import GpuBusy, GpuBusyFold
from console.run.liveness import runner_alive
from console.run.states import CellState

ACTIVITY = 40


@dataclass(frozen=True)
class CellInfo:
    """A cell's identity (from the experiment, or from the store when the experiment is not at hand)."""

    cell_id: str
    model: str
    precision: str
    technique: str
    method: str
    context: str
    concurrency: int

    @property
    def baseline_key(self) -> tuple[str, str, str, int]:
        return (self.model, self.precision, self.context, self.concurrency)

    @staticmethod
    def from_cell(cell: Any) -> CellInfo:
        return CellInfo(cell.id, cell.model.id, cell.model.precision, cell.technique.id, cell.technique.method,
                        cell.context.label, cell.concurrency)

    @staticmethod
    def from_store(cell_id: str, info: dict[str, Any]) -> CellInfo:
        parts = cell_id.split(".")
        return CellInfo(cell_id, str(info.get("model", parts[0])), parts[1] if len(parts) > 1 else "",
                        str(info.get("technique", parts[2] if len(parts) > 2 else "")),
                        str(info.get("method", "")), str(info.get("context", "")),
                        int(info.get("concurrency") or 0))


@dataclass(frozen=True)
class Verdict:
    """A smoke verdict as the store keeps it (`SmokeVerdict.to_dict`)."""

    bench_id: str
    passed: bool
    score: float | None
    threshold: float | None
    n: int | None
    reasons: tuple[str, ...]
    notes: tuple[str, ...]
    estimate: dict[str, Any]


@dataclass(frozen=True)
class AcceptanceReading:
    mean_acceptance_length: float | None
    per_position: tuple[float, ...]
    draft_acceptance_rate: float | None
    source: str


@dataclass(frozen=True)
class CellStatus:
    """Everything the matrix and the cell view show about one cell."""

    info: CellInfo
    state: CellState = CellState.PLANNED
    in_run: bool = False
    reason: str | None = None
    progress: tuple[str, int, int] | None = None
    tok_s: float | None = None
    tok_s_range: tuple[float, float] | None = None
    speedup: float | None = None
    final_acceptance: AcceptanceReading | None = None
    live_acceptance: AcceptanceReading | None = None
    verdicts: tuple[Verdict, ...] = ()
    eval_cell: str | None = None
    throughput: tuple[tuple[float, float], ...] = ()
    activity: tuple[str, ...] = ()
    log_path: str | None = None
    node: str | None = None
    """Where the cell ran on a Ray cluster (host, IP, GPUs or slots); None for a single-box run."""
    pending: str | None = None
    """A decision recorded but not yet taken by the runner (approve, reject, cancel, rerun_smoke): it is busy
    with another cell's phase and applies decisions between steps."""

    @property
    def cell_id(self) -> str:
        return self.info.cell_id

    @property
    def acceptance_length(self) -> float | None:
        for a in (self.final_acceptance, self.live_acceptance):
            if a is not None and a.mean_acceptance_length is not None:
                return a.mean_acceptance_length
        return None

    @property
    def speculative(self) -> bool:
        return self.info.method not in ("ar", "")


@dataclass(frozen=True)
class RunSnapshot:
    """One consistent picture of the run, posted to the UI."""

    run_dir: str | None
    experiment: str
    cells: tuple[CellStatus, ...]
    runner_pid: int | None = None
    runner_alive: bool = False
    runner_cells: tuple[str, ...] = ()
    finished: bool = False
    version: int = 0
    caveats: tuple[str, ...] = ()
    """Engine defects the runner named when it started (console/experiment/caveats.py)."""
    windows: tuple[ApprovalWindow, ...] = ()
    """Servers kept up for an approval (open windows whose cell still waits for its decision)."""
    gpu: GpuBusy | None = None
    """How busy the run kept its accelerator so far (console/run/gpu_busy.py)."""
    preflight: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Cell id → `✗ memory: …` lines from `specdeck preflight` (failed checks first), for cells not yet run."""
    unknown_kinds: tuple[str, ...] = ()
    """Event kinds in events.jsonl this version does not know (a newer specdeck wrote the run)."""

    def cell(self, cell_id: str) -> CellStatus | None:
        for c in self.cells:
            if c.cell_id == cell_id:
                return c
        return None

    def count(self, state: CellState) -> int:
        return sum(1 for c in self.cells if c.in_run and c.state is state)


@dataclass(frozen=True)
class ApprovalWindow:
    """A serving config's server kept warm for its approval cell until `until` (epoch seconds)."""

    serving_key: str
    cell_id: str
    until: float

    @property
    def config(self) -> str:
        """The serving config as the operator reads it: the cell id without context and concurrency
        (`tiny.bf16.ar`; the serving key itself is a hash)."""
        return config_of(self.cell_id)

    def left(self, now: float | None = None) -> float:
        return max(0.0, self.until - (time.time() if now is None else now))


def summed_progress(phases: dict[str, tuple[int, int]]) -> tuple[str, int, int] | None:
    """One progress figure for phases running side by side (`smoke:toy-mcq` 3/5 and `smoke:toy-mcq-lm` 0/5 →
    `smoke (2 benchmarks)` 3/10); a single phase keeps its own name."""
    if not phases:
        return None
    if len(phases) == 1:
        (name, (done, total)), = phases.items()
        return name, done, total
    stages = {name.split(":", 1)[0] for name in phases}
    label = f"{stages.pop()} ({len(phases)} benchmarks)" if len(stages) == 1 else ", ".join(sorted(phases))
    return label, sum(d for d, _ in phases.values()), sum(t for _, t in phases.values())


@dataclass
class _Live:
    progress: tuple[str, int, int] | None = None
    phases: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Progress per phase since the last state change: a stage's benchmarks run side by side, each with its own
    count; `progress` is their sum."""
    tok_s: float | None = None
    tok_s_range: tuple[float, float] | None = None
    final: AcceptanceReading | None = None
    live: AcceptanceReading | None = None
    throughput: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=2000))
    log_throughput: tuple[tuple[float, float], ...] = ()
    activity: deque[str] = field(default_factory=lambda: deque(maxlen=ACTIVITY))
    log_path: str | None = None
    node: str | None = None


def _f(x: Any) -> float | None:
    try:
        return None if x is None else float(x)
    except (TypeError, ValueError):
        return None


def stamp(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts))


class RunModel:
    """Folds events and store reads; `snapshot()` gives the immutable picture."""

    def __init__(self, infos: list[CellInfo], experiment: str = "", run_dir: Path | None = None) -> None:
        self.infos = {i.cell_id: i for i in infos}
        self.order = [i.cell_id for i in infos]
        self.experiment = experiment
        self.run_dir = run_dir
        self.live: dict[str, _Live] = {}
        self.rows: dict[str, Any] = {}
        self.speed: dict[str, dict[str, Any]] = {}
        self.verdicts: dict[str, list[Verdict]] = {}
        self.runner: dict[str, Any] | None = None
        self.pending: dict[str, str] = {}
        self.runner_cells: dict[int, tuple[str, ...]] = {}
        self.finished = False
        self.version = 0
        self.t0: float | None = None
        self.caveats: list[str] = []
        self.preflight: dict[str, tuple[str, ...]] = {}
        self.unknown_kinds: list[str] = []
        self.windows: dict[str, ApprovalWindow] = {}
        self.gpu = GpuBusyFold()
        self.alive = False

    def _cell(self, cell_id: str) -> _Live:
        if cell_id not in self.live:
            self.live[cell_id] = _Live()
        return self.live[cell_id]

    # --- events ---------------------------------------------------------------------------------------------
    def apply_events(self, events: list[Event]) -> None:
        for e in events:
            self._apply(e)
        if events:
            self.version += 1

    def _apply(self, e: Event) -> None:
        self.gpu.add(e)
        if isinstance(e, ApprovalWindowOpened):
            self.windows[e.serving_key] = ApprovalWindow(e.serving_key, str(e.cell_id or ""), float(e.until))
        elif isinstance(e, ServerStopped):  # the server is gone: nothing is kept warm
            self.windows.pop(e.serving_key, None)
        elif isinstance(e, RunFinished):
            self.windows.clear()
        if isinstance(e, RunStarted):
            self.runner_cells[int(e.pid or 0)] = tuple(e.cells or ())
            self.finished = False
        elif isinstance(e, RunFinished):
            self.finished = True
        elif isinstance(e, UnknownEvent):
            if e.unknown_kind not in self.unknown_kinds:  # reported once per kind, never dropped silently
                self.unknown_kinds.append(e.unknown_kind)
            return
        cid = e.cell_id
        if not cid:
            if isinstance(e, PhaseProgress) and e.phase == "caveat" and e.detail not in self.caveats:
                self.caveats.append(str(e.detail))
            return
        if cid not in self.infos:  # a cell the experiment no longer has: still show it
            self.infos[cid] = CellInfo.from_store(cid, {})
            self.order.append(cid)
        c = self._cell(cid)
        text = describe(e) if not isinstance(e, PhaseProgress) else None  # progress is shown live, not listed
        if text:
            text = text.removeprefix(f"{cid}: ")  # the cell view names the cell already
            c.activity.extend(f"[{stamp(e.ts)}] {line}" for line in text.splitlines())
        match e:
            case CellStateChanged():
                c.progress, c.phases = None, {}
            case PhaseProgress():
                c.phases[e.phase] = (int(e.done), int(e.total))
                c.progress = summed_progress(c.phases)
            case SpeedMeasured(scope="point"):
                c.tok_s = _f(e.tok_s_median)
                lo, hi = _f(e.tok_s_min), _f(e.tok_s_max)
                c.tok_s_range = (lo, hi) if lo is not None and hi is not None else None
                c.activity.append(f"[{stamp(e.ts)}] speed {c.tok_s or 0:.1f} tok/s (median of repeats)")
            case AcceptanceMeasured(scope="point"):
                reading = AcceptanceReading(_f(e.mean_acceptance_length), tuple(e.per_position_rates or ()),
                                            _f(e.draft_acceptance_rate),
                                            "/metrics" if e.source == "metrics" else "log, whole phase")
                if e.source == "metrics" or c.final is None:
                    c.final = reading
            case SpecDecodeLive():
                c.live = AcceptanceReading(_f(e.mean_acceptance_length), tuple(e.per_position_acceptance or ()),
                                           _f(e.draft_acceptance_rate), "log, last interval")
            case EngineStatsLive() if e.generation_throughput is not None:
                if self.t0 is None:
                    self.t0 = e.ts
                c.throughput.append((e.ts - self.t0, float(e.generation_throughput)))
            case ServerStarting() if e.log_path:
                c.log_path = str(e.log_path)
            case ResultRecorded(doc="placement"):
                c.node = node_label(e.parts.get("where")) or None

    def apply_log_stats(self, cell_id: str, throughput: list[tuple[float, float]],
                        live: AcceptanceReading | None) -> None:
        """Stats parsed from the watched cell's server.log (used when the runner emits no live events)."""
        c = self._cell(cell_id)
        c.log_throughput = tuple(throughput)  # the server's whole log: preferred over the events' excerpt
        if live is not None:
            c.live = live
        self.version += 1

    # --- store ----------------------------------------------------------------------------------------------
    def apply_store(self, cells: list[Any], speed: list[tuple[str, str, str, dict[str, Any]]],
                    verdicts: list[tuple[str, str, bool, dict[str, Any]]], runner: dict[str, Any] | None,
                    pending: dict[str, str] | None = None) -> None:
        rows = {r.cell_id: r for r in cells}
        pending = pending or {}
        spd = {m[0]: m[3] for m in speed}
        ver: dict[str, list[Verdict]] = {}
        for cid, bench, passed, data in verdicts:
            ver.setdefault(cid, []).append(Verdict(
                bench, passed, _f(data.get("score")), _f(data.get("threshold")),
                int(data["n"]) if data.get("n") is not None else None, tuple(data.get("reasons") or ()),
                tuple(data.get("notes") or ()), dict(data.get("estimate") or {})))
        for cid, row in rows.items():
            if cid not in self.infos:
                self.order.append(cid)
            if cid not in self.infos or not self.infos[cid].method:  # first seen in an event: no method yet
                self.infos[cid] = CellInfo.from_store(cid, row.info)
        changed = (
            {k: (r.state, r.reason) for k, r in rows.items()} != {k: (r.state, r.reason) for k, r in self.rows.items()}
            or spd != self.speed or ver != self.verdicts or runner != self.runner or pending != self.pending
        )
        alive = runner is not None and runner_alive(runner)  # judged at every look: a killed runner shows dead
        changed = changed or alive != self.alive
        self.rows, self.speed, self.verdicts, self.runner, self.pending = rows, spd, ver, runner, pending
        self.alive = alive
        if changed:
            self.version += 1

    # --- the picture ----------------------------------------------------------------------------------------
    def _tok_s(self, cid: str) -> float | None:
        s = self.speed.get(cid)
        if s and s.get("tok_s") is not None:
            return _f(s["tok_s"])
        live = self.live.get(cid)
        return live.tok_s if live else None

    def snapshot(self) -> RunSnapshot:
        ar: dict[tuple[str, str, str, int], float] = {}
        for cid, info in self.infos.items():
            tok = self._tok_s(cid)
            if info.method == "ar" and tok:
                ar[info.baseline_key] = tok
        out = []
        for cid in self.order:
            info = self.infos[cid]
            row = self.rows.get(cid)
            live = self.live.get(cid) or _Live()
            s = self.speed.get(cid) or {}
            tok = self._tok_s(cid)
            base = ar.get(info.baseline_key)
            speedup = tok / base if tok and base and info.method != "ar" else None
            final = live.final
            mal = _f(s.get("mean_acceptance_length", s.get("acceptance_length")))
            if final is None and mal is not None:
                final = AcceptanceReading(mal, tuple(s.get("per_position") or ()), None, "speed phase")
            rng = live.tok_s_range
            if s.get("tok_s_min") is not None and s.get("tok_s_max") is not None:
                rng = (float(s["tok_s_min"]), float(s["tok_s_max"]))
            eval_cell = row.info.get("eval_cell") if row is not None else None
            verdicts = tuple(self.verdicts.get(eval_cell or cid, ()))
            log_path = live.log_path
            if self.run_dir is not None:
                folder = RunFolder(self.run_dir)
                link = folder.cell_dir(cid) / "server.log"
                shared = folder.servers_dir / f"{row.serving_key}.log" if row is not None and row.serving_key else None
                if link.exists():
                    log_path = str(link)
                elif shared is not None and shared.exists():
                    log_path = str(shared)
            out.append(CellStatus(
                info=info, state=row.state if row is not None else CellState.PLANNED, in_run=row is not None,
                reason=row.reason if row is not None else None,
                progress=live.progress if row is not None and not row.state.terminal else None,
                tok_s=tok, tok_s_range=rng, speedup=speedup, final_acceptance=final,
                live_acceptance=live.live, verdicts=verdicts, eval_cell=eval_cell,
                throughput=live.log_throughput or tuple(live.throughput), activity=tuple(live.activity),
                log_path=log_path, node=live.node,
                pending=self.pending.get(cid) if row is not None or self.pending.get(cid) == "start" else None))
        pid = int(self.runner["pid"]) if self.runner else None
        alive = self.runner is not None and runner_alive(self.runner)
        rows = self.rows
        windows = tuple(w for w in self.windows.values() if w.cell_id in rows and not self.pending.get(w.cell_id)
                        and rows[w.cell_id].state is CellState.AWAITING_APPROVAL)
        up = bool(self.gpu.up_since or self.gpu.starting)
        return RunSnapshot(
            run_dir=str(self.run_dir) if self.run_dir else None, experiment=self.experiment, cells=tuple(out),
            runner_pid=pid, runner_alive=alive, runner_cells=self.runner_cells.get(pid or -1, ()),
            finished=self.finished, version=self.version, caveats=tuple(self.caveats),
            preflight=dict(self.preflight), windows=windows,
            gpu=self.gpu.figure(time.time() if up and alive else None),
            unknown_kinds=tuple(self.unknown_kinds))
