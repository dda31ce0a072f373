"""inspect-ai against the cell's own server, as a subprocess.

``python -m inspect_ai eval TASK --model openai-api/local/<served name>`` with ``LOCAL_BASE_URL`` (…/v1) and
``LOCAL_API_KEY``, ``--limit``, ``--log-dir out_dir/logs``, ``--display plain`` and the experiment's generation
settings as ``--temperature --top-p --max-tokens``. The shipped sets (and any ``.jsonl``) run through the
local task ``console/evals/inspect_tasks.py@mcq`` (same prompt as the other frameworks, last-letter scorer);
other task names (``inspect_evals/gpqa_diamond``, a task file) are passed through. For local tasks the items
already committed are left out with ``--sample-id``. The ``.eval`` log is read with
``inspect_ai.log.read_eval_log``; ``stop_reason`` max_tokens / model_length counts as a truncation.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from console.evals.base import EvalFailed, EvalItem, EvalResult, EvalTarget
from console.evals.data import load_items, resolve_dataset
from console.evals.lmeval import HarnessAdapter, harness_env, is_local_task, newest, run_logged, tail
from console.evals.missing_data import missing_data_hint
from console.experiment.schema import Benchmark, Generation

LOCAL_TASK = Path(__file__).with_name("inspect_tasks.py")
TRUNCATED = ("max_tokens", "model_length")


class InspectError(EvalFailed, RuntimeError):
    """inspect eval failed or wrote no log; the message carries the tail of its output."""

    fix = f"read the output lines above; {EvalFailed.fix}"


def command(bench: Benchmark, target: EvalTarget, *, task: str, task_args: dict[str, str], limit: int | None,
            sample_ids: list[str] | None, generation: Generation, log_dir: Path,
            max_connections: int = 4) -> list[str]:
    argv = [sys.executable, "-m", "inspect_ai", "eval", task, "--model", f"openai-api/local/{target.model}",
            "--log-dir", str(log_dir), "--display", "plain", "--log-format", "eval",
            "--temperature", str(generation.temperature), "--top-p", str(generation.top_p),
            "--max-tokens", str(generation.max_tokens), "--max-connections", str(max_connections),
            "--seed", "1234", "--no-fail-on-error", "--epochs", str(bench.epochs)]
    for key, value in task_args.items():
        argv += ["-T", f"{key}={value}"]
    if sample_ids is not None:
        argv += ["--sample-id", ",".join(sample_ids)]
    elif limit:
        argv += ["--limit", str(limit)]
    return argv


def env_for(target: EvalTarget, offline: bool = False) -> dict[str, str]:
    """inspect's environment; the HF offline switches only when the run is offline (see lmeval.env_for)."""
    env = harness_env({"LOCAL_BASE_URL": f"{target.base_url.rstrip('/')}/v1",
                       "LOCAL_API_KEY": target.api_key or "EMPTY", "INSPECT_DISPLAY": "plain", "INSPECT_LOG_DIR": "",
                       "INSPECT_EVAL_MODEL": ""}, offline)
    return {k: v for k, v in env.items() if v != ""}


class Inspect(HarnessAdapter):
    """EvalAdapter driving ``inspect eval`` (see the module docstring)."""

    framework = "inspect"

    def __init__(self, base_dir: Path | None = None, max_connections: int = 4, offline: bool = False,
                 experiment: str = "EXPERIMENT") -> None:
        super().__init__(base_dir, offline, experiment)
        self.max_connections = max_connections

    def run(self, bench: Benchmark, target: EvalTarget, *, stage: str, limit: int | None,
            generation: Generation, out_dir: Path, skip_ids: set[str],
            on_item: Callable[[EvalItem], None]) -> EvalResult:
        out_dir = self.work_dir(out_dir)
        task, task_args, sample_ids = bench.task, {}, None
        if is_local_task(bench.task):
            data = resolve_dataset(bench.task, self.base_dir).resolve()
            ids = [i.id for i in load_items(data)]
            task = f"{LOCAL_TASK}@mcq"
            task_args = {"dataset": str(data), "extractor": bench.extractor, "options": str(bench.options or 4)}
            sample_ids = [i for i in ids[: limit or len(ids)]
                          if not all(item_id(i, e, bench.epochs) in skip_ids for e in range(1, bench.epochs + 1))]
            if not sample_ids:
                return EvalResult.from_items(bench.id, self.framework, stage, [])
        elif self.base_dir is not None and (self.base_dir / task.split("@")[0]).exists():
            task = str((self.base_dir / task).resolve())
        log_dir = out_dir / "logs"
        argv = command(bench, target, task=task, task_args=task_args, limit=limit, sample_ids=sample_ids,
                       generation=generation, log_dir=log_dir, max_connections=self.max_connections)
        out_log = out_dir / "inspect.log"
        returncode, started, wall = run_logged(argv, env_for(target, self.offline), out_dir, out_log)
        path = newest(log_dir, "*.eval", since=started) if log_dir.exists() else None
        if path is None:
            hint = missing_data_hint(tail(out_log, 200), self.experiment)
            raise InspectError(f"inspect eval exited {returncode} without a log{f': {hint}' if hint else ''}; "
                               f"last lines of {out_log}:\n{tail(out_log)}")
        items, summary = parse_log(path, bench.metric, mcq=bench.options is not None, epochs=bench.epochs)
        if summary.get("status") != "success" and not items:
            raise InspectError(f"inspect eval status {summary.get('status')}: {summary.get('error')}\n"
                               f"{tail(out_log)}")
        fresh = [i for i in items if i.item_id not in skip_ids]
        for item in fresh:
            on_item(item)
        result = EvalResult.from_items(bench.id, self.framework, stage, fresh, wall_s=wall,
                                       metric=summary.get("scorer"))
        return replace(result, extra={**result.extra, **summary})


# --- reading the log -----------------------------------------------------------------------------------
def _correct(value: Any) -> bool | None:
    if isinstance(value, str):
        return {"C": True, "I": False, "P": False, "N": False}.get(value.upper())
    if isinstance(value, bool | int | float):
        return float(value) >= 1.0
    if isinstance(value, dict) and value:
        return all(_correct(v) for v in value.values())
    return None


def _pick_scorer(scores: dict[str, Any], metric: str | None) -> str | None:
    if not scores:
        return None
    if metric:
        for name in scores:
            if name == metric or metric.startswith(f"{name}/") or metric.startswith(f"{name},"):
                return name
    return next(iter(scores))


def item_id(sample_id: object, epoch: int, epochs: int) -> str:
    """`id` with one epoch; `id#epoch` when the benchmark runs several (every epoch is an item of its own)."""
    return str(sample_id) if epochs == 1 else f"{sample_id}#{epoch}"


def item_from_sample(sample: Any, metric: str | None = None, mcq: bool = True, epochs: int = 1) -> EvalItem:
    """One sample → EvalItem; for an MCQ a scorer that reports no answer letter is an extraction failure."""
    output = sample.output
    raw = (output.completion if output is not None else "") or ""
    stop = None
    tokens = None
    if output is not None:
        if output.choices:
            stop = output.choices[0].stop_reason
        if output.usage is not None:
            tokens = output.usage.output_tokens
    finish = "length" if stop in TRUNCATED else stop
    scores = sample.scores or {}
    name = _pick_scorer(scores, metric)
    score = scores.get(name) if name else None
    answer = score.answer if score is not None else None
    extracted = answer.strip() if isinstance(answer, str) and answer.strip() else None
    if extracted is None and score is not None and not mcq and raw.strip():
        extracted = raw  # a non-MCQ scorer (IFEval, …) scores the whole output: nothing to extract
    target = sample.target if isinstance(sample.target, str) else ",".join(sample.target or [])
    return EvalItem(item_id=item_id(sample.id, getattr(sample, "epoch", 1), epochs), raw_output=raw, extracted=extracted,
                    correct=_correct(score.value) if score is not None else None, target=target,
                    finish_reason=finish, output_tokens=tokens)


def parse_log(path: Path, metric: str | None = None, mcq: bool = True,
              epochs: int | None = None) -> tuple[list[EvalItem], dict[str, Any]]:
    """EvalItems, one per sample and epoch, and what inspect itself reported. The score over all of them is
    inspect's own mean over epochs. ``epochs`` defaults to what the log says it ran."""
    from inspect_ai.log import read_eval_log

    log = read_eval_log(str(path))
    ran = max((int(getattr(s, "epoch", 1) or 1) for s in (log.samples or [])), default=1)
    epochs = max(epochs or 1, ran)
    items = [item_from_sample(s, metric, mcq, epochs) for s in (log.samples or [])]
    reported: dict[str, Any] = {}
    scorer = None
    if log.results is not None:
        for sc in log.results.scores:
            scorer = scorer or sc.name
            reported[sc.name] = {k: m.value for k, m in sc.metrics.items()}
    return items, {"status": log.status, "error": str(log.error.message) if log.error else None,
                   "framework_reported": reported, "scorer": _pick_scorer(dict.fromkeys(reported), metric) or scorer,
                   "log_file": str(path), "task": log.eval.task, "epochs": ran}
