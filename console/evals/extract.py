"""Answer extraction for multiple-choice outputs: the LAST answer letter of the final body.

A thinking model writes its answer twice: once while reasoning (often naming options it rejects) and once in
the final body. The study's graders read the first option letter they met and scored GPQA 0.0 and haerae 0.146
(below chance); reading the last letter of the final body scored 0.844 on the same outputs. So:

1. the final body is what follows the last ``</think>``; an unclosed ``<think>`` means the reasoning never
   ended (a truncation), so there is no final body and no answer;
2. an answer letter is ``(X)``, ``Answer: X`` / ``Answer: (X)`` (also ``answer is X``, ``정답: X``) or a body that
   is nothing but the letter, with X within the option range (A–D for 4 options), upper case only;
3. ``last`` takes the last such letter of the final body; ``first`` takes the first letter of the whole output
   (reasoning included) — the trap, kept so that the smoke gate can be shown catching it;
4. nothing found → ``None``: an extraction failure, counted as such and scored wrong, never guessed.

``letter_regex()`` is the same rule as one regular expression, for frameworks that extract with a regex
(lm-eval's ``regex`` filter): ``group_select: -1`` with the final-body guard for ``last``, ``0`` for ``first``.
"""

from __future__ import annotations

import re
import string
from typing import Literal

Extractor = Literal["last", "first"]

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
# Words that introduce a final answer, before an optional colon and the letter.
ANSWER_WORDS = r"(?:[Aa]nswer|ANSWER|정답|답)"


def option_letters(options: int = 4) -> str:
    """The valid letters for ``options`` choices: 'ABCD' for 4."""
    if not 2 <= options <= 26:
        raise ValueError(f"options must be between 2 and 26 (got {options})")
    return string.ascii_uppercase[:options]


def _alternatives(options: int) -> str:
    """Regex alternatives, one capture group each: '(X)' | 'Answer: X' / 'answer is (X)' | a body that is
    just the letter."""
    cls = f"[{option_letters(options)}]"
    paren = rf"\(({cls})\)"
    marker = rf"{ANSWER_WORDS}\s*(?:is\s*)?[:：]?\s*\(?({cls})\b"
    lone = rf"(?:\A|(?<={re.escape(THINK_CLOSE)}))\s*({cls})\.?\s*\Z"
    return f"{paren}|{marker}|{lone}"


def letter_regex(options: int = 4, extractor: Extractor = "last") -> str:
    """One regex for the rule above (Python/`re` syntax). With ``last`` a match counts only when no
    ``</think>`` follows it (it is in the final body); the framework then takes the last match."""
    alts = _alternatives(options)
    if extractor == "last":
        return rf"(?s)(?:{alts})(?!.*{re.escape(THINK_CLOSE)})"
    return f"(?:{alts})"


def final_body(text: str) -> str | None:
    """The text after the reasoning block; None when a reasoning block was opened and never closed."""
    if THINK_CLOSE in text:
        return text.rsplit(THINK_CLOSE, 1)[1]
    if THINK_OPEN in text:
        return None
    return text


def _letters(text: str, options: int) -> list[str]:
    found = []
    for match in re.finditer(_alternatives(options), text):
        found.append(next(g for g in match.groups() if g))
    return found


def extract_answer(text: str | None, options: int = 4, extractor: Extractor = "last") -> str | None:
    """The answer letter of one output, or None (extraction failure) — see the module docstring."""
    if not text or not text.strip():
        return None
    if extractor == "first":
        found = _letters(text, options)
        return found[0] if found else None
    if extractor != "last":
        raise ValueError(f"extractor must be 'last' or 'first' (got {extractor!r})")
    body = final_body(text)
    if body is None:
        return None
    found = _letters(body, options)
    return found[-1] if found else None
