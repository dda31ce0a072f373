"""The core speaks in events: frozen dataclasses, one JSON line each in `events.jsonl`.

The CLI prints them, the TUI renders them; both read the same stream and match on these classes (never on
`kind` strings). This module is the one registry: every event type is defined here and listed in
`EVENT_TYPES` (`kind` → class), so reading `events.jsonl` needs no other import. A line whose kind this
version does not know (a newer writer) comes back as an `UnknownEvent` that keeps what it said: readers
report it, they never drop it silently.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class Event:
    """Base: every event names its run and (when it has one) its cell, and when it happened. `eid` is the
    event's own id, made where it happened: the run's sink (console/run/sink.py) applies an event once, so an
    event shipped twice (a worker on another box retrying) changes nothing the second time."""

    kind: ClassVar[str] = "event"
    run_id: str = ""
    cell_id: str | None = None
    ts: float = field(default_factory=time.time)
    eid: str = field(default_factory=lambda: uuid.uuid4().hex, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **dataclasses.asdict(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), default=str, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Event:
        """The event a `to_dict()` (or a line of events.jsonl) describes, of its own class: what a run's sink
        applies for an event shipped from another box."""
        return from_dict(data)


@dataclass(frozen=True)
class ServerStarting(Event):
    """A server launch began (the command is disclosed, the API key redacted)."""

    kind: ClassVar[str] = "server_starting"
    serving_key: str = ""
    command: str = ""
    log_path: str = ""


@dataclass(frozen=True)
class ServerReady(Event):
    """/health answered 200."""

    kind: ClassVar[str] = "server_ready"
    serving_key: str = ""
    url: str = ""
    startup_s: float | None = None
    attached: bool = False


@dataclass(frozen=True)
class ServerFailed(Event):
    """The server did not come up; `reason` is a stable code and `fix` what to change."""

    kind: ClassVar[str] = "server_failed"
    serving_key: str = ""
    reason: str = ""
    message: str = ""
    fix: str = ""
    evidence: str | None = None


@dataclass(frozen=True)
class ServerStopped(Event):
    """The server's process group is gone (or `survivors` says what is left)."""

    kind: ClassVar[str] = "server_stopped"
    serving_key: str = ""
    signal_used: str = ""
    seconds: float = 0.0
    survivors: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunStarted(Event):
    """A runner took the run (fresh or resumed)."""

    kind: ClassVar[str] = "run_started"
    experiment: str = ""
    cells: tuple[str, ...] = ()
    resumed: bool = False
    pid: int = 0
    until: str = ""
    """How far this runner goes (speed, smoke, full): kept in the store's meta."""
    caveats: tuple[str, ...] = ()
    """Engine defects that apply to the run's cells (console/experiment/caveats.py)."""


@dataclass(frozen=True)
class RunFrozen(Event):
    """A new run's identity, recorded once when its experiment is frozen into the run folder."""

    kind: ClassVar[str] = "run_frozen"
    experiment: str = ""
    origin_dir: str = ""
    benchmarks: tuple[dict[str, Any], ...] = ()
    vllm_version: str | None = None
    device_name: str = ""


@dataclass(frozen=True)
class CellsRegistered(Event):
    """Cells enter the run as planned (each `{"cell_id", "serving_key", "info"}`); cells already known keep
    their state."""

    kind: ClassVar[str] = "cells_registered"
    cells: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class StageCleared(Event):
    """A stage's items, results and (smoke) verdicts are forgotten so it runs again (re-run smoke)."""

    kind: ClassVar[str] = "stage_cleared"
    stage: str = ""
    reason: str = ""


@dataclass(frozen=True)
class RunFinished(Event):
    """The runner stopped: everything asked for is done, or it is waiting on nobody."""

    kind: ClassVar[str] = "run_finished"
    states: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CellStateChanged(Event):
    """A cell moved in the state machine."""

    kind: ClassVar[str] = "cell_state"
    old: str = ""
    new: str = ""
    reason: str | None = None


@dataclass(frozen=True)
class PhaseProgress(Event):
    """Long work reports done / total."""

    kind: ClassVar[str] = "phase_progress"
    phase: str = ""
    done: int = 0
    total: int = 0
    detail: str = ""


@dataclass(frozen=True)
class EvalItemDone(Event):
    """One benchmark item scored, with what the model said (the store's `items` row is made from it)."""

    kind: ClassVar[str] = "eval_item"
    bench_id: str = ""
    stage: str = ""
    item_id: str = ""
    correct: bool | None = None
    extracted: str | None = None
    raw_output: str = ""
    target: str | None = None
    finish_reason: str | None = None
    output_tokens: int | None = None


@dataclass(frozen=True)
class EvalFinished(Event):
    """A benchmark stage finished for a cell: the normalised result."""

    kind: ClassVar[str] = "eval_result"
    bench_id: str = ""
    stage: str = ""
    result: dict[str, Any] = field(default_factory=dict)
    wall_s: float | None = None
    """Wall time of this attempt (framework start-up included)."""
    resumed_with: int = 0
    """Items an earlier (killed) attempt had already committed."""


@dataclass(frozen=True)
class SmokeVerdictEvent(Event):
    """The smoke gate's verdict for a cell × benchmark, with reasons and the full-run estimate."""

    kind: ClassVar[str] = "smoke_verdict"
    bench_id: str = ""
    passed: bool = False
    reasons: tuple[str, ...] = ()
    score: float | None = None
    estimate: dict[str, Any] = field(default_factory=dict)
    threshold: float | None = None
    n: int = 0
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ApprovalRequested(Event):
    """A cell waits for an operator: `specdeck approve RUN CELL` or the TUI's approval dialog."""

    kind: ClassVar[str] = "approval_requested"
    estimate: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ApprovalDecided(Event):
    """An operator (or --yes-after-smoke) approved or rejected a full run."""

    kind: ClassVar[str] = "approval_decided"
    bench_id: str | None = None
    approved: bool = False
    who: str = ""
    reason: str | None = None
    decided_at: float | None = None
    """When the operator recorded the decision (the event's `ts` is when the runner took it)."""
    estimate: dict[str, Any] = field(default_factory=dict)

# --- what the bench phases measure ------------------------------------------------------------------------------
@dataclass(frozen=True)
class PhaseFailed(Event):
    """A phase could not run for a cell; `reason` says why and `fix` what to change."""

    kind: ClassVar[str] = "phase_failed"
    phase: str = ""
    reason: str = ""
    fix: str = ""


@dataclass(frozen=True)
class SpeedMeasured(Event):
    """One speed point: non-streaming tok/s over the repeats (median, min, max), failures included."""

    kind: ClassVar[str] = "speed_result"
    context_tokens: int = 0
    concurrency: int = 0
    scope: str = "point"
    """`point` for the cell's workload, `category:<name>` for a category batch."""
    tok_s_median: float = 0.0
    tok_s_min: float = 0.0
    tok_s_max: float = 0.0
    requests: int = 0
    failures: int = 0
    server_log_gen_tok_s: float | None = None
    repeats: int = 0
    max_tokens: int = 0
    mean_acceptance_length: float | None = None
    """The point's acceptance length from /metrics deltas (None: AR, or no drafts)."""


@dataclass(frozen=True)
class ResultRecorded(Event):
    """A part of a cell's result document (`doc`: speed, acceptance, categories' rows, determinism, niah,
    latency): the full detail a bench phase measured, top-level keys in `parts`. The store's `results` table
    holds it; `cells/<cell>/<doc>.json` is its export for people."""

    kind: ClassVar[str] = "result_recorded"
    doc: str = ""
    parts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AcceptanceMeasured(Event):
    """Acceptance over one interval from /metrics counter deltas (`source` = metrics) or the log lines."""

    kind: ClassVar[str] = "acceptance_result"
    scope: str = ""
    source: str = "metrics"
    num_drafts: int = 0
    mean_acceptance_length: float | None = None
    draft_acceptance_rate: float | None = None
    per_position_rates: tuple[float, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class LatencyMeasured(Event):
    """Streaming TTFT / inter-token latency (latency only: never a throughput)."""

    kind: ClassVar[str] = "latency_result"
    ttft_p50_s: float | None = None
    itl_p50_s: float | None = None
    tokens_per_chunk_mean: float | None = None


@dataclass(frozen=True)
class DeterminismMeasured(Event):
    """Greedy token sequences: AR vs AR (control) and technique vs AR, k of N identical."""

    kind: ClassVar[str] = "determinism_result"
    role: str = ""
    """`control` (AR vs AR) or `technique` (technique vs AR)."""
    matches: int = 0
    total: int = 0
    first_divergences: tuple[int, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class NiahMeasured(Event):
    """Needle-in-a-haystack at one context length: k of the depths found."""

    kind: ClassVar[str] = "niah_result"
    context_tokens: int = 0
    found: int = 0
    total: int = 0


@dataclass(frozen=True)
class EngineStatsLive(Event):
    """A parsed `Avg generation throughput` log line (one logging interval of the engine), for live display."""

    kind: ClassVar[str] = "engine_stats"
    generation_throughput: float | None = None
    prompt_throughput: float | None = None
    running: int | None = None
    waiting: int | None = None
    kv_cache_usage_pct: float | None = None


@dataclass(frozen=True)
class SpecDecodeLive(Event):
    """A parsed `SpecDecoding metrics:` log line: live acceptance over one logging interval."""

    kind: ClassVar[str] = "spec_decode_stats"
    mean_acceptance_length: float | None = None
    accepted_tokens: int | None = None
    drafted_tokens: int | None = None
    per_position_acceptance: tuple[float, ...] = field(default_factory=tuple)
    draft_acceptance_rate: float | None = None


@dataclass(frozen=True)
class UnknownEvent(Event):
    """A line of `events.jsonl` whose kind this version does not know (a newer specdeck wrote it): what it said
    is kept in `data`, so a reader can say so instead of dropping it."""

    kind: ClassVar[str] = "unknown"
    unknown_kind: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**self.data, "kind": self.unknown_kind}



@dataclass(frozen=True)
class CellsSelected(Event):
    """The runner took newly selected cells into its run (the console's `s` while it works, or a decision
    for a cell outside its selection): one runner per run, which grows its selection through the store."""

    kind: ClassVar[str] = "cells_selected"
    cells: tuple[str, ...] = ()
    pid: int = 0


@dataclass(frozen=True)
class ApprovalWindowOpened(Event):
    """A serving config's approval cell waits for the operator and its server stays up until `until` (epoch
    seconds): an approval before then runs the full run on the warm server; after it, the server is stopped."""

    kind: ClassVar[str] = "approval_window"
    serving_key: str = ""
    until: float = 0.0
    seconds: float = 0.0


@dataclass(frozen=True)
class ServerBusy(Event):
    """A phase that sends requests to the server ran from `started` for `seconds` (speed, smoke:BENCH,
    full:BENCH): the GPU-busy figure's time with requests in flight."""

    kind: ClassVar[str] = "server_busy"
    serving_key: str = ""
    phase: str = ""
    started: float = 0.0
    seconds: float = 0.0


EVENT_TYPES: dict[str, type[Event]] = {cls.kind: cls for cls in (
    ServerStarting, ServerReady, ServerFailed, ServerStopped,
    RunStarted, RunFinished, CellStateChanged, PhaseProgress, PhaseFailed,
    EvalItemDone, EvalFinished, SmokeVerdictEvent, ApprovalRequested, ApprovalDecided,
    SpeedMeasured, AcceptanceMeasured, LatencyMeasured, DeterminismMeasured, NiahMeasured,
    EngineStatsLive, SpecDecodeLive, CellsSelected, ApprovalWindowOpened, ServerBusy,
    RunFrozen, CellsRegistered, StageCleared, ResultRecorded,
)}
"""Every event this version writes and reads, by kind (tests/unit/test_events.py checks that no Event
subclass anywhere in `console` is missing from it)."""


def register(cls: type[Event]) -> type[Event]:
    """Add an event type to `EVENT_TYPES` (prefer listing it there: a type registered from another module is
    unknown to a reader that did not import that module)."""
    known = EVENT_TYPES.get(cls.kind)
    if known is not None and known is not cls:
        raise ValueError(f"event kind {cls.kind!r} is taken by {known.__qualname__}")
    EVENT_TYPES[cls.kind] = cls
    return cls


def from_dict(data: dict[str, Any]) -> Event:
    """Rebuild an event from its JSON form; a kind this version does not know comes back as `UnknownEvent`."""
    data = dict(data)
    kind = str(data.pop("kind", ""))
    data.pop("seq", None)  # the line's place in events.jsonl (console/run/sink.py), not part of the event
    cls = EVENT_TYPES.get(kind)
    if cls is None:
        ts = data.get("ts")
        return UnknownEvent(run_id=str(data.get("run_id") or ""), cell_id=data.get("cell_id"),
                            ts=float(ts) if isinstance(ts, (int, float)) else time.time(),
                            eid=str(data.get("eid") or uuid.uuid4().hex), unknown_kind=kind, data=data)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items() if k in names}
    return cls(**kwargs)
