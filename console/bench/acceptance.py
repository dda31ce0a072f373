"""Acceptance around a measured interval, from two sources that must agree.

The exact source is vLLM's /metrics counters, snapshotted before and after an interval with no other
traffic on the server (the bench holds the server's lock, and the finished-request counter proves nobody
else used it). The live source is the `SpecDecoding metrics:` log lines, shown as events while a phase runs;
when they cover the same interval as the counters, the mean acceptance lengths agree within 0.05.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from console.bench.client import BenchClient
from console.events import EngineStatsLive, Event, SpecDecodeLive
from console.serve import logparse
from console.serve.logfold import ServerLogFold
from console.serve.metrics import (
    DIFFUSION_PREFIX,
    SPEC_DECODE_PREFIX,
    AcceptanceStats,
    MetricsSnapshot,
    acceptance_between,
    acceptance_from_log,
    parse_metrics,
)

AGREEMENT_TOLERANCE = 0.05
"""|mean acceptance length (metrics) − (log)| allowed when both cover the same interval."""
REQUEST_SUCCESS = "vllm:request_success"
"""Counter of finished requests (labelled by finish reason): proves no foreign traffic in an interval."""
MARK_PREFIXES = (SPEC_DECODE_PREFIX, DIFFUSION_PREFIX, REQUEST_SUCCESS)
"""The only counters a mark reads: parsing the rest of a scrape cost more client CPU than the requests."""
_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = weakref.WeakKeyDictionary()


def server_lock(base_url: str) -> asyncio.Lock:
    """One lock per server (per event loop): a phase that measures holds it, so no other phase sends traffic
    to that server meanwhile (traffic from outside is caught by the finished-request counter)."""
    locks = _LOCKS.setdefault(asyncio.get_running_loop(), {})
    return locks.setdefault(base_url.rstrip("/"), asyncio.Lock())


@dataclass(frozen=True)
class Mark:
    """One instant on one server: its /metrics snapshot, its finished-request count, and how far its log
    had got (a byte offset), so that any two marks bound an interval in both sources."""

    metrics: MetricsSnapshot
    log_offset: int

    @property
    def finished(self) -> float | None:
        """Requests the server has finished (Σ `vllm:request_success` over finish reasons)."""
        return self.metrics.total(REQUEST_SUCCESS)


@dataclass(frozen=True)
class Agreement:
    """Metrics vs log over the same interval: both mean acceptance lengths and whether they agree."""

    metrics_mean_acceptance_length: float | None
    log_mean_acceptance_length: float | None
    tolerance: float = AGREEMENT_TOLERANCE

    @property
    def difference(self) -> float | None:
        a, b = self.metrics_mean_acceptance_length, self.log_mean_acceptance_length
        return None if a is None or b is None else abs(a - b)

    @property
    def agrees(self) -> bool | None:
        d = self.difference
        return None if d is None else d <= self.tolerance

    def to_dict(self) -> dict[str, Any]:
        return {"metrics_mean_acceptance_length": self.metrics_mean_acceptance_length,
                "log_mean_acceptance_length": self.log_mean_acceptance_length,
                "difference": self.difference, "tolerance": self.tolerance, "agrees": self.agrees}


def log_size(path: Path | None) -> int:
    try:
        return os.path.getsize(path) if path else 0
    except OSError:
        return 0


def log_events_between(path: Path | None, start: int, end: int) -> list[logparse.Event]:
    """Parsed events of the complete log lines written between two byte offsets."""
    if path is None or end <= start:
        return []
    try:
        with open(path, "rb") as f:
            f.seek(start)
            data = f.read(end - start)
    except OSError:
        return []
    cut = data.rfind(b"\n") + 1
    return logparse.parse_lines(data[:cut].decode("utf-8", errors="replace").splitlines())


def spec_lines(events: list[logparse.Event]) -> list[logparse.SpecDecodeStats]:
    return [e for e in events if isinstance(e, logparse.SpecDecodeStats)]


def busy_generation_throughput(events: list[logparse.Event]) -> float | None:
    """Mean of the server's own `Avg generation throughput` (summed over its engines, one value per logging
    tick: `console.serve.logfold`) over the ticks in which it was busy (Running > 0 at the tick; else every
    tick that generated tokens: on a short phase every tick may fall between requests). A cross-check
    only: those intervals include idle gaps and are not aligned with the bench's wall clock."""
    return ServerLogFold().add_all(events).close().busy_generation_throughput


def live_event(ev: Any, run_id: str, cell_id: str | None) -> Event | None:
    """A log event as a bench event for events.jsonl (raw lines stay in server.log)."""
    if isinstance(ev, logparse.SpecDecodeStats):
        return SpecDecodeLive(run_id=run_id, cell_id=cell_id, mean_acceptance_length=ev.mean_acceptance_length,
                              accepted_tokens=ev.accepted_tokens, drafted_tokens=ev.drafted_tokens,
                              per_position_acceptance=tuple(ev.per_position_acceptance),
                              draft_acceptance_rate=ev.draft_acceptance_rate)
    if isinstance(ev, logparse.EngineStats):
        return EngineStatsLive(run_id=run_id, cell_id=cell_id, generation_throughput=ev.generation_throughput,
                               prompt_throughput=ev.prompt_throughput, running=ev.running, waiting=ev.waiting,
                               kv_cache_usage_pct=ev.kv_cache_usage_pct)
    return None


class AcceptanceProbe:
    """Marks and diffs for one server, read through the bench's own session. `speculative=False` (AR)
    still marks the log and the request count but reports no acceptance."""

    def __init__(self, client: BenchClient, log_path: Path | None, *, speculative: bool,
                 log_interval_s: float | None = None) -> None:
        self.client = client
        self.log_path = Path(log_path) if log_path else None
        self.speculative = speculative
        self.log_interval_s = log_interval_s

    async def mark(self) -> Mark:
        return Mark(parse_metrics(await self.client.metrics_text(), prefixes=MARK_PREFIXES), log_size(self.log_path))

    def acceptance(self, a: Mark, b: Mark) -> AcceptanceStats | None:
        """AcceptanceStats from the counter deltas (None for AR)."""
        return acceptance_between(a.metrics, b.metrics) if self.speculative else None

    def log_acceptance(self, a: Mark, b: Mark) -> AcceptanceStats | None:
        """AcceptanceStats from the `SpecDecoding metrics:` lines written between the marks."""
        lines = spec_lines(log_events_between(self.log_path, a.log_offset, b.log_offset))
        return acceptance_from_log(lines) if lines and self.speculative else None

    def foreign_requests(self, a: Mark, b: Mark, ours: int) -> int | None:
        """Requests the server finished between the marks that were not ours (should be 0)."""
        if a.finished is None or b.finished is None:
            return None
        return int(round(b.finished - a.finished)) - ours

    async def settle(self) -> None:
        """Wait until the log has printed the interval that holds the last traffic (one logging tick)."""
        if self.log_interval_s:
            await asyncio.sleep(self.log_interval_s + min(0.6, self.log_interval_s / 2))

    def agreement(self, a: Mark, b: Mark) -> Agreement | None:
        m, lg = self.acceptance(a, b), self.log_acceptance(a, b)
        if m is None:
            return None
        return Agreement(_finite(m.mean_acceptance_length), _finite(lg.mean_acceptance_length) if lg else None)


def _finite(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


class LiveLog:
    """Tails a server log while a phase runs and emits its stats lines as events (`async with`)."""

    def __init__(self, path: Path | None, emit: Callable[[Event], None], run_id: str, cell_id: str | None,
                 poll_s: float = 1.0) -> None:
        self.path = path
        self.emit = emit
        self.run_id = run_id
        self.cell_id = cell_id
        self.poll_s = poll_s
        self.offset = log_size(path)
        self._task: asyncio.Task[None] | None = None

    def poll(self) -> None:
        if self.path is None:
            return
        events, self.offset = logparse.tail_file(self.path, self.offset)
        for ev in events:
            out = live_event(ev, self.run_id, self.cell_id)
            if out is not None:
                self.emit(out)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            self.poll()

    async def __aenter__(self) -> LiveLog:
        if self.path is not None:
            self._task = asyncio.create_task(self._loop())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.poll()
