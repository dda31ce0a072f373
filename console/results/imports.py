"""Results made outside specdeck, as master rows: `vllm bench serve` JSON, lm-eval and inspect-ai logs.

What a file says about itself wins (``--metadata technique=mtp`` in a bench result, ``metadata`` of an
inspect log, ``model_args`` of lm-eval); the file or folder name is the fallback (``naming.parse_name``);
``overrides`` (``--set key=value``) win over both.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from console.results.columns import normalize
from console.results.import_common import (
    IDENTITY_ALIASES,
    ImportFormatError,
    apply_overrides,
    cell_from_path,
    identity,
    json_kind,
    load_json,
    missing,
    read_text,
    run_from_path,
)
from console.results.import_inspect import import_inspect, inspect_items
from console.results.naming import parse_name

# Keys `vllm bench serve` itself writes (vllm/benchmarks/serve.py); any other top-level key came from
# `--metadata KEY=VALUE` and is kept (in serving_args when not an identity key).
BENCH_KEYS = {
    "date", "endpoint_type", "backend", "label", "model_id", "tokenizer_id", "num_prompts", "request_rate",
    "burstiness", "max_concurrency", "ramp_up_strategy", "ramp_up_start_rps", "ramp_up_end_rps", "duration",
    "completed", "failed", "total_input_tokens", "total_output_tokens", "total_input_sequences",
    "request_throughput", "request_goodput", "input_sequence_throughput", "output_throughput",
    "total_token_throughput", "input_lens", "output_lens", "ttfts", "itls", "latencies", "start_times",
    "queue_times", "generated_texts", "errors", "max_output_tokens_per_s", "max_concurrent_requests", "rtfx",
    "rps_change_events",
}
_BENCH_PATTERNS = re.compile(r"^(spec_decode_|diffusion_|probe_)|^(mean|median|std|p\d+(\.\d+)?)_\w+_ms$")
def read_json_results(path: Path) -> list[dict[str, Any]]:
    """One or more JSON objects (``--append-result`` writes one per line; a list of objects is read too)."""
    text = read_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        out = []
        for i, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    item = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ImportFormatError(f"{path}:{i}: not JSON ({exc.msg})") from None
                out.append(_object(item, f"{path}:{i}"))
        return out
    if isinstance(data, list):
        return [_object(item, f"{path} (item {i})") for i, item in enumerate(data, 1)]
    return [_object(data, str(path))]


def _object(data: Any, where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ImportFormatError(f"{where}: the JSON is {json_kind(data)}, not an object: not a `vllm bench serve "
                                "--save-result` file")
    return data


_LATENCY = re.compile(r"^(mean|median|std|p\d+(?:\.\d+)?)_(ttft|tpot|itl|e2el)_ms$")
"""Latency statistics `vllm bench serve` writes (--metric-percentiles picks the pNN; default 99)."""


def _number(result: Mapping[str, Any], key: str, where: str, *, low: float | None = None,
            high: float | None = None, above: float | None = None, whole: bool = False) -> float | None:
    """`result[key]` as a checked number (None when absent or null and not required by the caller), or an
    ImportFormatError naming the file and the field: a bad value must never replace a good row."""
    value = result.get(key)
    if value is None:
        return None
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (low is None or value >= low) and (high is None or value <= high)
    ok = ok and (above is None or value > above) and (not whole or float(value).is_integer())
    if not ok:
        want = "a whole number" if whole else "a finite number"
        bounds = [f"> {above:g}" if above is not None else "", f"≥ {low:g}" if low is not None else "",
                  f"≤ {high:g}" if high is not None else ""]
        rule = " and ".join(b for b in bounds if b)
        raise ImportFormatError(f"{where}: `{key}` must be {want}{' ' + rule if rule else ''} (got {value!r}); "
                                "nothing was imported: fix or remove the file")
    return value


def check_bench_result(result: Mapping[str, Any], where: str) -> None:
    """Every figure an import keeps must be a sane number; else one error naming the file and the field."""
    if result.get("output_throughput") is None:
        raise ImportFormatError(f"{where}: `output_throughput` is null: the benchmark measured nothing (did every "
                                "request fail?); nothing was imported")
    _number(result, "output_throughput", where, above=0)
    _number(result, "completed", where, low=0, whole=True)
    _number(result, "failed", where, low=0, whole=True)
    _number(result, "max_concurrency", where, above=0, whole=True)
    _number(result, "spec_decode_acceptance_length", where, low=1)
    _number(result, "spec_decode_acceptance_rate", where, low=0, high=100)
    _number(result, "spec_decode_num_drafts", where, low=0, whole=True)
    rates = result.get("spec_decode_per_position_acceptance_rates")
    if rates is not None:
        if not isinstance(rates, list):
            raise ImportFormatError(f"{where}: `spec_decode_per_position_acceptance_rates` must be a list "
                                    f"(got {rates!r}); nothing was imported")
        for i in range(len(rates)):
            _number({f"spec_decode_per_position_acceptance_rates[{i}]": rates[i]},
                    f"spec_decode_per_position_acceptance_rates[{i}]", where, low=0, high=1)
    for key in result:
        if _LATENCY.match(key):
            _number(result, key, where, low=0)


def _bench_date(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return datetime.strptime(value, "%Y%m%d-%H%M%S").replace(tzinfo=timezone.utc).isoformat()
        except ValueError:
            return value
    return value


def bench_rows(result: Mapping[str, Any], path: Path, run_id: str) -> list[dict[str, Any]]:
    """A speed row (and an acceptance row when spec_decode_* fields are present) from one bench result."""
    if "output_throughput" not in result:
        raise ImportFormatError(f"{path}: no `output_throughput` — not a `vllm bench serve --save-result` file")
    check_bench_result(result, str(path))
    meta = {k: v for k, v in result.items() if k not in BENCH_KEYS and not _BENCH_PATTERNS.match(k)}
    if isinstance(result.get("num_prompts"), str):  # `--metadata num_prompts=-1` overwrote the count
        meta["num_prompts"] = result["num_prompts"]
    parts = parse_name(path.stem)
    ident = identity(meta, parts)
    has_spec = "spec_decode_acceptance_length" in result
    has_diffusion = any(k.startswith("diffusion_") for k in result)
    notes = []
    if missing(ident.get("technique")):
        if has_diffusion:
            ident["technique"] = "diffusion"
        elif has_spec:
            ident["technique"] = "spec"
            notes.append("speculative (spec_decode fields) but the method is not named")
        else:
            ident["technique"] = "ar"
    per_pos = result.get("spec_decode_per_position_acceptance_rates") or []
    if missing(ident.get("k")) and ident["technique"] not in ("ar", "diffusion") and per_pos:
        ident["k"] = len(per_pos)
    model = ident.pop("model", None) or result.get("model_id") or parts.model
    concurrency = result.get("max_concurrency")
    if concurrency is None:
        concurrency = parts.concurrency
    category = ident.pop("category", None)
    cell = ident.pop("cell_id", None) or parts.variant or (
        f"{str(model).split('/')[-1]}_{ident['technique']}" + (f"_k{ident['k']}" if ident.get("k") else ""))
    identity_keys = {a for aliases in IDENTITY_ALIASES.values() for a in aliases}
    serving = {k: v for k, v in meta.items() if k not in identity_keys}
    serving.update({k: result[k] for k in ("backend", "request_rate", "burstiness") if k in result})
    if result.get("failed"):
        notes.append(f"{result['failed']} requests failed")
    if has_diffusion:
        notes.append("diffusion_committed_per_step={}".format(result.get("diffusion_committed_per_step")))
    base = {
        "run_id": ident.pop("run_id", None) or run_id, "cell_id": cell, "model": model, **ident,
        "concurrency": concurrency, "category": category, "serving_args": serving,
        "source": "vllm-bench", "timestamp": _bench_date(result.get("date")),
    }
    latency = {k: v for k, v in result.items() if _LATENCY.match(k) and v is not None}
    speed = {**base, "measurement": "speed", "tok_s_median": result["output_throughput"],
             "tok_s_min": result["output_throughput"], "tok_s_max": result["output_throughput"],
             "tok_s_source": "streaming-import", "repeats": 1, "n": result.get("completed"),
             **{f"{m}_ms_{stat}": result.get(f"{stat}_{m}_ms") for m in ("ttft", "tpot", "itl")
                for stat in ("median", "p99")},
             "latency_ms": latency or None, "latency_source": "streaming" if latency else None,
             "notes": "; ".join(notes + ["output_throughput (Σ output tokens / duration) from vllm bench serve"]
                                + (["latency from the same streaming client"] if latency else []))}
    rows = [speed]
    if has_spec:
        rate = result.get("spec_decode_acceptance_rate")
        rows.append({**base, "measurement": "acceptance",
                     "acceptance_length": result["spec_decode_acceptance_length"], "per_position": per_pos,
                     "draft_acceptance_rate": None if rate is None else float(rate) / 100,
                     "n": result.get("spec_decode_num_drafts"), "notes": "; ".join(notes)})
    return rows


def _run_id(prefix: str, paths: Iterable[Path]) -> str:
    parents = sorted({p.resolve().parent.name for p in paths})
    return f"{prefix}:{parents[0] if len(parents) == 1 else '+'.join(parents[:3])}"


def import_vllm_bench(paths: Iterable[str | Path], overrides: Mapping[str, Any] | None = None,
                      run_id: str | None = None) -> pd.DataFrame:
    """`vllm bench serve --save-result` JSON files → normalized rows (speed, plus acceptance when speculative).

    tok/s is the file's ``output_throughput`` (Σ output tokens / duration from a streaming client), labelled
    ``tok_s_source = streaming-import``; ``max_output_tokens_per_s`` (a peak, misleading for speculative
    cells) is ignored.
    """
    files = [Path(p) for p in paths]
    if not files:
        raise ImportFormatError("no files given")
    rid = run_id or _run_id("vllm-bench", files)
    rows: list[dict[str, Any]] = []
    for path in files:
        for result in read_json_results(path):
            rows.extend(apply_overrides(r, overrides) for r in bench_rows(result, path, rid))
    return normalize(pd.DataFrame(rows))


def _model_arg(model_args: Any) -> str | None:
    if isinstance(model_args, dict):
        return next((str(model_args[k]) for k in ("model", "pretrained", "model_name") if model_args.get(k)), None)
    for key in ("model", "pretrained"):
        m = re.search(rf"(?:^|,){key}=([^,]+)", str(model_args or ""))
        if m:
            return m.group(1)
    return None


_METRIC_ORDER = ("exact_match,flexible-extract", "exact_match,custom-extract", "acc,none", "exact_match,none",
                 "acc_norm,none", "prompt_level_strict_acc,none", "exact_match,strict-match")


def _pick_metric(task_result: Mapping[str, Any]) -> str | None:
    for key in _METRIC_ORDER:
        if isinstance(task_result.get(key), int | float):
            return key
    for key, value in task_result.items():
        if "," in key and "_stderr" not in key and isinstance(value, int | float):
            return key
    return None


def _lm_eval_sample_counts(samples_file: Path | None, filter_name: str) -> dict[str, Any]:
    counts: dict[str, Any] = {"blanks": None, "extraction_failures": None}
    if samples_file is None or not samples_file.exists():
        return counts
    blanks = fails = 0
    for line in samples_file.read_text().splitlines():
        if not line.strip():
            continue
        s = json.loads(line)
        if s.get("filter") not in (None, filter_name):
            continue
        resp = s.get("resps") or [[""]]
        text = resp[0][0] if resp and isinstance(resp[0], list) and resp[0] else ""
        got = (s.get("filtered_resps") or [""])[0]
        if not str(text).strip():
            blanks += 1
        elif got in ("[invalid]", "", None):
            fails += 1
    return {"blanks": blanks, "extraction_failures": fails}


def _samples_for(results_file: Path, task: str) -> Path | None:
    stamp = results_file.stem.removeprefix("results_")
    cand = results_file.parent / f"samples_{task}_{stamp}.jsonl"
    return cand if cand.exists() else None


def import_lm_eval(root: str | Path, overrides: Mapping[str, Any] | None = None,
                   run_id: str | None = None) -> pd.DataFrame:
    """Every ``results_*.json`` under ``root`` → one accuracy row per task (flexible-extract preferred)."""
    root = Path(root)
    files = sorted(root.rglob("results_*.json")) if root.is_dir() else [root]
    if not files:
        raise ImportFormatError(f"{root}: no results_*.json (lm-eval writes OUT/<model>/results_<time>.json)")
    rows = []
    for path in files:
        data = load_json(path)
        if not isinstance(data, dict) or "results" not in data:
            raise ImportFormatError(f"{path}: no `results` key — not an lm-eval results file")
        cfg = data.get("config", {})
        name = _model_arg(cfg.get("model_args")) or data.get("model_name") or path.parent.name
        folder = cell_from_path(path)
        parts = parse_name(str(name).split("/")[-1])
        ident = identity({}, parts)
        for task, res in data["results"].items():
            metric = _pick_metric(res)
            if metric is None:
                continue
            fname = metric.split(",", 1)[1] if "," in metric else "none"
            stderr_key = metric.replace(",", "_stderr,", 1)
            stderr = res.get(stderr_key)
            n = (data.get("n-samples", {}).get(task) or {}).get("effective")
            row = {
                "run_id": run_id or run_from_path(path) or f"lm-eval:{root.name}",
                "cell_id": folder or parts.variant or str(name), "model": parts.model or name, **ident,
                "measurement": "accuracy", "benchmark": task, "framework": "lm-eval", "n": n,
                "score": res[metric], "stderr": stderr if isinstance(stderr, int | float) else None,
                "serving_args": {"model_args": cfg.get("model_args"), "gen_kwargs": cfg.get("gen_kwargs"),
                                 "limit": cfg.get("limit")},
                "source": "lm-eval", "timestamp": data.get("date") and pd.Timestamp(data["date"], unit="s"),
                "notes": f"metric {metric}",
            }
            row.update(_lm_eval_sample_counts(_samples_for(path, task), fname))
            rows.append(apply_overrides(row, overrides))
    return normalize(pd.DataFrame(rows))


def lm_eval_items(root: str | Path, filter_name: str = "flexible-extract") -> pd.DataFrame:
    """Per-item correctness from ``samples_*.jsonl`` (for the paired test): cell_id, benchmark, framework,
    item_id (doc_id), correct."""
    rows = []
    for res_file in sorted(Path(root).rglob("results_*.json")):
        data = json.loads(res_file.read_text())
        name = _model_arg(data.get("config", {}).get("model_args")) or res_file.parent.name
        cell = cell_from_path(res_file) or parse_name(str(name).split("/")[-1]).variant or str(name)
        for task in data.get("results", {}):
            samples = _samples_for(res_file, task)
            if samples is None:
                continue
            for line in samples.read_text().splitlines():
                s = json.loads(line) if line.strip() else None
                if s and s.get("filter") in (None, filter_name):
                    metric = next((m for m in s.get("metrics", []) if m in s), None)
                    if metric is not None:
                        rows.append({"cell_id": cell, "benchmark": task, "framework": "lm-eval",
                                     "item_id": str(s["doc_id"]), "correct": bool(s[metric])})
    return pd.DataFrame(rows, columns=["cell_id", "benchmark", "framework", "item_id", "correct"])


FOLDER_IMPORTERS: dict[str, tuple[Callable[..., pd.DataFrame], Callable[..., pd.DataFrame]]] = {
    "lm-eval": (import_lm_eval, lm_eval_items),
    "inspect": (import_inspect, inspect_items),
}
"""`specdeck import KIND` for the harnesses whose results are a folder: (its rows, its per-item correctness)."""


__all__ = ["FOLDER_IMPORTERS", "ImportFormatError", "import_inspect", "import_lm_eval", "import_vllm_bench", "inspect_items",
           "lm_eval_items", "read_json_results"]
