"""The text the project ships: tokenizer training data for the tiny models, and a prompt source.

``corpus.txt`` is plain text written for this project (prose, stories, explanations, dialogue, code, numbers,
lists, Q&A). Passages start with a header line ``### <category>: <title>``; everything up to the next header is
the passage body. The file is static, so its SHA-256 is part of every model recipe.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

HEADER_PREFIX = "### "


@dataclass(frozen=True)
class Passage:
    """One passage of the shipped corpus, usable as a prompt or as training text."""

    category: str
    title: str
    text: str


def corpus_path() -> Path:
    """Path of the shipped corpus file."""
    return Path(__file__).with_name("corpus.txt")


@lru_cache(maxsize=1)
def corpus_text() -> str:
    """The whole corpus, exactly as shipped (UTF-8)."""
    return corpus_path().read_text(encoding="utf-8")


def corpus_sha256() -> str:
    """SHA-256 (hex) of the corpus bytes; changes whenever the text changes."""
    return hashlib.sha256(corpus_text().encode("utf-8")).hexdigest()


def corpus_passages() -> list[Passage]:
    """The corpus split into passages, in file order."""
    passages: list[Passage] = []
    header: str | None = None
    body: list[str] = []

    def flush() -> None:
        if header is not None:
            category, _, title = header.partition(":")
            passages.append(Passage(category.strip(), title.strip(), "\n".join(body).strip("\n")))

    for line in corpus_text().splitlines():
        if line.startswith(HEADER_PREFIX):
            flush()
            header, body = line[len(HEADER_PREFIX) :], []
        else:
            body.append(line)
    flush()
    return passages
