"""Category prompt sets: the bundled offline set and the SPEED-Bench loader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from console.bench.categories import (
    SPEED_BENCH_CATEGORIES,
    CategoryFileError,
    load_bundled,
    load_categories,
    load_speed_bench,
    prompt_of,
)
from console.bench.orchestrate import determinism_prompts


def test_bundled_set_has_the_eleven_speed_bench_categories() -> None:
    cs = load_bundled()
    assert cs.categories == list(SPEED_BENCH_CATEGORIES)
    assert all(len(v) == 8 for v in cs.by_category().values())
    assert len({p.id for p in cs.prompts}) == 88 and cs.warnings == ()
    assert load_categories(None).prompts == cs.prompts == load_categories("bundled").prompts


def test_select_is_deterministic_and_rejects_unknown_categories() -> None:
    cs = load_bundled()
    two = cs.select(2)
    assert len(two.prompts) == 22 and list(two.prompts[:2]) == cs.by_category()["coding"][:2]
    only = cs.select(1, ["math", "rag"])
    assert [p.category for p in only.prompts] == ["math", "rag"]
    with pytest.raises(CategoryFileError, match="no category 'poetry'"):
        cs.select(1, ["poetry"])


@pytest.mark.parametrize("row", [
    {"category": "math", "turns": ["What is 2+2?", "And 3+3?"]},
    {"category": "math", "messages": [{"role": "user", "content": "What is 2+2?"}]},
    {"category": "math", "prompt": "What is 2+2?"},
])
def test_speed_bench_rows_in_every_shape(row: dict) -> None:
    assert prompt_of(row) == "What is 2+2?"


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_speed_bench_file_or_folder(tmp_path: Path) -> None:
    rows = [{"question_id": f"{c}-{i}", "category": c, "turns": [f"{c} prompt {i}"]}
            for c in SPEED_BENCH_CATEGORIES for i in range(80)]
    f = _write(tmp_path / "qualitative.jsonl", rows)
    for source in (f, tmp_path):
        cs = load_speed_bench(source)
        assert len(cs.prompts) == 880 and cs.warnings == () and cs.categories == list(SPEED_BENCH_CATEGORIES)
    assert cs.prompts[0].id == "coding-0"


def test_speed_bench_differences_are_warned_not_hidden(tmp_path: Path) -> None:
    f = _write(tmp_path / "q.jsonl", [{"category": "coding", "turns": ["x"]}, {"category": "poetry", "turns": ["y"]}])
    cs = load_speed_bench(f)
    text = " | ".join(cs.warnings)
    assert "missing SPEED-Bench categories" in text and "poetry" in text and "coding=1" in text


def test_bad_lines_are_all_reported_with_their_line_numbers(tmp_path: Path) -> None:
    f = tmp_path / "bad.jsonl"
    f.write_text('{"category": "math"}\nnot json\n{"turns": ["x"]}\n')
    with pytest.raises(CategoryFileError) as exc:
        load_speed_bench(f)
    msg = str(exc.value)
    assert "bad.jsonl:1: no prompt" in msg and "bad.jsonl:2: not JSON" in msg and "bad.jsonl:3: no `category`" in msg
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CategoryFileError, match="no qualitative.jsonl"):
        load_speed_bench(empty)


def test_determinism_prompts_round_robin_over_categories() -> None:
    prompts = determinism_prompts(load_bundled(), 12)
    groups = load_bundled().by_category()
    assert len(prompts) == 12 and len(set(prompts)) == 12
    assert prompts[0] == groups["coding"][0].prompt and prompts[1] == groups["humanities"][0].prompt
    assert prompts[11] == groups["coding"][1].prompt
