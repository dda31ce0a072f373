"""How busy the accelerator was, from a run's events: wall time, server-up time, start-up time, time with
requests in flight, starts per serving config. Read by `specdeck status`, `specdeck report` and the console.

- start-up: `server_starting` → `server_ready` (or `server_failed`): the GPU holds a loading server, no work.
- server up: `server_ready` → `server_stopped` (or the end of the events while it is still up).
- requests in flight: the `server_busy` spans the runner records around every phase that sends requests
  (speed, smoke and full of each benchmark; for a phase still under way, the time since its cell entered that
  state), merged where they overlap (a stage's benchmarks run side by side) and clipped to server-up time. A
  span includes what a phase does
  between requests (building prompts, an eval framework's own start-up: ~3 s for lm-eval), so it is an upper
  bound, close for the built-in evals, which send their items back to back.
- starts per config: `server_starting` events per serving key (1.0 = every config started once).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from console.events import (
    CellStateChanged,
    Event,
    RunFinished,
    ServerBusy,
    ServerFailed,
    ServerReady,
    ServerStarting,
    ServerStopped,
)
from console.experiment.cells import config_of
from console.units import human_seconds


@dataclass(frozen=True)
class GpuBusy:
    """The figure: seconds, and starts per serving key."""

    wall_s: float
    up_s: float
    startup_s: float
    busy_s: float
    starts: dict[str, int]
    end: float = 0.0
    """The moment the figure was taken up to."""
    open_up: int = 0
    """Servers still up at `end` (their up-time grows while nothing is logged: a server held for approval)."""
    open_starting: int = 0
    open_busy: int = 0
    """Servers with a phase under way at `end` (its `server_busy` span is recorded only when it ends)."""

    def at(self, now: float) -> GpuBusy:
        """The figure carried forward to `now` (no event since `end`): open up-time, start-up and phases under way
        keep counting."""
        dt = now - self.end
        if dt <= 0 or not (self.open_up or self.open_starting):
            return self
        return replace(self, wall_s=self.wall_s + dt, up_s=self.up_s + dt * self.open_up,
                       startup_s=self.startup_s + dt * self.open_starting,
                       busy_s=self.busy_s + dt * min(self.open_busy, self.open_up), end=now)

    @property
    def busy_share(self) -> float | None:
        """Time with requests in flight ÷ server-up time."""
        return self.busy_s / self.up_s if self.up_s > 0 else None

    @property
    def starts_per_config(self) -> float | None:
        return sum(self.starts.values()) / len(self.starts) if self.starts else None

    def short(self) -> str:
        """One line for the console's header."""
        if not self.starts:
            return "GPU: no server started yet"
        share = f"{self.busy_share:.0%}" if self.busy_share is not None else "-"
        return (f"GPU busy {share} of {human_seconds(self.up_s)} up · start-up {human_seconds(self.startup_s)} · "
                f"{self.starts_per_config:.1f} start(s)/config")

    def lines(self) -> list[str]:
        """The figure in full, for `status` and the report."""
        if not self.starts:
            return ["no server started yet"]
        share = f" ({self.busy_share:.0%} of server-up)" if self.busy_share is not None else ""
        per = ", ".join(f"{k} {n}" for k, n in sorted(self.starts.items()))
        return [f"wall time {human_seconds(self.wall_s)} · server up {human_seconds(self.up_s)} · "
                f"start-up {human_seconds(self.startup_s)}",
                f"requests in flight {human_seconds(self.busy_s)}{share}",
                f"server starts per serving config {self.starts_per_config:.2f} ({per})"]

    def to_dict(self) -> dict[str, Any]:
        return {"wall_s": self.wall_s, "up_s": self.up_s, "startup_s": self.startup_s, "busy_s": self.busy_s,
                "busy_share": self.busy_share, "starts": dict(self.starts),
                "starts_per_config": self.starts_per_config}


@dataclass
class GpuBusyFold:
    """Folds events one at a time (the console feeds it as it replays); `figure()` at any moment."""

    first: float | None = None
    last: float | None = None
    starting: dict[str, float] = field(default_factory=dict)
    up_since: dict[str, float] = field(default_factory=dict)
    up: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    startup_s: float = 0.0
    spans: list[tuple[str, float, float]] = field(default_factory=list)
    starts: dict[str, int] = field(default_factory=dict)
    key_of: dict[str, str] = field(default_factory=dict)
    """Serving config (a cell id without context and concurrency) → its server's serving key."""
    phase_since: dict[str, tuple[str, float]] = field(default_factory=dict)
    """Cells in speed, smoke or full: their serving key and since when (their span is not recorded yet)."""

    def add(self, e: Event) -> None:
        ts = e.ts
        self.first = ts if self.first is None else min(self.first, ts)
        self.last = ts if self.last is None else max(self.last, ts)
        if isinstance(e, (ServerStarting, ServerReady)) and e.cell_id:
            self.key_of[config_of(e.cell_id)] = e.serving_key
        if isinstance(e, CellStateChanged) and e.cell_id:
            key = self.key_of.get(config_of(e.cell_id))
            if e.new in BUSY_STATES and key is not None:
                self.phase_since[e.cell_id] = (key, ts)
            else:
                self.phase_since.pop(e.cell_id, None)
        if isinstance(e, ServerStarting):
            self.starting[e.serving_key] = ts
            self.starts[e.serving_key] = self.starts.get(e.serving_key, 0) + 1
        elif isinstance(e, (ServerReady, ServerFailed)):
            began = self.starting.pop(e.serving_key, None)
            if began is not None:
                self.startup_s += max(0.0, ts - began)
            if isinstance(e, ServerReady):
                self.up_since.setdefault(e.serving_key, ts)
        elif isinstance(e, ServerStopped):
            began = self.up_since.pop(e.serving_key, None)
            if began is not None:
                self.up.setdefault(e.serving_key, []).append((began, ts))
            self._close_phases(ts, e.serving_key)
        elif isinstance(e, ServerBusy):
            start = float(e.started or ts)
            self.spans.append((e.serving_key, start, start + float(e.seconds or 0.0)))
        elif isinstance(e, RunFinished):  # a runner that ends takes its servers down (pool.close) before this
            for k, began in list(self.up_since.items()):
                self.up.setdefault(k, []).append((began, ts))
            self.up_since.clear()
            self._close_phases(ts)

    def _close_phases(self, ts: float, key: str | None = None) -> None:
        """Phases under way on a server that stopped (or a run that finished) were busy until then."""
        for cell, (k, since) in list(self.phase_since.items()):
            if key is None or k == key:
                self.spans.append((k, since, max(since, ts)))
                del self.phase_since[cell]

    def figure(self, now: float | None = None) -> GpuBusy:
        end = now if now is not None else (self.last or 0.0)
        up = {k: list(v) for k, v in self.up.items()}
        for k, began in self.up_since.items():
            up.setdefault(k, []).append((began, max(began, end)))
        up_s = sum(b - a for iv in up.values() for a, b in iv)
        busy = 0.0
        under_way = [(key, since, max(since, end)) for key, since in self.phase_since.values()]
        for key, a, b in merged([*self.spans, *under_way]):
            for ua, ub in up.get(key, []):
                busy += max(0.0, min(b, ub) - max(a, ua))
        startup = self.startup_s + sum(max(0.0, end - t) for t in self.starting.values())
        wall = (end - self.first) if self.first is not None else 0.0
        return GpuBusy(wall, up_s, startup, min(busy, up_s), dict(self.starts), end=end,
                       open_up=len(self.up_since), open_starting=len(self.starting),
                       open_busy=len({key for key, _ in self.phase_since.values() if key in self.up_since}))


BUSY_STATES = ("speed", "smoke", "full")
"""Cell states in which the runner sends requests to the cell's server."""


def merged(spans: Iterable[tuple[str, float, float]]) -> list[tuple[str, float, float]]:
    """Spans of one server that overlap (a stage's benchmarks run side by side) merged into one: time with
    requests in flight counts once."""
    out: list[tuple[str, float, float]] = []
    for key, a, b in sorted(spans):
        if out and out[-1][0] == key and a <= out[-1][2]:
            out[-1] = (key, out[-1][1], max(out[-1][2], b))
        else:
            out.append((key, a, b))
    return out


def gpu_busy(events: Iterable[Event], now: float | None = None) -> GpuBusy:
    """The figure from a run's events."""
    fold = GpuBusyFold()
    for e in events:
        fold.add(e)
    return fold.figure(now)


def run_gpu_busy(run_dir: Path, now: float | None = None) -> GpuBusy:
    """The figure of a run folder (its `events.jsonl`)."""
    from console.run.eventlog import read_events

    events, _ = read_events(Path(run_dir) / "events.jsonl")
    return gpu_busy(events, now)
