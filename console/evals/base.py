"""One protocol for every accuracy framework (lm-eval, inspect-ai, the built-in MCQ runner) and one
normalised result, so the smoke gate, the store and the reports never care which framework ran."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from console.errors import SpecdeckError
from console.experiment.schema import Benchmark, Generation


@dataclass(frozen=True)
class EvalItem:
    """One scored item: what the model said, what was extracted, and whether it was right."""

    item_id: str
    raw_output: str
    extracted: str | None
    correct: bool | None
    target: str | None = None
    finish_reason: str | None = None
    output_tokens: int | None = None

    @property
    def blank(self) -> bool:
        return not self.raw_output.strip()

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EvalResult:
    """A benchmark stage's result, normalised across frameworks."""

    benchmark: str
    framework: str
    stage: str
    n: int
    score: float | None
    stderr: float | None
    blanks: int
    extraction_failures: int
    truncations: int
    wall_s: float = 0.0
    items: tuple[EvalItem, ...] = ()
    metric: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self, with_items: bool = False) -> dict[str, Any]:
        d = asdict(self)
        if not with_items:
            d.pop("items")
        return d

    @staticmethod
    def from_items(benchmark: str, framework: str, stage: str, items: list[EvalItem], *,
                   wall_s: float = 0.0, metric: str | None = "accuracy") -> EvalResult:
        """Score = correct / n over every item (blanks and extraction failures count as wrong, never
        dropped); stderr = √(p(1−p)/n)."""
        n = len(items)
        correct = sum(1 for i in items if i.correct)
        score = correct / n if n else None
        stderr = math.sqrt(score * (1 - score) / n) if score is not None and n else None
        return EvalResult(
            benchmark=benchmark, framework=framework, stage=stage, n=n, score=score, stderr=stderr,
            blanks=sum(i.blank for i in items),
            extraction_failures=sum(1 for i in items if not i.blank and i.extracted is None),
            truncations=sum(i.truncated for i in items), wall_s=wall_s, items=tuple(items), metric=metric,
        )


class EvalFailed(SpecdeckError):
    """An eval stage that could not finish (its framework failed, or the server kept failing): the cell fails with
    this reason; items already scored stay committed."""

    exit_code = 1
    fix = "once fixed, `specdeck resume RUN --retry-failed` runs the stage again (committed items are kept)"


@dataclass(frozen=True)
class EvalTarget:
    """Where and how to reach the model under test."""

    base_url: str
    """Server root, no /v1."""
    api_key: str | None
    model: str
    """The served model name."""
    tokenizer_path: str | None = None


class EvalAdapter(Protocol):
    """Runs one benchmark stage against a live server. Must call `on_item` for each finished item as
    soon as it is known (the runner commits it), and skip item ids in `skip_ids` (already committed)."""

    framework: str

    def run(
        self,
        bench: Benchmark,
        target: EvalTarget,
        *,
        stage: str,
        limit: int | None,
        generation: Generation,
        out_dir: Path,
        skip_ids: set[str],
        on_item: Callable[[EvalItem], None],
    ) -> EvalResult: ...
