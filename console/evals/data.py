"""The project's own multiple-choice data, written offline and deterministically (seeded).

Three shipped sets (``console/evals/data/*.jsonl``, one item a line: ``id``, ``question``, ``choices``,
``answer`` (a letter), ``prompt`` — the exact user message every framework sends):

- ``toy-mcq``: "Which is largest? (A)3 (B)9 (C)1 (D)4" over four distinct digits. The tiny demo target is
  trained on items of this form whose digit tuples are disjoint from the shipped ones, with answers of the
  form "(C) is smallest. Answer: (B)": a reasoning preamble that names a wrong option before the
  final answer — the thinking-on extraction trap, reproduced on a real (toy) model.
- ``toy-mcq-ko``: the same task worded in Korean, for the built-in haerae / KMMLU-style path.
- ``gpqa-style``: 30 hand-written 4-option science questions for framework plumbing (written as data in
  ``science_questions.jsonl``: question, answer, distractors). The toy model scores about chance on them,
  which is the honest result.

``python -m console.evals.data`` rewrites the shipped files; a test checks they equal the generators' output.
"""

from __future__ import annotations

import itertools
import json
import random
import sys
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from console.evals.extract import option_letters

DATA_DIR = Path(__file__).with_name("data")
SEED = 20261123
EVAL_ITEMS = 100
"""Held-out items per shipped toy set."""

SHIPPED: dict[str, str] = {
    "toy-mcq": "toy_mcq.jsonl",
    "toy-mcq-ko": "toy_mcq_ko.jsonl",
    "gpqa-style": "gpqa_style.jsonl",
}
"""Task name → file under ``DATA_DIR``."""

TOY_QUESTION = {"en": "Which is largest?", "ko": "가장 큰 수는?"}
TOY_ANSWER = {"en": "({wrong}) is smallest. Answer: ({answer})", "ko": "({wrong}) 최소. 정답: ({answer})"}
"""Short on purpose: Korean costs three byte tokens a syllable, and training time grows with length."""


@dataclass(frozen=True)
class MCQItem:
    """One multiple-choice item; ``prompt`` is the exact user message sent by every framework."""

    id: str
    question: str
    choices: tuple[str, ...]
    answer: str
    prompt: str

    def to_json(self) -> str:
        d = asdict(self)
        d["choices"] = list(self.choices)
        return json.dumps(d, ensure_ascii=False)

    @staticmethod
    def from_dict(d: dict[str, Any], index: int = 0) -> MCQItem:
        choices = tuple(str(c) for c in d["choices"])
        answer = str(d["answer"]).strip().strip("()")
        if answer.isdigit():  # some sets store the index
            answer = option_letters(len(choices))[int(answer)]
        question = str(d["question"])
        prompt = str(d.get("prompt") or inline_prompt(question, choices))
        return MCQItem(str(d.get("id", index)), question, choices, answer, prompt)


def inline_prompt(question: str, choices: Iterable[str]) -> str:
    """'Question? (A) first (B) second …' — the default for files without a ``prompt`` field."""
    opts = " ".join(f"({letter}) {c}" for letter, c in zip(option_letters(26), choices, strict=False))
    return f"{question} {opts}"


def toy_prompt(question: str, digits: Iterable[str]) -> str:
    """'Which is largest? (A)3 (B)9 (C)1 (D)4' — no space before the digit: the tiny tokenizer merges " 0"–" 4"
    but not " 5"–" 9", and with a space the toy learned the task far more slowly (docs/evals.md)."""
    opts = " ".join(f"({letter}){d}" for letter, d in zip(option_letters(26), digits, strict=False))
    return f"{question} {opts}"


def block_prompt(question: str, choices: Iterable[str]) -> str:
    """A question, one option per line and the answer format asked for (the gpqa-style set)."""
    lines = [question, ""]
    lines += [f"({letter}) {c}" for letter, c in zip(option_letters(26), choices, strict=False)]
    lines += ["", "Think it through, then finish with 'Answer: (X)' where X is the letter of your choice."]
    return "\n".join(lines)


# --- the toy task ---------------------------------------------------------------------------------------
def _tuples() -> list[tuple[int, ...]]:
    """All 5,040 ordered tuples of four distinct digits, in one seeded order."""
    tuples: list[tuple[int, ...]] = list(itertools.permutations(range(10), 4))
    random.Random(SEED).shuffle(tuples)
    return tuples


def toy_split() -> dict[str, list[tuple[int, ...]]]:
    """Disjoint digit tuples: held-out English eval, held-out Korean eval, and the training pool."""
    t = _tuples()
    return {"en": t[:EVAL_ITEMS], "ko": t[EVAL_ITEMS : 2 * EVAL_ITEMS], "train": t[2 * EVAL_ITEMS :]}


def toy_item(digits: tuple[int, ...], lang: str, item_id: str) -> MCQItem:
    choices = tuple(str(d) for d in digits)
    answer = option_letters(len(digits))[digits.index(max(digits))]
    question = TOY_QUESTION[lang]
    return MCQItem(item_id, question, choices, answer, toy_prompt(question, choices))


def toy_response(digits: tuple[int, ...], lang: str) -> str:
    """The trained answer: names the smallest option (always wrong) first, the largest last."""
    letters = option_letters(len(digits))
    wrong = letters[digits.index(min(digits))]
    answer = letters[digits.index(max(digits))]
    return TOY_ANSWER[lang].format(wrong=wrong, answer=answer)


def toy_eval_items(lang: str = "en") -> list[MCQItem]:
    prefix = "toy" if lang == "en" else "toy-ko"
    return [toy_item(d, lang, f"{prefix}-{i:03d}") for i, d in enumerate(toy_split()[lang])]


def toy_training_pairs(langs: tuple[str, ...] = ("en", "ko")) -> list[tuple[str, str]]:
    """(prompt, response) for every training tuple in every language; none of them is in an eval set."""
    pairs = []
    for digits in toy_split()["train"]:
        for lang in langs:
            pairs.append((toy_prompt(TOY_QUESTION[lang], [str(d) for d in digits]), toy_response(digits, lang)))
    return pairs


# --- the science set ------------------------------------------------------------------------------------
SCIENCE_QUESTIONS = DATA_DIR / "science_questions.jsonl"
"""Thirty hand-written GPQA-style science questions (physics, chemistry, biology, earth science), written for
this project, one a line: ``question``, ``correct`` (the answer) and ``wrong`` (three distractors)."""


def science_items() -> list[MCQItem]:
    """The hand-written science questions with the correct option placed by a seeded shuffle."""
    rng = random.Random(SEED + 1)
    items = []
    questions = [json.loads(line) for line in SCIENCE_QUESTIONS.read_text(encoding="utf-8").splitlines() if line]
    for i, q in enumerate(questions):
        question, correct, wrong = q["question"], q["correct"], q["wrong"]
        choices = [correct, *wrong]
        rng.shuffle(choices)
        answer = option_letters(len(choices))[choices.index(correct)]
        items.append(MCQItem(f"sci-{i:03d}", question, tuple(choices), answer, block_prompt(question, choices)))
    return items


GENERATORS = {"toy-mcq": lambda: toy_eval_items("en"), "toy-mcq-ko": lambda: toy_eval_items("ko"),
              "gpqa-style": science_items}


# --- files ------------------------------------------------------------------------------------------------
def shipped_path(task: str) -> Path | None:
    """The shipped file for a task name, or None."""
    name = SHIPPED.get(task)
    return DATA_DIR / name if name else None


def find_dataset(task: str, base_dir: Path | None = None) -> Path | None:
    """The file of a shipped set's task name, or of a path to a jsonl file (relative to ``base_dir`` or the
    cwd); None when the task is neither (a framework's own task name)."""
    shipped = shipped_path(task)
    if shipped is not None:
        return shipped
    path = Path(task).expanduser()
    if not path.is_absolute() and base_dir is not None and (base_dir / path).exists():
        path = base_dir / path
    return path.resolve() if path.suffix == ".jsonl" and path.is_file() else None


def resolve_dataset(task: str, base_dir: Path | None = None) -> Path:
    """`find_dataset`, or FileNotFoundError naming what a built-in task can be."""
    found = find_dataset(task, base_dir)
    if found is not None:
        return found
    raise FileNotFoundError(
        f"unknown built-in task {task!r}: use one of {', '.join(SHIPPED)} or a path to a .jsonl file "
        "(one item a line: id, question, choices, answer)")


def load_items(path: Path) -> list[MCQItem]:
    items = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f):
            if line.strip():
                try:
                    items.append(MCQItem.from_dict(json.loads(line), n))
                except (KeyError, ValueError, IndexError) as exc:
                    raise ValueError(f"{path}:{n + 1}: not an MCQ item ({type(exc).__name__}: {exc}); "
                                     "needs question, choices, answer") from None
    return items


def write_items(path: Path, items: Iterable[MCQItem]) -> None:
    path.write_text("".join(i.to_json() + "\n" for i in items), encoding="utf-8")


def generate_all() -> Iterator[tuple[Path, list[MCQItem]]]:
    for task, make in GENERATORS.items():
        path = shipped_path(task)
        assert path is not None
        yield path, make()


if __name__ == "__main__":  # python -m console.evals.data
    DATA_DIR.mkdir(exist_ok=True)
    for out, rows in generate_all():
        write_items(out, rows)
        print(f"{out}: {len(rows)} items", file=sys.stderr)
