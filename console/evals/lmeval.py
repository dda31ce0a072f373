"""lm-eval (EleutherAI harness) against the cell's own server, as a subprocess.

``python -m lm_eval run --model local-chat-completions`` (for specdeck's own tasks ``python -m
console.evals.lmeval_main run``: the same command, indexing only their folder) with ``base_url`` = the full
``/v1/chat/completions`` URL, ``--apply_chat_template``, ``--log_samples`` and ``--use_cache`` (sqlite in
``out_dir``: a killed run does not redo answered requests). The shipped sets (toy-mcq, toy-mcq-ko,
gpqa-style) and any ``.jsonl`` become a custom task whose YAML is written into ``out_dir/tasks``: the local
file as ``dataset_path: json``, ``generate_until``, and a ``regex`` filter that is the extraction rule of
``console.evals.extract`` (``group_select: -1`` = the last letter of the final body; ``0`` with
``extractor = "first"``, the trap). For custom tasks, already-committed items are left out with
``--samples``. Any other task name (gpqa_diamond_cot_zeroshot, mmlu_pro, ifeval, …) is passed through;
``metric`` picks the result key (e.g. ``exact_match,flexible-extract``).

lm-eval does not keep ``finish_reason``: a truncation is inferred when an output re-tokenises to at least
``max_tokens − 1 %`` tokens (the server's /tokenize, so the count uses the served tokenizer).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx

from console.evals.base import EvalFailed, EvalItem, EvalResult, EvalTarget
from console.evals.data import find_dataset, load_items, resolve_dataset
from console.evals.extract import letter_regex
from console.evals.missing_data import missing_data_hint
from console.experiment.schema import Benchmark, Generation

FALLBACK = "[invalid]"
"""What lm-eval's regex filter returns when nothing matched: an extraction failure."""
TokenCounter = Callable[[str], int | None]


class LmEvalError(EvalFailed, RuntimeError):
    """lm-eval exited with an error or wrote no results; the message carries the tail of its log."""

    fix = f"read the log lines above (the lm-eval command is at the top of the log); {EvalFailed.fix}"


class TaskDataMissing(LmEvalError):
    """A task needs nltk data that is not on this machine (IFEval: punkt_tab). lm-eval would try to download it
    at import, fail offline, and crash only while scoring — after every generation was paid for."""


def missing_nltk_data(task: str, include_path: str | None = None) -> list[str]:
    """nltk resources the task's helpers ask for (lm-eval 0.4.13 ifeval/instructions_util.py:
    `nltk.data.find("tokenizers/punkt_tab")`, else `nltk.download("punkt_tab")`) that nltk cannot find."""
    from console.preflight import lmeval_tasks as lt
    from console.preflight.benchmarks import nltk_present

    info = lt.find_task(task, include_path)
    wanted: set[str] = set()
    for leaf in info.leaves[:60]:
        wanted |= set(lt.task_needs(leaf).nltk_data)
        included = _included_yaml(leaf.yaml_path)  # a local task that includes the installed one
        if included is not None:
            wanted |= set(lt.task_needs(replace(leaf, yaml_path=included)).nltk_data)
    return sorted(r for r in wanted if not nltk_present(r))


def _included_yaml(path: Path | None) -> Path | None:
    if path is None:
        return None
    try:
        m = re.search(r"^include\s*:\s*['\"]?([^'\"\n#]+?)['\"]?\s*(#.*)?$", path.read_text(encoding="utf-8"), re.M)
    except OSError:
        return None
    if not m:
        return None
    target = Path(m.group(1).strip())
    target = target if target.is_absolute() else path.parent / target
    return target if target.is_file() else None


def is_local_task(task: str) -> bool:
    """Whether the task is one of specdeck's own jsonl sets (a shipped name or a file from the cwd)."""
    return find_dataset(task) is not None


def task_name(bench: Benchmark) -> str:
    return "specdeck_" + re.sub(r"[^a-z0-9_]", "_", bench.id)


def default_metric(bench: Benchmark) -> str:
    """``metric,filter`` read from results/samples: custom tasks name their filter after the extractor."""
    if bench.metric:
        return bench.metric
    if is_local_task(bench.task):
        return f"exact_match,{bench.extractor}-letter"
    return "exact_match,flexible-extract"


def task_config(bench: Benchmark, data_file: Path, options: int, generation: Generation) -> dict[str, Any]:
    """The custom task (written as JSON, which YAML reads as is)."""
    return {
        "task": task_name(bench),
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data_file)}},
        "test_split": "test",
        "output_type": "generate_until",
        "doc_to_text": "{{prompt}}",
        "doc_to_target": "{{answer}}",
        "generation_kwargs": {"until": [], **gen_kwargs(generation)},
        "filter_list": [{
            "name": f"{bench.extractor}-letter",
            "filter": [
                {"function": "regex", "regex_pattern": letter_regex(options, bench.extractor),
                 "group_select": -1 if bench.extractor == "last" else 0, "fallback": FALLBACK},
                {"function": "take_first"},
            ],
        }],
        "metric_list": [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True}],
        "metadata": {"version": 1.0, "written_by": "specdeck"},
    }


def gen_kwargs(generation: Generation) -> dict[str, Any]:
    return {"max_gen_toks": generation.max_tokens, "temperature": generation.temperature,
            "top_p": generation.top_p, "do_sample": generation.temperature > 0}


def command(bench: Benchmark, target: EvalTarget, *, task: str, include_path: str | None, limit: int | None,
            samples: dict[str, list[int]] | None, generation: Generation, out_dir: Path,
            num_concurrent: int = 2, include_path_only: bool = False) -> list[str]:
    """lm-eval's command line; ``include_path_only`` (specdeck's own tasks) runs it through
    ``console.evals.lmeval_main``, which indexes only the include_path folder (same arguments, same files)."""
    url = f"{target.base_url.rstrip('/')}/v1/chat/completions"
    model_args = (f"model={target.model},base_url={url},num_concurrent={num_concurrent},max_retries=3,"
                  "tokenizer_backend=None,timeout=3600")
    entry = "console.evals.lmeval_main" if include_path_only and include_path else "lm_eval"
    argv = [sys.executable, "-m", entry, "run", "--model", "local-chat-completions",
            "--model_args", model_args, "--tasks", task, "--apply_chat_template",
            "--gen_kwargs", *(f"{k}={v}" for k, v in gen_kwargs(generation).items()),
            "--log_samples", "--output_path", str(out_dir / "output"),
            "--use_cache", str(out_dir / "cache" / "lm"), "--seed", "1234"]
    if include_path:
        argv += ["--include_path", include_path]
    if samples is not None:
        argv += ["--samples", json.dumps(samples)]
    elif limit:
        argv += ["--limit", str(limit)]
    return argv


def spread_over(leaves: list[str], limit: int) -> dict[str, list[int]]:
    """``limit`` items spread over a group's subtasks: item j is doc j // n of subtask j % n (5 items of
    mmlu_pro's 14 subtasks: doc 0 of the first five)."""
    picks: dict[str, list[int]] = {}
    for j in range(limit):
        picks.setdefault(leaves[j % len(leaves)], []).append(j // len(leaves))
    return picks


def group_leaves(task: str, include_path: str | None = None) -> list[str]:
    """The leaf tasks of an lm-eval group or tag as the installed lm-eval defines it; [] for a plain task."""
    from console.preflight.lmeval_tasks import find_task

    info = find_task(task, include_path)
    return [leaf.name for leaf in info.leaves] if info.kind in ("group", "tag") else []


OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
"""Set for an eval framework only when the run is offline (console.prepare.offline_decision says why)."""


def env_for(target: EvalTarget, offline: bool = False) -> dict[str, str]:
    """The framework's environment: the caller's, the server's key, and the offline switches only when the run
    is offline (`--offline`, or `specdeck prepare` recorded everything local): otherwise lm-eval may download
    a dataset it does not have."""
    return harness_env({"OPENAI_API_KEY": target.api_key or "EMPTY", "TOKENIZERS_PARALLELISM": "false"}, offline)


def harness_env(values: dict[str, str], offline: bool) -> dict[str, str]:
    """A harness subprocess's environment: the caller's, `values` over it, and OFFLINE_ENV only when offline."""
    env = dict(os.environ)
    env.update(values)
    if offline:
        env.update(OFFLINE_ENV)
    return env


class HarnessAdapter:
    """What the adapters that run a harness as a subprocess (lm-eval, inspect) share: the folder relative data
    paths resolve against, whether the run is offline, and the experiment their `specdeck prepare` hint names."""

    def __init__(self, base_dir: Path | None = None, offline: bool = False, experiment: str = "EXPERIMENT") -> None:
        self.base_dir = base_dir
        self.offline = offline
        self.experiment = experiment
        """Named in the `specdeck prepare …` hint when a dataset is missing."""

    @staticmethod
    def work_dir(out_dir: Path) -> Path:
        """`out_dir`, absolute and created: the harness runs with cwd = out_dir, so every path it gets must be
        absolute."""
        out_dir = out_dir.resolve()
        out_dir.mkdir(parents=True, exist_ok=True)
        return out_dir


class LmEval(HarnessAdapter):
    """EvalAdapter driving lm-eval as a subprocess (see the module docstring)."""

    framework = "lm-eval"

    def __init__(self, base_dir: Path | None = None, num_concurrent: int = 2, offline: bool = False,
                 experiment: str = "EXPERIMENT") -> None:
        super().__init__(base_dir, offline, experiment)
        self.num_concurrent = num_concurrent

    def run(self, bench: Benchmark, target: EvalTarget, *, stage: str, limit: int | None,
            generation: Generation, out_dir: Path, skip_ids: set[str],
            on_item: Callable[[EvalItem], None]) -> EvalResult:
        out_dir = self.work_dir(out_dir)
        include_path = self._include_path(bench)
        task, samples, grouped = bench.task, None, None
        local = is_local_task(bench.task)
        if local:
            data = resolve_dataset(bench.task, self.base_dir).resolve()
            n = len(load_items(data))
            tasks_dir = out_dir / "tasks"
            tasks_dir.mkdir(exist_ok=True)
            options = bench.options or 4
            (tasks_dir / f"{task_name(bench)}.yaml").write_text(
                json.dumps(task_config(bench, data, options, generation), indent=2, ensure_ascii=False) + "\n",
                encoding="utf-8")
            include_path, task = str(tasks_dir), task_name(bench)
            samples = {task: [i for i in range(min(limit or n, n)) if str(i) not in skip_ids]}
            if not samples[task]:
                return EvalResult.from_items(bench.id, self.framework, stage, [])
        elif limit and len(leaves := group_leaves(bench.task, include_path)) > 1:
            # A group (mmlu_pro: 14 subtasks): `--limit 5` would run 5 per subtask (70). Pick `limit` items
            # across the subtasks instead, and run only those subtasks (lm-eval 0.4.13 runs every doc of a
            # task missing from --samples, and an empty list counts as missing).
            picks = {leaf: [i for i in idx if f"{leaf}/{i}" not in skip_ids]
                     for leaf, idx in spread_over(leaves, limit).items()}
            samples = {leaf: idx for leaf, idx in picks.items() if idx}
            if not samples:
                return EvalResult.from_items(bench.id, self.framework, stage, [])
            task, grouped = ",".join(samples), True
        if not local:
            missing = missing_nltk_data(bench.task, include_path)
            if missing:
                raise TaskDataMissing(
                    f"{bench.task} needs nltk data {', '.join(missing)}, which is not on this machine (lm-eval "
                    "downloads it at import, which fails offline, and the run would crash while scoring)",
                    f"python -m nltk.downloader {' '.join(missing)} where the network allows (or `specdeck "
                    "prepare`), or point NLTK_DATA at a folder that has it")
        argv = command(bench, target, task=task, include_path=include_path, limit=limit, samples=samples,
                       generation=generation, out_dir=out_dir, num_concurrent=self.num_concurrent,
                       include_path_only=local)
        log_path = out_dir / "lm_eval.log"
        returncode, started, wall = run_logged(argv, env_for(target, self.offline), out_dir, log_path)
        results = newest(out_dir / "output", "results_*.json", since=started)
        if returncode != 0 or results is None:
            hint = missing_data_hint(tail(log_path, 200), self.experiment)
            raise LmEvalError(f"lm-eval exited {returncode}"
                              f"{'' if results else ' without results'}"
                              f"{f': {hint}' if hint else ''}; last lines of {log_path}:\n" + tail(log_path))
        counter = server_token_counter(target)
        items, summary = parse_output(results, default_metric(bench), generation.max_tokens, counter,
                                      prefix_subtasks=grouped)
        fresh = [i for i in items if i.item_id not in skip_ids]
        for item in fresh:
            on_item(item)
        result = EvalResult.from_items(bench.id, self.framework, stage, fresh, wall_s=wall,
                                       metric=default_metric(bench))
        return _with_extra(result, summary)

    def _include_path(self, bench: Benchmark) -> str | None:
        if not bench.include_path:
            return None
        path = Path(bench.include_path).expanduser()
        if not path.is_absolute() and self.base_dir is not None:
            path = self.base_dir / path
        return str(path.resolve())


def _with_extra(result: EvalResult, extra: dict[str, Any]) -> EvalResult:
    return replace(result, extra={**result.extra, **extra})


# --- reading lm-eval's files --------------------------------------------------------------------------
_LIVE: set[subprocess.Popen[bytes]] = set()
_LIVE_LOCK = threading.Lock()


def run_logged(argv: list[str], env: dict[str, str], cwd: Path, log_path: Path) -> tuple[int, float, float]:
    """Run an eval tool with its output (after the command line) in ``log_path``; returns the exit code, the
    start time (for `newest(..., since=)`) and the wall seconds. Shared by the lm-eval and inspect adapters. The
    process is known to `stop_harnesses` while it runs (benchmarks run side by side in threads), and is killed
    if this thread is interrupted, as `subprocess.run` does."""
    t0 = time.perf_counter()
    started = time.time()
    with log_path.open("w", encoding="utf-8") as log:
        log.write(" ".join(argv) + "\n")
        log.flush()
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=cwd)
        with _LIVE_LOCK:
            _LIVE.add(proc)
        try:
            returncode = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            with _LIVE_LOCK:
                _LIVE.discard(proc)
    return returncode, started, time.perf_counter() - t0


def stop_harnesses(grace_s: float = 5.0) -> int:
    """Stop every eval-framework subprocess still running (SIGTERM, then SIGKILL after `grace_s`); how many."""
    with _LIVE_LOCK:
        procs = list(_LIVE)
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(grace_s)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    return len(procs)


def newest(root: Path, pattern: str, since: float | None = None) -> Path | None:
    files = [p for p in root.rglob(pattern) if since is None or p.stat().st_mtime >= since - 1]
    return max(files, key=lambda p: p.stat().st_mtime) if files else None


def tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def samples_files(results_file: Path) -> dict[str, Path]:
    """Subtask → its samples file written in the same run (same timestamp suffix)."""
    stamp = results_file.stem.removeprefix("results_")
    out = {}
    for p in results_file.parent.glob(f"samples_*_{stamp}.jsonl"):
        out[p.stem.removeprefix("samples_").removesuffix(f"_{stamp}")] = p
    return out


def _correct(value: Any) -> bool | None:
    if isinstance(value, list):
        return all(bool(v) for v in value) if value else None
    if isinstance(value, bool | int | float):
        return float(value) >= 1.0
    return None


def _first(x: Any) -> Any:
    while isinstance(x, list) and x:
        x = x[0]
    return x if not isinstance(x, list) else None


def items_from_samples(lines: Iterable[dict[str, Any]], metric: str, max_tokens: int | None,
                       count_tokens: TokenCounter | None, prefix: str = "") -> list[EvalItem]:
    """One EvalItem per doc from a samples file, for the filter named in ``metric`` (``name,filter``)."""
    name, _, filt = metric.partition(",")
    items = []
    for s in lines:
        if filt and s.get("filter") != filt:
            continue
        raw = _first(s.get("resps"))
        raw = raw if isinstance(raw, str) else ""
        extracted = _first(s.get("filtered_resps"))
        extracted = None if not isinstance(extracted, str) or extracted.strip() in ("", FALLBACK) else extracted
        if extracted is not None:
            extracted = extracted.strip()
        tokens = count_tokens(raw) if count_tokens and raw else None
        finish = None
        if tokens is not None and max_tokens:
            finish = "length" if tokens >= max_tokens - max(1, max_tokens // 100) else "stop"
        target = s.get("target")
        items.append(EvalItem(item_id=f"{prefix}{s['doc_id']}", raw_output=raw, extracted=extracted,
                              correct=_correct(s.get(name)), target=None if target is None else str(target),
                              finish_reason=finish, output_tokens=tokens))
    return items


def parse_output(results_file: Path, metric: str, max_tokens: int | None,
                 count_tokens: TokenCounter | None = None,
                 prefix_subtasks: bool | None = None) -> tuple[list[EvalItem], dict[str, Any]]:
    """Items from every samples file of a run (ids ``doc_id``, or ``subtask/doc_id`` for groups: when
    ``prefix_subtasks`` says so, else when the run wrote more than one samples file) and a summary of what
    lm-eval itself reported for ``metric``."""
    data = json.loads(results_file.read_text(encoding="utf-8"))
    files = samples_files(results_file)
    items: list[EvalItem] = []
    for sub, path in sorted(files.items()):
        lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        prefix = prefix_subtasks if prefix_subtasks is not None else len(files) > 1
        items += items_from_samples(lines, metric, max_tokens, count_tokens, f"{sub}/" if prefix else "")
    reported = {task: vals.get(metric) for task, vals in (data.get("results") or {}).items()}
    return items, {"framework_reported": reported, "results_file": str(results_file),
                   "lm_eval_version": data.get("lm_eval_version")}


def server_token_counter(target: EvalTarget) -> TokenCounter:
    """Counts tokens with the server's /tokenize (the served tokenizer); None when it cannot."""
    headers = {"Authorization": f"Bearer {target.api_key}"} if target.api_key else {}
    url = f"{target.base_url.rstrip('/')}/tokenize"

    def count(text: str) -> int | None:
        try:
            r = httpx.post(url, json={"model": target.model, "prompt": text, "add_special_tokens": False},
                           headers=headers, timeout=60)
            r.raise_for_status()
            return int(r.json()["count"])
        except (httpx.HTTPError, KeyError, ValueError):
            return None

    return count
