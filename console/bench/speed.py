"""The speed phase: an async, non-streaming load generator that measures throughput the honest way.

Per point (a cell's context × concurrency): warm-up requests (not counted), then R repeats of N requests.
throughput = Σ usage.completion_tokens / (last response − first send). Every response is checked — it must
carry exactly max_tokens tokens (ignore_eos honoured) — and errors are counted and reported, never averaged
away. Acceptance comes from /metrics around each repeat; the server's own log gives a cross-check.
A streaming meter is never used here: spec decoding commits tokens in bursts a streaming meter flattens.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from console.bench.acceptance import (
    AcceptanceProbe,
    Agreement,
    Mark,
    busy_generation_throughput,
    log_events_between,
)
from console.bench.client import BenchClient, Completion, Prompt
from console.bench.stats import Spread, latency_summary, nan_to_none, spread, throughput
from console.events import AcceptanceMeasured, Event, PhaseProgress, SpeedMeasured
from console.serve.metrics import AcceptanceStats

Emit = Callable[[Event], None]


@dataclass(frozen=True)
class SpeedConfig:
    """One speed point's workload; defaults are docs/design.md's measurement rules."""

    context_tokens: int
    concurrency: int
    max_tokens: int = 512
    repeats: int = 3
    requests_per_repeat: int | None = None
    """None: 2 × concurrency, at least 4."""
    warmup_requests: int = 2

    @property
    def n_requests(self) -> int:
        return self.requests_per_repeat or max(4, 2 * self.concurrency)

    @property
    def prompts_needed(self) -> int:
        return self.warmup_requests + self.repeats * self.n_requests


@dataclass(frozen=True)
class RequestRecord:
    """One timed request: start offset from the batch's first send, latency, usage, and what was wrong."""

    index: int
    start_s: float
    latency_s: float
    completion_tokens: int
    prompt_tokens: int
    finish_reason: str | None
    error: str | None = None
    short: bool = False
    """Fewer (or more) than max_tokens tokens: ignore_eos was not honoured (reasoning models drop it)."""

    @property
    def failed(self) -> bool:
        return self.error is not None or self.short

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "start_s": round(self.start_s, 6), "latency_s": round(self.latency_s, 6),
                "completion_tokens": self.completion_tokens, "prompt_tokens": self.prompt_tokens,
                "finish_reason": self.finish_reason, "error": self.error, "short": self.short}


def records_of(done: Sequence[Completion], max_tokens: int) -> list[RequestRecord]:
    """Completions → records, checking each against the rule (exactly max_tokens tokens)."""
    if not done:
        return []
    t0 = min(c.sent_at for c in done)
    return [RequestRecord(c.index, c.sent_at - t0, c.latency_s, c.completion_tokens, c.prompt_tokens,
                          c.finish_reason, c.error, short=c.error is None and c.completion_tokens != max_tokens)
            for c in sorted(done, key=lambda c: c.index)]


@dataclass(frozen=True)
class Batch:
    """A timed batch: its records and the wall clock from first send to last response."""

    records: tuple[RequestRecord, ...]
    wall_s: float

    @property
    def completion_tokens(self) -> int:
        return sum(r.completion_tokens for r in self.records)

    @property
    def tok_s(self) -> float:
        return throughput(self.completion_tokens, 0.0, self.wall_s)

    @property
    def failures(self) -> int:
        return sum(r.failed for r in self.records)

    @property
    def errors(self) -> list[str]:
        return [r.error for r in self.records if r.error] + [
            f"request {r.index}: {r.completion_tokens} tokens, not max_tokens (ignore_eos not honoured)"
            for r in self.records if r.short]


def batch_of(done: Sequence[Completion], max_tokens: int) -> Batch:
    wall = (max(c.done_at for c in done) - min(c.sent_at for c in done)) if done else 0.0
    return Batch(tuple(records_of(done, max_tokens)), wall)


async def run_batch(client: BenchClient, prompts: Sequence[Prompt], concurrency: int, max_tokens: int, *,
                    first_index: int = 0, on_done: Callable[[Completion], None] | None = None,
                    **request: Any) -> list[Completion]:
    """Send `prompts` with at most `concurrency` in flight (workers pulling from a queue), non-streaming."""
    queue: asyncio.Queue[tuple[int, Prompt]] = asyncio.Queue()
    for i, p in enumerate(prompts):
        queue.put_nowait((first_index + i, p))
    done: list[Completion] = []

    async def worker() -> None:
        while True:
            try:
                idx, prompt = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            c = await client.complete(idx, prompt, max_tokens, **request)
            done.append(c)
            if on_done is not None:
                on_done(c)

    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, len(prompts))))))
    return done


@dataclass(frozen=True)
class RepeatResult:
    """One timed repeat, with the acceptance its interval had (speculative cells) and whether anybody else
    used the server meanwhile (`foreign_requests` should be 0)."""

    index: int
    batch: Batch
    acceptance: AcceptanceStats | None = None
    foreign_requests: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "tok_s": self.batch.tok_s, "wall_s": self.batch.wall_s,
                "completion_tokens": self.batch.completion_tokens, "failures": self.batch.failures,
                "errors": self.batch.errors, "foreign_requests": self.foreign_requests,
                "latency_s": latency_summary([r.latency_s for r in self.batch.records if not r.error]),
                "requests": [r.to_dict() for r in self.batch.records]}


@dataclass(frozen=True)
class SpeedResult:
    """A speed point: non-streaming tok/s over R repeats (median, min, max), per-request latencies,
    failures, acceptance per repeat, and the server log's own generation throughput as a cross-check."""

    cell_id: str
    method: str
    config: SpeedConfig
    repeats: tuple[RepeatResult, ...]
    warmup: Batch
    acceptance_total: AcceptanceStats | None = None
    log_acceptance: AcceptanceStats | None = None
    agreement: Agreement | None = None
    server_log_gen_tok_s: float | None = None
    prompt_tokens_counted: tuple[int, ...] = field(default_factory=tuple)
    label: str = "throughput: non-streaming, Σ completion_tokens / wall clock (first send → last response)"

    @property
    def tok_s(self) -> Spread:
        return spread([r.batch.tok_s for r in self.repeats])

    @property
    def failures(self) -> int:
        return sum(r.batch.failures for r in self.repeats)

    @property
    def requests(self) -> int:
        return sum(len(r.batch.records) for r in self.repeats)

    @property
    def ok(self) -> bool:
        return self.failures == 0 and bool(self.repeats)

    def summary(self) -> dict[str, Any]:
        """What the runner stores and tables show (`tok_s` is the median)."""
        acc = self.acceptance_total
        return {"tok_s": nan_to_none(self.tok_s.median), "tok_s_min": nan_to_none(self.tok_s.min),
                "tok_s_max": nan_to_none(self.tok_s.max), "repeats": len(self.repeats),
                "requests": self.requests, "failures": self.failures,
                "context_tokens": self.config.context_tokens, "concurrency": self.config.concurrency,
                "max_tokens": self.config.max_tokens,
                "mean_acceptance_length": acc.mean_acceptance_length if acc else None,
                "server_log_gen_tok_s": self.server_log_gen_tok_s}

    def to_dict(self) -> dict[str, Any]:
        return {"cell_id": self.cell_id, "method": self.method, "label": self.label,
                "config": {**self.config.__dict__, "n_requests": self.config.n_requests},
                "summary": self.summary(), "tok_s": self.tok_s.to_dict(),
                "warmup": {"requests": len(self.warmup.records), "failures": self.warmup.failures,
                           "errors": self.warmup.errors, "counted": False},
                "server_log_gen_tok_s": self.server_log_gen_tok_s,
                "prompt_tokens_counted": sorted(set(self.prompt_tokens_counted)),
                "prompt_tokens_seen": sorted({r.prompt_tokens for rep in self.repeats for r in rep.batch.records
                                              if not r.error}),
                "repeats": [r.to_dict() for r in self.repeats]}

    def acceptance_dict(self) -> dict[str, Any]:
        return {"cell_id": self.cell_id, "method": self.method, "source": "metrics (/metrics counter deltas)",
                "total": _acc(self.acceptance_total),
                "repeats": [{"index": r.index, "foreign_requests": r.foreign_requests, **(_acc(r.acceptance) or {})}
                            for r in self.repeats],
                "log": _acc(self.log_acceptance),
                "agreement": self.agreement.to_dict() if self.agreement else None}


def _acc(stats: AcceptanceStats | None) -> dict[str, Any] | None:
    return stats.to_dict() if stats is not None else None


def acceptance_event(stats: AcceptanceStats, scope: str, source: str, run_id: str, cell_id: str) -> AcceptanceMeasured:
    return AcceptanceMeasured(run_id=run_id, cell_id=cell_id, scope=scope, source=source,
                              num_drafts=int(round(stats.num_drafts)),
                              mean_acceptance_length=nan_to_none(stats.mean_acceptance_length),
                              draft_acceptance_rate=nan_to_none(stats.draft_acceptance_rate),
                              per_position_rates=tuple(stats.per_position_rates or ()))


async def measure_speed(client: BenchClient, probe: AcceptanceProbe, prompts: Sequence[Prompt], cfg: SpeedConfig,
                        *, cell_id: str, method: str, run_id: str = "", emit: Emit | None = None,
                        check_log: bool = True, prompt_tokens_counted: Sequence[int] = ()) -> SpeedResult:
    """Warm up, then time `cfg.repeats` batches of `cfg.n_requests` distinct prompts at `cfg.concurrency`.
    Needs `cfg.prompts_needed` prompts (warm-up first). The caller holds the server's lock."""
    if len(prompts) < cfg.prompts_needed:
        raise ValueError(f"need {cfg.prompts_needed} prompts (warm-up + repeats × requests), got {len(prompts)}")
    send = emit or (lambda e: None)
    total = cfg.prompts_needed
    done_count = 0

    def progress(_: Completion) -> None:
        nonlocal done_count
        done_count += 1
        send(PhaseProgress(run_id=run_id, cell_id=cell_id, phase="speed", done=done_count, total=total))

    warm = await run_batch(client, prompts[:cfg.warmup_requests], cfg.concurrency, cfg.max_tokens, on_done=progress)
    if check_log:
        await probe.settle()  # the warm-up's drafts must land in a log line before the first mark
    first = await probe.mark()
    before: Mark = first
    repeats: list[RepeatResult] = []
    pos = cfg.warmup_requests
    for r in range(cfg.repeats):
        chunk = prompts[pos:pos + cfg.n_requests]
        done = await run_batch(client, chunk, cfg.concurrency, cfg.max_tokens, first_index=pos, on_done=progress)
        pos += cfg.n_requests
        after = await probe.mark()
        batch = batch_of(done, cfg.max_tokens)
        acc = probe.acceptance(before, after)
        repeats.append(RepeatResult(r, batch, acc, probe.foreign_requests(before, after, len(done))))
        if acc is not None:
            send(acceptance_event(acc, f"repeat:{r}", "metrics", run_id, cell_id))
        before = after
    if check_log:
        await probe.settle()
        final = await probe.mark()
    else:
        final = before
    total_acc = probe.acceptance(first, final)
    log_acc = probe.log_acceptance(first, final) if check_log else None
    agreement = probe.agreement(first, final) if check_log else None
    gen = busy_generation_throughput(log_events_between(probe.log_path, first.log_offset, final.log_offset))
    result = SpeedResult(cell_id, method, cfg, tuple(repeats), batch_of(warm, cfg.max_tokens), total_acc, log_acc,
                         agreement, gen, tuple(prompt_tokens_counted))
    s = result.tok_s
    send(SpeedMeasured(run_id=run_id, cell_id=cell_id, context_tokens=cfg.context_tokens,
                       concurrency=cfg.concurrency, tok_s_median=s.median, tok_s_min=s.min, tok_s_max=s.max,
                       requests=result.requests, failures=result.failures, server_log_gen_tok_s=gen,
                       repeats=len(repeats), max_tokens=cfg.max_tokens,
                       mean_acceptance_length=total_acc.mean_acceptance_length if total_acc else None))
    if total_acc is not None:
        send(acceptance_event(total_acc, "point", "metrics", run_id, cell_id))
    if log_acc is not None:
        send(acceptance_event(log_acc, "point", "log", run_id, cell_id))
    return result


@dataclass(frozen=True)
class CategoryResult:
    """Speed and acceptance of one prompt category (one timed batch of its prompts)."""

    category: str
    batch: Batch
    acceptance: AcceptanceStats | None = None
    foreign_requests: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"category": self.category, "requests": len(self.batch.records), "tok_s": self.batch.tok_s,
                "wall_s": self.batch.wall_s, "failures": self.batch.failures, "errors": self.batch.errors,
                "foreign_requests": self.foreign_requests, "acceptance": _acc(self.acceptance)}


async def measure_categories(client: BenchClient, probe: AcceptanceProbe, groups: dict[str, list[str]], *,
                             concurrency: int, max_tokens: int, cell_id: str, run_id: str = "",
                             emit: Emit | None = None) -> list[CategoryResult]:
    """One timed batch per category, acceptance diffed around each (the caller holds the server's lock)."""
    send = emit or (lambda e: None)
    out: list[CategoryResult] = []
    before = await probe.mark()
    for i, (category, prompts) in enumerate(groups.items()):
        t0 = time.perf_counter()
        done = await run_batch(client, prompts, concurrency, max_tokens)
        after = await probe.mark()
        batch = batch_of(done, max_tokens) if done else Batch((), time.perf_counter() - t0)
        acc = probe.acceptance(before, after)
        out.append(CategoryResult(category, batch, acc, probe.foreign_requests(before, after, len(done))))
        send(SpeedMeasured(run_id=run_id, cell_id=cell_id, concurrency=concurrency, scope=f"category:{category}",
                           tok_s_median=batch.tok_s, tok_s_min=batch.tok_s, tok_s_max=batch.tok_s,
                           requests=len(batch.records), failures=batch.failures))
        if acc is not None:
            send(acceptance_event(acc, f"category:{category}", "metrics", run_id, cell_id))
        send(PhaseProgress(run_id=run_id, cell_id=cell_id, phase="categories", done=i + 1, total=len(groups),
                           detail=category))
        before = after
    return out
