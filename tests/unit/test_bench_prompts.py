"""Exact-length prompts: the fitting loop, corpus slicing, NIAH haystacks (fake tokenizers, no server)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from console.bench.niah import Needle, build_haystack, found, needle_for
from console.bench.prompts import CorpusTokens, PromptLengthError, corpus_text, fit_length


class MergingTokenizer:
    """One token per character, except that "th" is one token and BOS is added in front: lengths do not
    move one-for-one with the slice, like a real BPE at the cut."""

    async def tokenize(self, text: str, *, add_special_tokens: bool = True) -> list[int]:
        ids, i = [], 0
        while i < len(text):
            if text.startswith("th", i):
                ids.append(1_000_000)
                i += 2
            else:
                ids.append(ord(text[i]) + 3)
                i += 1
        return ([1] if add_special_tokens else []) + ids

    async def detokenize(self, ids: Sequence[int]) -> str:
        return "".join("th" if i == 1_000_000 else chr(i - 3) for i in ids if i != 1)

    async def count_prompt_tokens(self, text: str) -> int:
        return len(await self.tokenize(text))


async def test_fit_length_corrects_by_the_error() -> None:
    async def build(n: int) -> str:
        return "x" * n

    async def count(text: str) -> int:  # every 10 characters cost one extra token
        return len(text) + len(text) // 10 + 1

    text, n = await fit_length(build, count, 112, 0)
    assert await count(text) == 112 and n == 101


async def test_fit_length_says_what_came_closest_when_a_length_is_unreachable() -> None:
    async def build(n: int) -> str:
        return "x" * n

    async def count(text: str) -> int:  # only even counts exist
        return 2 * len(text)

    with pytest.raises(PromptLengthError, match=r"exactly 7 tokens \(closest: (6|8) tokens"):
        await fit_length(build, count, 7, 3)


async def test_corpus_prompts_have_exact_lengths_and_distinct_starts() -> None:
    tok = MergingTokenizer()
    corpus = CorpusTokens(tok)
    ps = await corpus.prompt_set(128, 5)
    assert ps.counted == (128,) * 5
    assert len({p[:40] for p in ps.prompts}) == 5
    long = await corpus.exact(8192, 3)  # longer than the corpus: wraps around
    assert await tok.count_prompt_tokens(long) == 8192
    assert corpus_text().startswith("###")


async def test_too_short_a_length_is_refused_with_the_reason() -> None:
    with pytest.raises(PromptLengthError, match="not more than the 1"):
        await CorpusTokens(MergingTokenizer()).exact(1)


def test_needles_are_deterministic_and_found_in_answers() -> None:
    n = needle_for(1024, 0.5)
    assert n == needle_for(1024, 0.5) and n != needle_for(1024, 0.9)
    assert len(n.code) == 6 and n.city in n.sentence and n.city in n.question
    assert found(f" {n.code}.", n) and found(" " + " ".join(n.code), n) and not found(" 000000", n)


@pytest.mark.parametrize("depth", [0.1, 0.5, 0.9])
async def test_haystack_is_exact_and_the_needle_sits_at_its_depth(depth: float) -> None:
    tok = MergingTokenizer()
    needle = Needle("Oslo", "123456")
    text = await build_haystack(CorpusTokens(tok), tok.count_prompt_tokens, 2048, depth, needle)
    assert await tok.count_prompt_tokens(text) == 2048
    assert text.endswith(needle.question)
    at = text.index(needle.sentence) / (len(text) - len(needle.question))
    assert abs(at - depth) < 0.05
