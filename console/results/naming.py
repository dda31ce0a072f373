"""Cell identity from names: `gemma4_31b_mtp_nt8_summarization_c1.json`, `tiny-mtp_k4`, `qwen_baseline`.

Imports use this only when the file itself does not say (``--metadata technique=mtp`` in a
``vllm bench serve`` result, ``metadata`` of an inspect log): what the file states always wins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from console import methods

# Variant words → technique: every method's `file_words` in console/methods.py (baseline/ar → ar, draft →
# draft_model, …), plus `spec`, a speculative run whose method the name does not say.
TECHNIQUES: dict[str, str] = {**methods.file_words(), "spec": "spec"}
_K = re.compile(r"^(?:nt|k|n|spec)=?(\d+)$", re.I)
_CONC = re.compile(r"^c(\d+)$", re.I)
_GLUED = re.compile(r"^([a-z_]+?)(\d+)$")


def _technique_word(token: str) -> tuple[str, int | None] | None:
    """`mtp` → (mtp, None); a speculative word with k glued on, `dflash15` → (dflash, 15); else None."""
    word = token.lower()
    if word in TECHNIQUES:
        return TECHNIQUES[word], None
    glued = _GLUED.match(word)
    if glued and methods.is_speculative(TECHNIQUES.get(glued.group(1), "")):
        return TECHNIQUES[glued.group(1)], int(glued.group(2))
    return None


@dataclass(frozen=True)
class NameParts:
    """What a file or model name says about a cell; fields are None when the name does not say."""

    model: str | None = None
    technique: str | None = None
    k: int | None = None
    category: str | None = None
    concurrency: int | None = None
    variant: str | None = None  # the name up to and including the technique/k words (used as cell id)


def parse_name(stem: str) -> NameParts:
    """Split `<model>_<variant>[_<category>][_c<c>]` (separators `_` or `-`).

    The model part is everything before the first technique word; k follows it (`nt8`, `k4`); the
    category is whatever sits between the variant and `c<N>`.
    """
    spans = [(m.group(0), m.start(), m.end()) for m in re.finditer(r"[^_\-]+", stem)]
    tokens = [t for t, _, _ in spans]
    concurrency = None
    if tokens and _CONC.match(tokens[-1]):
        concurrency = int(_CONC.match(tokens[-1]).group(1))  # type: ignore[union-attr]
        tokens = tokens[:-1]
    tech_at = next((i for i, t in enumerate(tokens) if _technique_word(t)), None)
    if tech_at is None:
        return NameParts(model=stem if tokens else None, concurrency=concurrency)
    technique, k = _technique_word(tokens[tech_at])  # type: ignore[misc]
    end = tech_at + 1
    if end < len(tokens) and _K.match(tokens[end]):
        k = int(_K.match(tokens[end]).group(1))  # type: ignore[union-attr]
        end += 1
    model = stem[: spans[tech_at - 1][2]] if tech_at else None
    category = stem[spans[end][1]: spans[len(tokens) - 1][2]] if end < len(tokens) else None
    variant = stem[: spans[end - 1][2]]
    return NameParts(model=model, technique=technique, k=k, category=category,
                     concurrency=concurrency, variant=variant)
