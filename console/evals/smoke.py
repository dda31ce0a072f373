"""The smoke gate: 5 items per cell × benchmark must look sane before GPU-hours are spent.

The study lost hours to full runs whose grader read the first answer letter in the reasoning (GPQA 0.0,
haerae 0.146 — below random). Five items would have shown it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from console.evals.base import EvalResult
from console.experiment.schema import Benchmark
from console.units import gpu_hours, human_seconds


@dataclass(frozen=True)
class CostEstimate:
    """What the full run will cost: items × expected output tokens ÷ the cell's measured tok/s."""

    items: int
    expected_output_tokens: int
    tok_s: float | None
    wall_s: float | None
    gpu_hours: float | None
    basis: str
    epochs: int = 1
    """Each item runs this many times (inspect epochs): the cost counts every run."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        runs = f"{self.items} items" + (f" × {self.epochs} epochs" if self.epochs > 1 else "")
        if self.wall_s is None:
            return f"{runs}: no measured tok/s for this cell yet, cost unknown"
        return (f"{runs} × {self.expected_output_tokens} tokens ÷ {self.tok_s:.0f} tok/s ≈ "
                f"{human_seconds(self.wall_s)} wall, {gpu_hours(self.gpu_hours)}")


def estimate_full_run(bench: Benchmark, full_items: int, tok_s: float | None, gpus: int = 1) -> CostEstimate:
    """items × epochs × expected output tokens ÷ tok/s."""
    tokens = full_items * bench.epochs * bench.expected_output_tokens
    if not tok_s or tok_s <= 0:
        return CostEstimate(full_items, bench.expected_output_tokens, None, None, None, "no speed measurement",
                            bench.epochs)
    wall = tokens / tok_s
    return CostEstimate(full_items, bench.expected_output_tokens, tok_s, wall, wall * gpus / 3600,
                        "items × epochs × expected_output_tokens ÷ measured tok/s of this cell", bench.epochs)


@dataclass(frozen=True)
class SmokeVerdict:
    """Pass or fail, and every reason it failed (shown to the operator)."""

    benchmark: str
    passed: bool
    reasons: tuple[str, ...]
    score: float | None
    threshold: float
    n: int
    estimate: CostEstimate | None = None
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["estimate"] = self.estimate.to_dict() if self.estimate else None
        return d


def threshold_for(bench: Benchmark) -> float:
    """Chance for an MCQ (1 / options), else the configured floor."""
    if bench.floor is not None:
        return bench.floor
    if bench.options:
        return 1.0 / bench.options
    return 0.0


def judge_smoke(bench: Benchmark, result: EvalResult, estimate: CostEstimate | None = None) -> SmokeVerdict:
    """Apply the sanity rules: outputs not blank, answers extracted, no truncation, score above chance
    (or the floor). Every failed rule is a reason."""
    reasons: list[str] = []
    n = result.n
    thr = threshold_for(bench)
    if n == 0:
        reasons.append("no items were scored: check the task name and data files")
    if result.blanks:
        reasons.append(f"{result.blanks}/{n} outputs are blank: check the chat template, max_tokens and the "
                       "server log")
    if result.extraction_failures:
        reasons.append(f"{result.extraction_failures}/{n} answers could not be extracted: check the extractor "
                       "(the answer is the LAST answer letter of the final body)")
    if result.truncations:
        reasons.append(f"{result.truncations}/{n} outputs were truncated (finish_reason = length): raise "
                       "max_tokens (thinking models need ~32768)")
    if result.score is None:
        if n:
            reasons.append("no score was reported")
    elif result.score <= thr:
        what = f"chance (1/{bench.options})" if bench.options and bench.floor is None else "the floor"
        reasons.append(f"score {result.score:.3f} is not above {what} = {thr:.3f}: suspect the grader "
                       "(first-letter extraction?) before the model")
    notes = ()
    if bench.extractor == "first":
        notes = ("extractor = first: reads the first answer letter, which a thinking model writes in its "
                 "reasoning — the study's trap",)
    return SmokeVerdict(bench.id, not reasons, tuple(reasons), result.score, thr, n, estimate, notes)
