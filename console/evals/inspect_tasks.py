"""inspect-ai tasks for the project's own MCQ sets (run by ``inspect eval console/evals/inspect_tasks.py@mcq``).

The prompt is the item's ``prompt`` field, sent as is with ``generate()`` — the same user message the
built-in runner and lm-eval send — and the scorer extracts with ``console.evals.extract`` (the last answer
letter of the final body, or the first letter with ``-T extractor=first``), so the three frameworks are
comparable. inspect's own ``multiple_choice()`` would wrap the question in its template, which the toy
model was never trained on.

    inspect eval console/evals/inspect_tasks.py@mcq -T dataset=toy-mcq -T extractor=last --limit 5
"""

from __future__ import annotations

from typing import Any

from inspect_ai import Task, task
from inspect_ai.dataset import Sample, json_dataset
from inspect_ai.scorer import CORRECT, INCORRECT, Score, Target, accuracy, scorer, stderr
from inspect_ai.solver import TaskState, generate

from console.evals.data import MCQItem, resolve_dataset
from console.evals.extract import Extractor, extract_answer


def record_to_sample(record: dict[str, Any]) -> Sample:
    item = MCQItem.from_dict(record)
    return Sample(input=item.prompt, target=item.answer, id=item.id,
                  metadata={"options": len(item.choices), "question": item.question})


@scorer(metrics=[accuracy(), stderr()])
def answer_letter(extractor: str = "last", options: int = 4) -> Any:
    """Correct when the extracted letter equals the target; no letter = an extraction failure (wrong)."""
    mode: Extractor = "first" if extractor == "first" else "last"

    async def score(state: TaskState, target: Target) -> Score:
        raw = state.output.completion
        n = int((state.metadata or {}).get("options") or options)
        letter = extract_answer(raw, n, mode)
        return Score(value=CORRECT if letter is not None and letter == target.text else INCORRECT,
                     answer=letter, explanation=raw,
                     metadata={"extractor": mode, "extraction_failed": letter is None})

    return score


@task
def mcq(dataset: str = "toy-mcq", extractor: str = "last", options: int = 4) -> Task:
    """A shipped set (toy-mcq, toy-mcq-ko, gpqa-style) or a jsonl path, scored by answer letter."""
    path = resolve_dataset(dataset)
    return Task(dataset=json_dataset(str(path), record_to_sample), solver=generate(),
                scorer=answer_letter(extractor, options), name=f"mcq-{path.stem}")
