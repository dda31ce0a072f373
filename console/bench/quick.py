"""A quick, honest throughput probe: non-streaming, ignore_eos, Σ completion_tokens / wall clock.

The full speed phase (warm-up, repeats, exact-length prompts, categories) builds on the same rule; this
is the small version the demo and `serve` checks use.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import httpx


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


async def _one(client: httpx.AsyncClient, url: str, body: dict) -> dict:
    r = await client.post(url, json=body)
    r.raise_for_status()
    return r.json()


async def quick_speed_async(base_url: str, model: str, prompts: list[str], *, concurrency: int = 1,
                            max_tokens: int = 512, api_key: str | None = None) -> QuickSpeed:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    sem = asyncio.Semaphore(concurrency)
    url = f"{base_url}/v1/completions"
    errors: list[str] = []
    tokens = 0
    short = 0
    async with httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(600.0),
                                 limits=httpx.Limits(max_connections=concurrency)) as client:

        async def run(prompt: str) -> None:
            nonlocal tokens, short
            body = {"model": model, "prompt": prompt, "max_tokens": max_tokens, "ignore_eos": True,
                    "temperature": 0.0, "stream": False}
            async with sem:
                try:
                    out = await _one(client, url, body)
                except httpx.HTTPError as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    return
            got = int(out["usage"]["completion_tokens"])
            tokens += got
            short += got != max_tokens

        t0 = time.perf_counter()
        await asyncio.gather(*(run(p) for p in prompts))
        wall = time.perf_counter() - t0
    return QuickSpeed(len(prompts), concurrency, max_tokens, tokens, wall, short, errors)


def quick_speed(base_url: str, model: str, prompts: list[str], **kw: object) -> QuickSpeed:
    return asyncio.run(quick_speed_async(base_url, model, prompts, **kw))  # type: ignore[arg-type]
