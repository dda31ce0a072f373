"""The speed phase against a fake server: the throughput rule, warm-up, failures shown, acceptance per repeat,
log vs metrics agreement, no foreign traffic."""

from __future__ import annotations

import asyncio

import pytest

from console.bench.acceptance import AcceptanceProbe, Agreement, server_lock
from console.bench.client import BenchClient, Completion
from console.bench.speed import SpeedConfig, batch_of, measure_categories, measure_speed, records_of

from .test_bench_fake_vllm import FakeVllm, fake_vllm  # noqa: F401 - fixture


def test_throughput_is_sum_of_completion_tokens_over_first_send_to_last_response() -> None:
    done = [Completion(0, 10.0, 11.0, 512), Completion(1, 10.5, 12.0, 512), Completion(2, 11.0, 14.0, 512)]
    b = batch_of(done, 512)
    assert b.wall_s == 4.0 and b.tok_s == 3 * 512 / 4.0 and b.failures == 0


def test_short_responses_and_errors_are_failures_with_reasons() -> None:
    done = [Completion(0, 0.0, 1.0, 512), Completion(1, 0.0, 1.0, 300, finish_reason="stop"),
            Completion(2, 0.0, 0.5, error="HTTP 500: boom")]
    recs = records_of(done, 512)
    assert [r.failed for r in recs] == [False, True, True] and recs[1].short and not recs[2].short
    b = batch_of(done, 512)
    assert b.failures == 2
    assert any("ignore_eos not honoured" in e for e in b.errors) and "HTTP 500: boom" in b.errors


def test_default_requests_per_repeat() -> None:
    assert SpeedConfig(128, 1).n_requests == 4 and SpeedConfig(128, 16).n_requests == 32
    cfg = SpeedConfig(128, 2, repeats=3, requests_per_repeat=5, warmup_requests=2)
    assert cfg.prompts_needed == 17


async def test_speed_point_on_a_speculative_server(fake_vllm: FakeVllm) -> None:  # noqa: F811
    fake_vllm.speculative = True
    cfg = SpeedConfig(context_tokens=16, concurrency=2, max_tokens=32, repeats=3, requests_per_repeat=4,
                      warmup_requests=2)
    prompts = [f"prompt number {i:02d}" for i in range(cfg.prompts_needed)]
    events: list = []
    async with BenchClient(fake_vllm.url, "tiny", max_connections=2) as client:
        probe = AcceptanceProbe(client, fake_vllm.log_path, speculative=True, log_interval_s=0.01)
        res = await measure_speed(client, probe, prompts, cfg, cell_id="c", method="draft_model", emit=events.append)
    assert len(res.repeats) == 3 and res.requests == 12 and res.failures == 0 and res.ok
    assert len(res.warmup.records) == 2 and fake_vllm.requests == 14  # warm-up sent, not counted
    assert res.tok_s.min <= res.tok_s.median <= res.tok_s.max and res.tok_s.median > 0
    assert all(r.foreign_requests == 0 for r in res.repeats)
    for r in res.repeats:
        assert r.acceptance is not None and r.acceptance.mean_acceptance_length == pytest.approx(4.0)
    assert res.acceptance_total.per_position_rates == pytest.approx((1.0, 1.0, 1.0, 0.0))
    assert isinstance(res.agreement, Agreement) and res.agreement.agrees
    kinds = [e.kind for e in events]
    assert kinds.count("phase_progress") == 14 and "speed_result" in kinds
    assert sum(k == "acceptance_result" for k in kinds) == 3 + 2  # per repeat, point (metrics), point (log)
    d = res.to_dict()
    assert d["summary"]["tok_s"] == res.tok_s.median and d["warmup"]["counted"] is False
    assert len(d["repeats"][0]["requests"]) == 4 and "latency_s" in d["repeats"][0]
    assert res.acceptance_dict()["agreement"]["agrees"] is True


async def test_failures_are_counted_never_averaged_away(fake_vllm: FakeVllm) -> None:  # noqa: F811
    fake_vllm.fail_every = 5
    fake_vllm.short_every = 7
    cfg = SpeedConfig(16, 1, max_tokens=8, repeats=2, requests_per_repeat=6, warmup_requests=0)
    async with BenchClient(fake_vllm.url, "tiny") as client:
        probe = AcceptanceProbe(client, None, speculative=False)
        res = await measure_speed(client, probe, [f"p{i}" for i in range(12)], cfg, cell_id="c", method="ar",
                                  check_log=False)
    assert res.failures == 3 and not res.ok  # requests 5 and 10 failed, request 7 came back short
    assert res.summary()["failures"] == 3 and res.acceptance_total is None
    assert sum(r.batch.completion_tokens for r in res.repeats) == 9 * 8 + 4


async def test_foreign_traffic_is_detected(fake_vllm: FakeVllm) -> None:  # noqa: F811
    async with BenchClient(fake_vllm.url, "tiny") as client:
        probe = AcceptanceProbe(client, None, speculative=False)
        a = await probe.mark()
        await client.complete(0, "mine", 4)
        await client.complete(1, "someone else's", 4)
        b = await probe.mark()
    assert probe.foreign_requests(a, b, ours=1) == 1


async def test_categories_each_get_speed_and_acceptance(fake_vllm: FakeVllm) -> None:  # noqa: F811
    fake_vllm.speculative = True
    fake_vllm.accepted_per_draft = 1.5
    groups = {"coding": ["a", "b"], "math": ["c"]}
    async with BenchClient(fake_vllm.url, "tiny") as client:
        probe = AcceptanceProbe(client, None, speculative=True)
        rows = await measure_categories(client, probe, groups, concurrency=1, max_tokens=10, cell_id="c")
    assert [r.category for r in rows] == ["coding", "math"]
    assert [len(r.batch.records) for r in rows] == [2, 1]
    assert rows[0].acceptance.mean_acceptance_length == pytest.approx(2.5)
    assert rows[1].to_dict()["acceptance"]["per_position_rates"] == pytest.approx([1.0, 0.5, 0.0, 0.0])


async def test_one_lock_per_server() -> None:
    assert server_lock("http://h:1/") is server_lock("http://h:1")
    assert server_lock("http://h:1") is not server_lock("http://h:2")
    lock = server_lock("http://h:3")
    async with lock:
        assert lock.locked()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(lock.acquire(), 0.05)


async def test_quick_probe_uses_the_same_rule(fake_vllm: FakeVllm) -> None:  # noqa: F811
    from console.bench.quick import quick_speed_async

    fake_vllm.short_every = 3
    q = await quick_speed_async(fake_vllm.url, "tiny", ["a", "b", "c"], concurrency=2, max_tokens=8)
    assert q.requests == 3 and q.completion_tokens == 8 + 8 + 4 and q.short_responses == 1 and not q.errors
    assert q.tok_s == pytest.approx(q.completion_tokens / q.wall_s)
