"""The core speaks in events: frozen dataclasses, one JSON line each in `events.jsonl`.

The CLI prints them, the TUI renders them; both read the same stream.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class Event:
    """Base: every event names its run and (when it has one) its cell, and when it happened."""

    kind: ClassVar[str] = "event"
    run_id: str = ""
    cell_id: str | None = None
    ts: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **dataclasses.asdict(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), default=str, separators=(",", ":"))


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


EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls for cls in (ServerStarting, ServerReady, ServerFailed, ServerStopped)
}


def register(cls: type[Event]) -> type[Event]:
    """Class decorator for event types defined elsewhere, so `from_dict` can rebuild them."""
    EVENT_TYPES[cls.kind] = cls
    return cls


def from_dict(data: dict[str, Any]) -> Event:
    """Rebuild an event from its JSON form (unknown kinds come back as a plain Event)."""
    data = dict(data)
    cls = EVENT_TYPES.get(data.pop("kind", ""), Event)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items() if k in names}
    return cls(**kwargs)


@register
@dataclass(frozen=True)
class RunStarted(Event):
    """A runner took the run (fresh or resumed)."""

    kind: ClassVar[str] = "run_started"
    experiment: str = ""
    cells: tuple[str, ...] = ()
    resumed: bool = False
    pid: int = 0


@register
@dataclass(frozen=True)
class RunFinished(Event):
    """The runner stopped: everything asked for is done, or it is waiting on nobody."""

    kind: ClassVar[str] = "run_finished"
    states: dict[str, str] = field(default_factory=dict)


@register
@dataclass(frozen=True)
class CellStateChanged(Event):
    """A cell moved in the state machine."""

    kind: ClassVar[str] = "cell_state"
    old: str = ""
    new: str = ""
    reason: str | None = None


@register
@dataclass(frozen=True)
class PhaseProgress(Event):
    """Long work reports done / total."""

    kind: ClassVar[str] = "phase_progress"
    phase: str = ""
    done: int = 0
    total: int = 0
    detail: str = ""


@register
@dataclass(frozen=True)
class EvalItemDone(Event):
    """One benchmark item scored (committed to the store before this event is written)."""

    kind: ClassVar[str] = "eval_item"
    bench_id: str = ""
    stage: str = ""
    item_id: str = ""
    correct: bool | None = None
    extracted: str | None = None


@register
@dataclass(frozen=True)
class EvalFinished(Event):
    """A benchmark stage finished for a cell: the normalised result."""

    kind: ClassVar[str] = "eval_result"
    bench_id: str = ""
    stage: str = ""
    result: dict[str, Any] = field(default_factory=dict)


@register
@dataclass(frozen=True)
class SmokeVerdictEvent(Event):
    """The smoke gate's verdict for a cell × benchmark, with reasons and the full-run estimate."""

    kind: ClassVar[str] = "smoke_verdict"
    bench_id: str = ""
    passed: bool = False
    reasons: tuple[str, ...] = ()
    score: float | None = None
    estimate: dict[str, Any] = field(default_factory=dict)


@register
@dataclass(frozen=True)
class ApprovalRequested(Event):
    """A cell waits for an operator: `specdeck approve RUN CELL` or the TUI's approval dialog."""

    kind: ClassVar[str] = "approval_requested"
    estimate: dict[str, Any] = field(default_factory=dict)


@register
@dataclass(frozen=True)
class ApprovalDecided(Event):
    """An operator (or --yes-after-smoke) approved or rejected a full run."""

    kind: ClassVar[str] = "approval_decided"
    bench_id: str | None = None
    approved: bool = False
    who: str = ""
    reason: str | None = None
