"""Prompts of an exact token length, cut from the corpus the project ships, counted by the server itself.

A prompt "of 8192 tokens" means the server's own /tokenize says 8192 (with the special tokens it adds, and
through the chat template when the bench speaks chat). Text is cut from the corpus as a token slice, decoded
with /detokenize, re-counted, and the slice length corrected until the count is exact: BPE merges at the cut
can move it by a token or two. Every request gets its own slice (a different start in the corpus, wrapping
around), so no two prompts share a prefix.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from console.errors import SpecdeckError

CORPUS_DIR = Path(__file__).resolve().parents[1] / "models"
SLICE_STRIDE = 997
"""Start of prompt i in the corpus is i × this (a prime, so starts spread over the whole text)."""


class PromptLengthError(SpecdeckError, RuntimeError):
    """No text of exactly the asked length could be built."""


class Tokenizer(Protocol):
    """What prompt building needs from a server (BenchClient has it; tests pass a fake)."""

    async def tokenize(self, text: str, *, add_special_tokens: bool = True) -> list[int]: ...

    async def detokenize(self, ids: Sequence[int]) -> str: ...

    async def count_prompt_tokens(self, text: str) -> int: ...


@lru_cache(maxsize=1)
def corpus_text() -> str:
    """The shipped corpus (console/models/corpus*.txt, in name order), deterministic by construction."""
    files = sorted(CORPUS_DIR.glob("corpus*.txt"))
    if not files:
        raise FileNotFoundError(f"no corpus*.txt under {CORPUS_DIR}: the package is incomplete, reinstall it")
    return "\n\n".join(f.read_text(encoding="utf-8") for f in files)


@dataclass(frozen=True)
class PromptSet:
    """Prompts built for one length, with what the server counted for each (all equal `target_tokens`)."""

    target_tokens: int
    prompts: tuple[str, ...]
    counted: tuple[int, ...]

    def to_dict(self) -> dict[str, object]:
        return {"target_tokens": self.target_tokens, "n": len(self.prompts),
                "counted_min": min(self.counted, default=0), "counted_max": max(self.counted, default=0)}


async def fit_length(build: Callable[[int], Awaitable[str]], count: Callable[[str], Awaitable[int]],
                     target: int, start: int, *, max_steps: int = 12) -> tuple[str, int]:
    """Find n such that count(build(n)) == target, starting at n = `start` and stepping by the error.
    `build(n)` should grow by about one token per unit of n. Returns (text, n); raises PromptLengthError
    when the count never lands exactly (it then says what came closest)."""
    n = max(0, start)
    tried: dict[int, int] = {}
    best: tuple[int, int] | None = None
    for _ in range(max_steps):
        text = await build(n)
        got = await count(text)
        if got == target:
            return text, n
        tried[n] = got
        if best is None or abs(got - target) < abs(best[1] - target):
            best = (n, got)
        step = target - got
        nxt = max(0, n + step)
        unit = 1 if step > 0 else -1
        while nxt in tried and nxt > 0:  # oscillating across a merge: walk one unit at a time
            nxt += unit
        n = nxt
    closest = f"closest: {best[1]} tokens at n={best[0]}" if best else "nothing built"
    raise PromptLengthError(f"could not build a prompt of exactly {target} tokens ({closest})",
                            "pick a slightly different length or check the server's tokenizer")


class CorpusTokens:
    """The corpus as the server tokenizes it, sliced cyclically into prompts of exact lengths."""

    def __init__(self, tok: Tokenizer, text: str | None = None) -> None:
        self.tok = tok
        self.text = text if text is not None else corpus_text()
        self._ids: list[int] | None = None
        self._overhead: int | None = None

    async def ids(self) -> list[int]:
        if self._ids is None:
            self._ids = await self.tok.tokenize(self.text, add_special_tokens=False)
            if len(self._ids) < 16:
                raise PromptLengthError("the corpus tokenizes to almost nothing",
                                        "check that the server's POST /tokenize answers with token ids")
        return self._ids

    async def overhead(self) -> int:
        """Tokens a prompt carries besides its text (BOS, chat template)."""
        if self._overhead is None:
            self._overhead = await self.tok.count_prompt_tokens("")
        return self._overhead

    async def slice_ids(self, start: int, n: int) -> list[int]:
        ids = await self.ids()
        out: list[int] = []
        pos = start % len(ids)
        while len(out) < n:
            take = min(n - len(out), len(ids) - pos)
            out.extend(ids[pos:pos + take])
            pos = 0
        return out

    async def text_of(self, start: int, n: int) -> str:
        return await self.tok.detokenize(await self.slice_ids(start, n)) if n > 0 else ""

    async def exact(self, target: int, index: int = 0) -> str:
        """Prompt number `index` of exactly `target` tokens as the server counts them."""
        if target <= 0:
            raise PromptLengthError(f"a prompt length must be > 0 (got {target})", "give a positive context length")
        over = await self.overhead()
        if target <= over:
            raise PromptLengthError(f"{target} tokens is not more than the {over} the template adds by itself",
                                    f"ask for more than {over} tokens")
        error: PromptLengthError | None = None
        for shift in range(4):  # a cut that never lands exactly: move the start by a token and retry
            start = index * SLICE_STRIDE + shift

            async def build(n: int, start: int = start) -> str:
                return await self.text_of(start, n)

            try:
                text, _ = await fit_length(build, self.tok.count_prompt_tokens, target, target - over)
                return text
            except PromptLengthError as exc:
                error = exc
        assert error is not None
        raise error

    async def prompt_set(self, target: int, n: int, first_index: int = 0) -> PromptSet:
        """`n` distinct prompts of exactly `target` tokens."""
        prompts = [await self.exact(target, first_index + i) for i in range(n)]
        counted = [await self.tok.count_prompt_tokens(p) for p in prompts]
        return PromptSet(target, tuple(prompts), tuple(counted))
