"""Answer extraction: the last answer letter of the final body; the first-letter trap; failures are None."""

from __future__ import annotations

import re

import pytest

from console.evals.extract import extract_answer, final_body, letter_regex, option_letters

TOY = "(C) is smallest. Answer: (B)"
THINK = "<think>Option (A) looks right at first, but (C) fits better.</think>\nThe answer is (C)."


@pytest.mark.parametrize(("text", "expected"), [
    (TOY, "B"),
    ("(C) 최소. 정답: (B)", "B"),
    (THINK, "C"),
    ("Answer: D", "D"),
    ("ANSWER: A", "A"),
    ("answer is (B)", "B"),
    ("The answer is B", "B"),
    ("B", "B"),
    ("  C. ", "C"),
    ("(A) and (B) are wrong; (D) it is", "D"),
    ("Answer: (E)", None),              # outside A–D
    ("Answer: Because it is warm", None),
    ("I am not sure.", None),
    ("", None),
    ("   ", None),
    (None, None),
    ("<think>(A) (B) (C) — still thinking", None),  # reasoning never closed: truncated, no final body
    ("<think>It must be (A).</think>I will not say.", None),  # letter only inside the reasoning
    ("(b) lower case is not an answer letter", None),
])
def test_last(text: str | None, expected: str | None) -> None:
    assert extract_answer(text, 4, "last") == expected


@pytest.mark.parametrize(("text", "expected"), [
    (TOY, "C"),                          # the trap: names the wrong option first
    (THINK, "A"),                        # reads into the reasoning
    ("Answer: D", "D"),
    ("B", "B"),
    ("nothing here", None),
])
def test_first(text: str, expected: str | None) -> None:
    assert extract_answer(text, 4, "first") == expected


def test_trap_on_toy_outputs() -> None:
    """The toy's answers always name a wrong option before the right one: first-letter scores 0."""
    from console.evals.data import toy_eval_items, toy_response, toy_split

    items = toy_eval_items("en")
    outs = [toy_response(d, "en") for d in toy_split()["en"]]
    last = sum(extract_answer(o) == i.answer for o, i in zip(outs, items, strict=True))
    first = sum(extract_answer(o, extractor="first") == i.answer for o, i in zip(outs, items, strict=True))
    assert (last, first) == (len(items), 0)


@pytest.mark.parametrize("options", [2, 4, 5, 10])
def test_option_range(options: int) -> None:
    letters = option_letters(options)
    assert extract_answer(f"Answer: ({letters[-1]})", options) == letters[-1]
    beyond = chr(ord(letters[-1]) + 1)
    assert extract_answer(f"Answer: ({beyond})", options) is None


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        option_letters(1)
    with pytest.raises(ValueError):
        extract_answer("Answer: A", 4, "middle")  # type: ignore[arg-type]


def test_final_body() -> None:
    assert final_body("a</think>b</think>c") == "c"
    assert final_body("<think>open") is None
    assert final_body("plain") == "plain"


@pytest.mark.parametrize("text", [TOY, THINK, "Answer: D", "(A) then (B) then Answer: C", "nothing",
                                  "<think>(A)</think>", "x (B) y </think> z (D)",
                                  "B", " C. ", "<think>(A)</think> D", "B is it"])
@pytest.mark.parametrize("extractor", ["last", "first"])
def test_regex_agrees_with_extractor(text: str, extractor: str) -> None:
    """lm-eval's regex filter (group_select -1 / 0, first non-empty group) gives the same letter."""
    matches = re.findall(letter_regex(4, extractor), text)  # type: ignore[arg-type]
    got = None
    if matches:
        pick = matches[-1 if extractor == "last" else 0]
        got = next(g for g in pick if g) if isinstance(pick, tuple) else pick
    assert got == extract_answer(text, 4, extractor)  # type: ignore[arg-type]
