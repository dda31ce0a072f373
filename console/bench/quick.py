"""A quick, honest throughput probe: non-streaming, ignore_eos, Σ completion_tokens / wall clock.

The full speed phase (console.bench.speed: warm-up, repeats, exact-length prompts, acceptance, categories)
is the measurement; this is its one-batch version for the demo and quick checks, on the same load generator.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


@dataclass(frozen=True)
class QuickSpeed:
    """One timed batch: tok/s = Σ usage.completion_tokens / (last response − first send)."""

    requests: int
    concurrency: int
    max_tokens: int
    completion_tokens: int
    wall_s: float
    short_responses: int = 0
    """Responses with fewer than max_tokens tokens (ignore_eos not honoured): counted, never hidden."""
    errors: list[str] = field(default_factory=list)

    @property
    def tok_s(self) -> float:
        return self.completion_tokens / self.wall_s if self.wall_s > 0 else 0.0


async def quick_speed_async(base_url: str, model: str, prompts: list[str], *, concurrency: int = 1,
                            max_tokens: int = 512, api_key: str | None = None) -> QuickSpeed:
    """One timed batch through the speed phase's own load generator and rule (console.bench.speed)."""
    from console.bench.client import BenchClient
    from console.bench.speed import batch_of, run_batch

    async with BenchClient(base_url, model, api_key, max_connections=concurrency) as client:
        done = await run_batch(client, list(prompts), concurrency, max_tokens)
    batch = batch_of(done, max_tokens)
    errors = [r.error for r in batch.records if r.error]
    short = sum(r.short for r in batch.records)
    return QuickSpeed(len(prompts), concurrency, max_tokens, batch.completion_tokens, batch.wall_s, short, errors)


def quick_speed(base_url: str, model: str, prompts: list[str], **kw: object) -> QuickSpeed:
    return asyncio.run(quick_speed_async(base_url, model, prompts, **kw))  # type: ignore[arg-type]
