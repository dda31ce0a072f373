"""The shipped MCQ data: deterministic, equal to the generators, held-out items disjoint from training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from console.evals.data import (
    SHIPPED,
    generate_all,
    load_items,
    resolve_dataset,
    science_items,
    toy_eval_items,
    toy_split,
    toy_training_pairs,
)
from console.evals.extract import extract_answer
from console.evals.registry import DEFAULT_FULL_ITEMS, adapter_for, dataset_size, full_items
from console.experiment.schema import Benchmark


def test_shipped_files_equal_generators() -> None:
    for path, items in generate_all():
        assert load_items(path) == items, f"{path} is stale: python -m console.evals.data"


def test_generators_are_deterministic() -> None:
    assert toy_eval_items("en") == toy_eval_items("en")
    assert science_items() == science_items()
    assert toy_training_pairs() == toy_training_pairs()


def test_held_out_disjoint_from_training() -> None:
    split = toy_split()
    en, ko, train = set(split["en"]), set(split["ko"]), set(split["train"])
    assert len(en) == len(ko) == 100
    assert not (en & train) and not (ko & train) and not (en & ko)
    prompts = {p for p, _ in toy_training_pairs()}
    assert not prompts & {i.prompt for i in toy_eval_items("en") + toy_eval_items("ko")}


def test_training_answers_carry_the_trap() -> None:
    for prompt, response in toy_training_pairs()[:200]:
        assert extract_answer(response) != extract_answer(response, extractor="first"), (prompt, response)


@pytest.mark.parametrize("task", list(SHIPPED))
def test_items_well_formed(task: str) -> None:
    items = load_items(resolve_dataset(task))
    assert len({i.id for i in items}) == len(items)
    for i in items:
        assert len(i.choices) == 4 and i.answer in "ABCD" and i.prompt


def test_answers_spread_over_letters() -> None:
    letters = [i.answer for i in science_items()]
    assert len(science_items()) == 30 and set(letters) == set("ABCD")


def test_resolve_paths(tmp_path: Path) -> None:
    f = tmp_path / "mine.jsonl"
    f.write_text(json.dumps({"question": "Q?", "choices": ["x", "y"], "answer": 1}) + "\n", encoding="utf-8")
    assert resolve_dataset("mine.jsonl", tmp_path) == f.resolve()
    (item,) = load_items(f)
    assert (item.id, item.answer, item.prompt) == ("0", "B", "Q? (A) x (B) y")
    with pytest.raises(FileNotFoundError, match="toy-mcq"):
        resolve_dataset("no-such-task")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "Q?"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="bad.jsonl:1"):
        load_items(bad)


def _bench(framework: str, task: str, full: int | None = None) -> Benchmark:
    return Benchmark(id="b", framework=framework, task=task, options=4, full_items=full)  # type: ignore[arg-type]


def test_registry() -> None:
    assert adapter_for(_bench("builtin", "toy-mcq")).framework == "builtin"
    assert adapter_for(_bench("lm-eval", "toy-mcq")).framework == "lm-eval"
    assert adapter_for(_bench("inspect", "toy-mcq")).framework == "inspect"
    assert full_items(_bench("builtin", "toy-mcq")) == 100
    assert full_items(_bench("builtin", "gpqa-style", full=10)) == 10
    assert dataset_size(_bench("lm-eval", "gpqa_diamond_cot_zeroshot")) == 198
    assert full_items(_bench("inspect", "inspect_evals/gpqa_diamond")) == 198
    assert full_items(_bench("lm-eval", "somebody_elses_task")) == DEFAULT_FULL_ITEMS
    assert full_items(_bench("lm-eval", "somebody_elses_task", full=50)) == 50
