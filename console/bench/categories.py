"""Category prompt sets: speed and acceptance differ by kind of work (coding drafts well, roleplay does not),
so the bench measures them per category.

Two sources: the project's own offline set (`data/categories.jsonl`: the 11 SPEED-Bench categories, 8 prompts
each, written for specdeck — used by the demo), and SPEED-Bench's qualitative split as downloaded on the box
(jsonl rows with a `category` and the prompt in `turns`, `messages`, `prompt` or `question`; 11 categories ×
80 prompts). Selection is deterministic: the first k prompts of each category in file order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from console.errors import SpecdeckError

BUNDLED = Path(__file__).with_name("data") / "categories.jsonl"
SPEED_BENCH_CATEGORIES = ("coding", "humanities", "math", "multilingual", "qa", "rag", "reasoning",
                          "roleplay", "stem", "summarization", "writing")
"""SPEED-Bench's qualitative categories (80 prompts each)."""
SPEED_BENCH_PER_CATEGORY = 80


class CategoryFileError(SpecdeckError, ValueError):
    """A category file that cannot be used; the message names the file, the line and what is wrong."""

    fix = "point --categories at SPEED-Bench's qualitative split (a .jsonl with `category` and a prompt per line)"


@dataclass(frozen=True)
class CategoryPrompt:
    """One prompt and the category it is measured under."""

    id: str
    category: str
    prompt: str


@dataclass(frozen=True)
class CategorySet:
    """Prompts grouped by category, where they came from, and anything unexpected about the file."""

    source: str
    prompts: tuple[CategoryPrompt, ...]
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def categories(self) -> list[str]:
        """Categories in first-seen order."""
        return list(dict.fromkeys(p.category for p in self.prompts))

    def by_category(self) -> dict[str, list[CategoryPrompt]]:
        out: dict[str, list[CategoryPrompt]] = {}
        for p in self.prompts:
            out.setdefault(p.category, []).append(p)
        return out

    def select(self, per_category: int | None = None, categories: Iterable[str] | None = None) -> CategorySet:
        """The first `per_category` prompts of each (chosen) category; unknown category names are errors."""
        groups = self.by_category()
        wanted = list(categories) if categories is not None else list(groups)
        unknown = [c for c in wanted if c not in groups]
        if unknown:
            raise CategoryFileError(f"{self.source}: no category {', '.join(map(repr, unknown))}; "
                                    f"it has {', '.join(groups)}")
        chosen = [p for c in wanted for p in groups[c][:per_category]]
        return CategorySet(self.source, tuple(chosen), self.warnings)


def prompt_of(row: dict[str, Any]) -> str | None:
    """The first user turn of a row in any of the shapes SPEED-Bench files come in."""
    turns = row.get("turns")
    if isinstance(turns, list) and turns:
        first = turns[0]
        return first if isinstance(first, str) else (first or {}).get("content")
    messages = row.get("messages")
    if isinstance(messages, list):
        for m in messages:
            if isinstance(m, dict) and m.get("role", "user") == "user" and isinstance(m.get("content"), str):
                return str(m["content"])
    for key in ("prompt", "question", "text"):
        if isinstance(row.get(key), str):
            return str(row[key])
    return None


def parse_rows(lines: Sequence[str], source: str) -> list[CategoryPrompt]:
    """Rows of a jsonl file → prompts; every bad line is reported at once."""
    out: list[CategoryPrompt] = []
    problems: list[str] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{source}:{n}: not JSON ({exc.msg})")
            continue
        if not isinstance(row, dict):
            problems.append(f"{source}:{n}: expected a JSON object")
            continue
        category = row.get("category")
        text = prompt_of(row)
        if not isinstance(category, str) or not category:
            problems.append(f"{source}:{n}: no `category` field")
            continue
        if not text:
            problems.append(f"{source}:{n}: no prompt (expected `turns`, `messages`, `prompt` or `question`)")
            continue
        pid = str(row.get("question_id") or row.get("id") or f"{category}-{n}")
        out.append(CategoryPrompt(pid, category, text))
    if problems:
        shown = problems[:10] + ([f"… and {len(problems) - 10} more"] if len(problems) > 10 else [])
        raise CategoryFileError("\n".join(shown))
    return out


def load_bundled() -> CategorySet:
    """The project's own offline set (11 categories × 8 prompts)."""
    return CategorySet("bundled", tuple(parse_rows(BUNDLED.read_text(encoding="utf-8").splitlines(), str(BUNDLED))))


def speed_bench_warnings(prompts: Sequence[CategoryPrompt]) -> list[str]:
    """What differs from the published qualitative split (11 categories × 80 prompts): shown, not fatal."""
    counts: dict[str, int] = {}
    for p in prompts:
        counts[p.category] = counts.get(p.category, 0) + 1
    warnings = []
    missing = [c for c in SPEED_BENCH_CATEGORIES if c not in counts]
    extra = [c for c in counts if c not in SPEED_BENCH_CATEGORIES]
    if missing:
        warnings.append(f"missing SPEED-Bench categories: {', '.join(missing)}")
    if extra:
        warnings.append(f"categories not in SPEED-Bench qualitative: {', '.join(extra)}")
    odd = {c: n for c, n in counts.items() if n != SPEED_BENCH_PER_CATEGORY}
    if odd:
        warnings.append("prompts per category differ from 80: " + ", ".join(f"{c}={n}" for c, n in odd.items()))
    return warnings


def load_speed_bench(path: str | Path) -> CategorySet:
    """SPEED-Bench qualitative: a .jsonl file, or a folder holding `qualitative.jsonl` (as NeMo-Skills'
    prepare script or `vllm bench serve --dataset-name speed_bench` expect)."""
    p = Path(path).expanduser()
    if p.is_dir():
        candidates = [p / "qualitative.jsonl", *sorted(p.glob("*qualitative*.jsonl"))]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise CategoryFileError(f"{p}: no qualitative.jsonl in this folder; point at the .jsonl file itself")
        p = found
    if not p.is_file():
        raise CategoryFileError(f"{p}: no such file; download SPEED-Bench's qualitative split as jsonl first")
    prompts = parse_rows(p.read_text(encoding="utf-8").splitlines(), str(p))
    if not prompts:
        raise CategoryFileError(f"{p}: no prompts in the file")
    return CategorySet(str(p), tuple(prompts), tuple(speed_bench_warnings(prompts)))


def load_categories(source: str | Path | None) -> CategorySet:
    """`None` or "bundled" → the project's set; anything else → a SPEED-Bench file or folder."""
    if source is None or str(source) == "bundled":
        return load_bundled()
    return load_speed_bench(source)
