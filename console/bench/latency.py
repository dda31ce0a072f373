"""The latency phase (optional): time to first token and inter-token latency, with streaming.

Streaming is for latency only and every result says so. A streaming tok/s is refused for a speculative
cell: speculative decoding commits several tokens per verification step, they reach the client in bursts,
and a per-chunk token meter flattens the bursts — the study's streaming meter under-counted MTP by 3×
("0.44×, MTP is a loss" that was really a 2.6–3.0× gain). Throughput comes from the speed phase only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from console import methods
from console.bench.client import BenchClient, request_body
from console.bench.stats import latency_summary, nan_to_none
from console.errors import SpecdeckError
from console.events import Event, LatencyMeasured, PhaseProgress

LATENCY_LABEL = "latency-only (streaming): not a throughput measurement"
REFUSAL_REASON = (
    "a streaming tok/s is refused for speculative cells: speculative decoding commits several tokens per "
    "verification step and they arrive in bursts, which a streaming token meter flattens (the study's "
    "streaming meter under-counted MTP by 3×: '0.44×, a loss' was really 2.6–3.0×). Use the speed phase's "
    "non-streaming tok/s (Σ completion_tokens / wall clock)."
)


class StreamingThroughputRefused(SpecdeckError, ValueError):
    """Asked for a streaming tok/s on a speculative cell; the message says why and what to use instead."""

    fix = "leave --streaming-tok-s off for speculative and diffusion cells; the speed phase's tok/s is the figure"


def check_streaming_throughput(method: str) -> None:
    """Raise StreamingThroughputRefused for every method that commits tokens in bursts (speculative and
    diffusion, console/methods.py); AR may have one."""
    if not methods.streaming_tok_s_allowed(method):
        raise StreamingThroughputRefused(f"{method}: {REFUSAL_REASON}")


@dataclass(frozen=True)
class StreamTiming:
    """One streamed request: when it was sent, when each content chunk arrived, tokens per chunk."""

    sent_at: float
    chunk_times: tuple[float, ...]
    chunk_tokens: tuple[int, ...]
    completion_tokens: int
    error: str | None = None

    @property
    def ttft_s(self) -> float | None:
        return self.chunk_times[0] - self.sent_at if self.chunk_times else None

    @property
    def itls_s(self) -> list[float]:
        t = self.chunk_times
        return [b - a for a, b in zip(t, t[1:], strict=False)]

    @property
    def e2e_s(self) -> float | None:
        return self.chunk_times[-1] - self.sent_at if self.chunk_times else None


@dataclass(frozen=True)
class LatencyResult:
    """TTFT, inter-chunk latency and tokens per chunk over N streamed requests, labelled latency-only.
    `streaming_tok_s` is filled only when asked for on an AR cell."""

    cell_id: str
    method: str
    timings: tuple[StreamTiming, ...]
    streaming_tok_s: float | None = None
    refused: str | None = None
    label: str = LATENCY_LABEL
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        ok = [t for t in self.timings if not t.error]
        chunks = [n for t in ok for n in t.chunk_tokens]
        return {"cell_id": self.cell_id, "method": self.method, "label": self.label,
                "requests": len(self.timings), "failures": len(self.timings) - len(ok),
                "errors": [t.error for t in self.timings if t.error],
                "ttft_s": latency_summary([t.ttft_s for t in ok if t.ttft_s is not None]),
                "itl_s": latency_summary([x for t in ok for x in t.itls_s]),
                "e2e_s": latency_summary([t.e2e_s for t in ok if t.e2e_s is not None]),
                "tokens_per_chunk_mean": (sum(chunks) / len(chunks)) if chunks else None,
                "streaming_tok_s": self.streaming_tok_s, "streaming_tok_s_refused": self.refused,
                "notes": list(self.notes)}


async def stream_one(client: BenchClient, prompt: str, max_tokens: int) -> StreamTiming:
    """One streamed request with include_usage; tokens per chunk from vLLM's per-chunk token ids."""
    body = request_body(client.api, client.model, prompt, max_tokens, stream=True,
                        stream_options={"include_usage": True}, return_token_ids=True)
    times: list[float] = []
    toks: list[int] = []
    usage_tokens = 0
    sent = time.perf_counter()
    try:
        async with client.session.post(client.url(client.endpoint), json=body) as r:
            if r.status != 200:
                return StreamTiming(sent, (), (), 0, f"HTTP {r.status}: {(await r.text())[:300]}")
            async for raw in r.content:
                line = raw.decode("utf-8", errors="replace").strip()
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                now = time.perf_counter()
                chunk = json.loads(data)
                if chunk.get("usage"):
                    usage_tokens = int(chunk["usage"].get("completion_tokens") or 0)
                for ch in chunk.get("choices") or []:
                    ids = ch.get("token_ids")
                    text = ch.get("text") if client.api == "completions" else (ch.get("delta") or {}).get("content")
                    if ids or text:
                        times.append(now)
                        toks.append(len(ids) if isinstance(ids, list) else 1)
    except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError) as exc:
        return StreamTiming(sent, tuple(times), tuple(toks), usage_tokens, f"{type(exc).__name__}: {exc}")
    return StreamTiming(sent, tuple(times), tuple(toks), usage_tokens)


async def measure_latency(client: BenchClient, prompts: Sequence[str], max_tokens: int, *, cell_id: str, method: str,
                          want_streaming_tok_s: bool = False, run_id: str = "",
                          emit: Callable[[Event], None] | None = None) -> LatencyResult:
    """Stream `prompts` one at a time (latency is a per-request property); never a throughput unless asked
    for an AR cell, and then labelled streaming."""
    send = emit or (lambda e: None)
    refused = None
    if want_streaming_tok_s:
        try:
            check_streaming_throughput(method)
        except StreamingThroughputRefused as exc:
            refused = str(exc)
    timings = []
    for i, p in enumerate(prompts):
        timings.append(await stream_one(client, p, max_tokens))
        send(PhaseProgress(run_id=run_id, cell_id=cell_id, phase="latency", done=i + 1, total=len(prompts)))
    tok_s = None
    if want_streaming_tok_s and refused is None:
        ok = [t for t in timings if not t.error and t.e2e_s]
        tok_s = sum(t.completion_tokens for t in ok) / sum(t.e2e_s or 0 for t in ok) if ok else None
    result = LatencyResult(cell_id, method, tuple(timings), tok_s, refused)
    d = result.to_dict()
    send(LatencyMeasured(run_id=run_id, cell_id=cell_id, ttft_p50_s=nan_to_none(d["ttft_s"]["p50"]),
                         itl_p50_s=nan_to_none(d["itl_s"]["p50"]), tokens_per_chunk_mean=d["tokens_per_chunk_mean"]))
    return result
