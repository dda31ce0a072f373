"""The phase runner end to end on the demo experiment with a fake server: files, ordering, tables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from console.bench.orchestrate import BenchOptions, BenchRunner, plan_groups
from console.bench.summary import ar_twin, full_report, load_cell_results, render, summary_table
from console.experiment.cells import Cell
from console.experiment.loader import load_experiment
from console.serve.server import Server

from .test_bench_fake_vllm import FakeVllm, fake_vllm  # noqa: F401 - fixture

DEMO = Path(__file__).resolve().parents[2] / "experiments" / "tiny.toml"


class FakePool:
    """Hands out the fake server, switched to the cell's technique; remembers the order of starts."""

    def __init__(self, fake: FakeVllm) -> None:
        self.fake = fake
        fake.per_token_s = 0.00002
        self.acquired: list[str] = []
        self.released: list[str] = []

    def acquire(self, cell: Cell) -> Server:
        self.acquired.append(cell.technique.id)
        self.fake.speculative = not cell.is_baseline
        self.fake.diverge_at = 5 if cell.technique.id == "draft-noisy-k4" else None
        self.fake.accepted_per_draft = {"draft-exact-k4": 4.0, "draft-noisy-k4": 0.5}.get(cell.technique.id, 2.5)
        return Server(self.fake.url, None, self.fake.log_path)

    def release(self, key: str) -> None:
        self.released.append(key)


def test_groups_put_ar_first_and_share_servers() -> None:
    exp = load_experiment(DEMO)
    groups = plan_groups(list(reversed(exp.cells)))
    assert groups[0][0].is_baseline and len(groups) == 4
    assert all(len({c.serving_key for c in g}) == 1 for g in groups) and all(len(g) == 3 for g in groups)


def test_unknown_phase_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown phase sped"):
        BenchOptions(phases=("sped",))


async def test_bench_runner_writes_every_result(fake_vllm: FakeVllm, tmp_path: Path) -> None:  # noqa: F811
    exp = load_experiment(DEMO)
    pool = FakePool(fake_vllm)
    events: list = []
    opts = BenchOptions(phases=("speed", "categories", "latency", "determinism", "niah"), cells="*.short.c1",
                        repeats=2, requests_per_repeat=2, warmup_requests=1, max_tokens=16, category_prompts=1,
                        latency_requests=1, streaming_tok_s=True, log_interval_s=0.01)
    runner = BenchRunner(exp, tmp_path / "run-1", pool, opts, events.append)  # type: ignore[arg-type]
    await runner.run()
    assert pool.acquired == ["ar", "draft-exact-k4", "draft-noisy-k4", "ngram-k4"]
    data = load_cell_results(runner.run_dir, runner.cells)
    ar, exact, noisy = (data[f"tiny.bf16.{t}.short.c1"] for t in ("ar", "draft-exact-k4", "draft-noisy-k4"))
    for d in (ar, exact, noisy):
        assert {"speed", "acceptance", "determinism", "niah", "latency"} <= set(d), d.get("failures")
        assert d["speed"]["summary"]["failures"] == 0 and len(d["speed"]["repeats"]) == 2
        assert d["speed"]["summary"]["tok_s"] > 0
        assert len(d["speed"]["categories"]["rows"]) == 11
        assert d["niah"]["per_length"]["1024"]["text"] == "3/3"
    assert ar["acceptance"]["total"] is None
    assert exact["acceptance"]["total"]["mean_acceptance_length"] == pytest.approx(5.0)
    assert exact["acceptance"]["agreement"]["agrees"] is True
    assert noisy["acceptance"]["categories"]["rows"]["coding"]["mean_acceptance_length"] == pytest.approx(1.5)
    assert ar["determinism"]["ar_vs_ar"]["text"] == "12/12" and ar["determinism"]["technique_vs_ar"] is None
    assert exact["determinism"]["technique_vs_ar"]["text"] == "12/12"
    noisy_det = noisy["determinism"]["technique_vs_ar"]
    assert 0 < noisy_det["matches"] < 12 and set(noisy_det["divergences"]) == {5}
    assert noisy["latency"]["streaming_tok_s"] is None and ar["latency"]["streaming_tok_s"] > 0
    kinds = {e.kind for e in events}
    assert {"phase_progress", "speed_result", "acceptance_result", "determinism_result", "niah_result",
            "latency_result", "spec_decode_stats"} <= kinds
    assert all(e.run_id == "run-1" for e in events)
    report = full_report(runner.cells, data)
    for title in ("Speed", "Acceptance", "Per category", "Determinism", "Needle", "Latency"):
        assert title in report
    assert "1.00x" in report and "12/12" in report and "divergence at token 5" in report
    json.loads((runner.run_dir / "cells" / "tiny.bf16.ar.short.c1" / "speed.json").read_text())


async def test_determinism_brings_up_ar_when_only_a_technique_is_selected(fake_vllm: FakeVllm,  # noqa: F811
                                                                         tmp_path: Path) -> None:
    exp = load_experiment(DEMO)
    pool = FakePool(fake_vllm)
    runner = BenchRunner(exp, tmp_path / "r", pool, BenchOptions(phases=("determinism",),  # type: ignore[arg-type]
                                                               cells="tiny.bf16.draft-noisy-k4.short.c1"))
    await runner.run()
    assert pool.acquired == ["ar", "draft-noisy-k4"]
    assert not (runner.run_dir / "cells" / "tiny.bf16.ar.short.c1").exists()  # AR ran, but was not selected
    d = json.loads((runner.run_dir / "cells" / "tiny.bf16.draft-noisy-k4.short.c1" / "determinism.json").read_text())
    assert d["ar_vs_ar"]["total"] == 12 and d["technique_vs_ar"]["total"] == 12


async def test_a_server_that_does_not_start_is_recorded_per_cell(tmp_path: Path) -> None:
    from console.serve.server import ServerStartError

    class BrokenPool:
        def acquire(self, cell: Cell) -> Server:
            raise ServerStartError("kv_cache_too_small", "no room", "lower max_model_len")

        def release(self, key: str) -> None:
            pass

    exp = load_experiment(DEMO)
    runner = BenchRunner(exp, tmp_path / "r", BrokenPool(), BenchOptions(cells="tiny.bf16.ar.*"))  # type: ignore[arg-type]
    await runner.run()
    data = load_cell_results(runner.run_dir, runner.cells)
    assert all(d["failures"]["serving"]["fix"] == "lower max_model_len" for d in data.values())
    assert "not measured: kv_cache_too_small" in summary_table(runner.cells, data)


def test_speed_up_is_against_the_ar_cell_of_the_same_model_context_and_concurrency() -> None:
    exp = load_experiment(DEMO)
    cell = exp.cell("tiny.bf16.ngram-k4.8k.c1")
    assert ar_twin(cell, exp.cells).id == "tiny.bf16.ar.8k.c1"
    cells = [exp.cell("tiny.bf16.ar.8k.c1"), cell]
    data = {c.id: {"speed": {"summary": {"tok_s": t, "tok_s_min": t - 1, "tok_s_max": t + 1, "failures": 0,
                                         "requests": 3, "mean_acceptance_length": m}}}
            for c, t, m in zip(cells, (400.0, 1000.0), (None, 3.7), strict=True)}
    table = summary_table(cells, data)
    assert "2.50x" in table and "3.70" in table and "1000 (999–1001)" in table


def test_render_aligns_numbers_right() -> None:
    out = render(["a", "n"], [["x", 5], ["yy", 123.456]])
    assert out.splitlines()[2] == "x     5" and out.splitlines()[3] == "yy  123"
