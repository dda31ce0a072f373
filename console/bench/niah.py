"""Needle in a haystack: a fact placed at 10 / 50 / 90 % depth of a long prompt, then asked for.

The haystack is corpus text; the prompt's total length is exact (the server's /tokenize), and the needle
sits at the given fraction of the haystack's tokens. A probe passes when the answer contains the needle's
code. The study's finding this reproduces: block diffusion lost the needle at 90 % depth (the tail).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from console.bench.client import BenchClient
from console.bench.prompts import CorpusTokens, PromptLengthError, fit_length
from console.events import Event, NiahMeasured, PhaseProgress

CITIES = ("Lisbon", "Oslo", "Nairobi", "Quito", "Hanoi", "Perth", "Tallinn", "Accra", "Lima", "Kyoto")
ANSWER_TOKENS = 24


@dataclass(frozen=True)
class Needle:
    """The fact to find: 'The secret code for the <city> vault is <code>.'"""

    city: str
    code: str

    @property
    def sentence(self) -> str:
        return f" The secret code for the {self.city} vault is {self.code}. "

    @property
    def question(self) -> str:
        return (f"\n\nQuestion: what is the secret code for the {self.city} vault? "
                f"Answer: The secret code for the {self.city} vault is")


def needle_for(context_tokens: int, depth: float) -> Needle:
    """A deterministic needle per (length, depth): a city and a 6-digit code from a hash."""
    h = hashlib.sha256(f"{context_tokens}:{depth:.3f}".encode()).digest()
    return Needle(CITIES[h[0] % len(CITIES)], str(100000 + int.from_bytes(h[1:4], "big") % 900000))


def found(answer: str, needle: Needle) -> bool:
    """Pass when the code appears in the answer (digits only, so '48 21 07' style spacing still counts)."""
    digits = "".join(ch for ch in answer if ch.isdigit())
    return needle.code in answer or needle.code in digits


@dataclass(frozen=True)
class Probe:
    """One needle at one depth: what came back and whether the code was in it."""

    context_tokens: int
    depth: float
    found: bool
    answer: str
    prompt_tokens: int
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class NiahResult:
    """k/len(depths) per context length (the study: AR 3/3 at 241K; diffusion 2/3, losing 90 % depth)."""

    technique: str
    probes: tuple[Probe, ...]
    skipped: tuple[str, ...] = ()

    def per_length(self) -> dict[int, tuple[int, int]]:
        out: dict[int, tuple[int, int]] = {}
        for p in self.probes:
            k, n = out.get(p.context_tokens, (0, 0))
            out[p.context_tokens] = (k + p.found, n + 1)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"technique": self.technique,
                "per_length": {str(L): {"found": k, "total": n, "text": f"{k}/{n}"}
                               for L, (k, n) in self.per_length().items()},
                "skipped": list(self.skipped), "probes": [p.to_dict() for p in self.probes]}


async def build_haystack(corpus: CorpusTokens, count: Callable[[str], Any], context_tokens: int, depth: float,
                         needle: Needle) -> str:
    """Corpus filler with the needle at `depth` of the filler tokens and the question at the end, exactly
    `context_tokens` long as the server counts it."""
    fixed = await count(needle.sentence + needle.question)
    error: PromptLengthError | None = None
    for start in range(4):  # a length the cuts cannot hit exactly: start the haystack a token later

        async def build(n: int, start: int = start) -> str:
            at = round(n * depth)
            head = await corpus.text_of(start, at)
            tail = await corpus.text_of(start + at, n - at)
            return head + needle.sentence + tail + needle.question

        try:
            text, _ = await fit_length(build, count, context_tokens, max(0, context_tokens - fixed))
            return text
        except PromptLengthError as exc:
            error = exc
    assert error is not None
    raise error


async def run_niah(client: BenchClient, corpus: CorpusTokens, lengths: Sequence[int], depths: Sequence[float], *,
                   technique: str, max_model_len: int | None = None, run_id: str = "", cell_id: str = "",
                   emit: Callable[[Event], None] | None = None) -> NiahResult:
    """Every (length, depth) probe, greedy, one at a time; lengths the server cannot hold are skipped
    with the reason."""
    send = emit or (lambda e: None)
    probes: list[Probe] = []
    skipped: list[str] = []
    todo = [(L, d) for L in lengths for d in depths]
    for i, (L, d) in enumerate(todo):
        if max_model_len is not None and L + ANSWER_TOKENS > max_model_len:
            msg = f"{L} tokens + {ANSWER_TOKENS} answer tokens exceed max_model_len {max_model_len}: raise it"
            if msg not in skipped:
                skipped.append(msg)
            continue
        needle = needle_for(L, d)
        try:
            prompt = await build_haystack(corpus, client.count_prompt_tokens, L, d, needle)
        except PromptLengthError as exc:
            probes.append(Probe(L, d, False, "", 0, str(exc)))
            continue
        c = await client.complete(i, prompt, ANSWER_TOKENS, temperature=0.0, ignore_eos=False)
        probes.append(Probe(L, d, c.error is None and found(c.text, needle), c.text[:200], c.prompt_tokens, c.error))
        send(PhaseProgress(run_id=run_id, cell_id=cell_id, phase="niah", done=i + 1, total=len(todo)))
    result = NiahResult(technique, tuple(probes), tuple(skipped))
    for L, (k, n) in result.per_length().items():
        send(NiahMeasured(run_id=run_id, cell_id=cell_id, context_tokens=L, found=k, total=n))
    return result
