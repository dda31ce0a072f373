"""The determinism phase: is a speculative cell bit-identical to AR under greedy decoding?

Greedy, N prompts, fixed max_tokens (ignore_eos), one request at a time: AR, AR again (the control — AR
itself may not be deterministic), then the technique. Token ids come straight from vLLM
(`return_token_ids`), so a divergence is located at the exact token, not at a character of decoded text.
The study's table: 'AR 12/12, MTP 3/12, divergence at tokens 483–801'. Equal accuracy does not need equal
tokens; this phase says which one a cell has.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from console.bench.client import BenchClient
from console.bench.stats import first_divergence
from console.events import DeterminismMeasured, Event, PhaseProgress


@dataclass(frozen=True)
class Generation:
    """One greedy generation: its token ids, or the error that prevented it."""

    prompt_index: int
    token_ids: tuple[int, ...] = ()
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"prompt_index": self.prompt_index, "tokens": len(self.token_ids), "error": self.error,
                "token_ids": list(self.token_ids)}


@dataclass(frozen=True)
class Comparison:
    """One prompt, two runs: identical, or the first token index where they differ."""

    prompt_index: int
    match: bool
    first_divergence: int | None
    length_a: int
    length_b: int
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def compare(reference: Sequence[Generation], other: Sequence[Generation]) -> tuple[Comparison, ...]:
    """Pairwise by prompt index; a failed generation on either side is a non-match with its error shown."""
    by_index = {g.prompt_index: g for g in other}
    out = []
    for ref in reference:
        oth = by_index.get(ref.prompt_index)
        err = ref.error or (oth.error if oth else "missing")
        if err or oth is None:
            out.append(Comparison(ref.prompt_index, False, None, len(ref.token_ids),
                                  len(oth.token_ids) if oth else 0, err))
            continue
        div = first_divergence(ref.token_ids, oth.token_ids)
        out.append(Comparison(ref.prompt_index, div is None, div, len(ref.token_ids), len(oth.token_ids)))
    return tuple(out)


@dataclass(frozen=True)
class MatchSummary:
    """k of N identical, and where the others diverged."""

    matches: int
    total: int
    divergences: tuple[int, ...]
    errors: int = 0

    @property
    def text(self) -> str:
        """`3/12, divergence at tokens 483–801` (the study's phrasing)."""
        s = f"{self.matches}/{self.total}"
        if self.divergences:
            lo, hi = min(self.divergences), max(self.divergences)
            s += f", divergence at token {lo}" if lo == hi else f", divergence at tokens {lo}–{hi}"
        if self.errors:
            s += f", {self.errors} failed"
        return s

    def to_dict(self) -> dict[str, Any]:
        return {"matches": self.matches, "total": self.total, "divergences": list(self.divergences),
                "errors": self.errors, "text": self.text}


def summarize(comparisons: Sequence[Comparison]) -> MatchSummary:
    divs = tuple(sorted(c.first_divergence for c in comparisons if c.first_divergence is not None))
    return MatchSummary(sum(c.match for c in comparisons), len(comparisons), divs,
                        sum(c.error is not None for c in comparisons))


@dataclass(frozen=True)
class DeterminismResult:
    """AR vs AR (control) and technique vs AR on the same prompts, greedy, fixed length."""

    model: str
    technique: str
    prompts: int
    max_tokens: int
    control: tuple[Comparison, ...]
    technique_vs_ar: tuple[Comparison, ...] = field(default_factory=tuple)

    @property
    def control_summary(self) -> MatchSummary:
        return summarize(self.control)

    @property
    def technique_summary(self) -> MatchSummary:
        return summarize(self.technique_vs_ar)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "technique": self.technique, "prompts": self.prompts,
                "max_tokens": self.max_tokens, "decoding": "greedy (temperature 0), ignore_eos, one at a time",
                "ar_vs_ar": self.control_summary.to_dict(),
                "technique_vs_ar": self.technique_summary.to_dict() if self.technique_vs_ar else None,
                "control_pairs": [c.to_dict() for c in self.control],
                "technique_pairs": [c.to_dict() for c in self.technique_vs_ar]}


async def generate(client: BenchClient, prompts: Sequence[str], max_tokens: int, *,
                   on_done: Callable[[int], None] | None = None) -> list[Generation]:
    """Greedy generations, one request at a time (a fixed batch of one: no batching noise of our making)."""
    out = []
    for i, p in enumerate(prompts):
        c = await client.complete(i, p, max_tokens, temperature=0.0, ignore_eos=True, return_token_ids=True)
        if c.error:
            out.append(Generation(i, (), c.error))
        elif c.token_ids is None:
            ids = await client.tokenize(c.text, add_special_tokens=False)  # older servers: ids from the text
            out.append(Generation(i, tuple(ids)))
        else:
            out.append(Generation(i, c.token_ids))
        if on_done is not None:
            on_done(i + 1)
    return out


def progress_emitter(emit: Callable[[Event], None], run_id: str, cell_id: str, phase: str,
                     total: int) -> Callable[[int], None]:
    def on_done(n: int) -> None:
        emit(PhaseProgress(run_id=run_id, cell_id=cell_id, phase=phase, done=n, total=total))
    return on_done


def determinism_event(summary: MatchSummary, role: str, run_id: str, cell_id: str) -> DeterminismMeasured:
    return DeterminismMeasured(run_id=run_id, cell_id=cell_id, role=role, matches=summary.matches,
                               total=summary.total, first_divergences=summary.divergences)
