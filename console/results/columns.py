"""The master results schema: one row per cell × measurement, the same columns for every source.

``COLUMNS`` is the column reference (``docs/results.md`` is rendered from it by ``column_reference_markdown``).
Every frame that leaves ``console.results`` goes through ``normalize`` so that a CSV written by specdeck, an
import from ``vllm bench serve`` / lm-eval / inspect, and a hand-typed fixture all read back identically.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class Column:
    """One master-CSV column: its name, pandas dtype and what it means (one line, with the unit)."""

    name: str
    dtype: str  # "string" | "Float64" | "Int64"
    meaning: str


S, F, INT = "string", "Float64", "Int64"

COLUMNS: tuple[Column, ...] = (
    # identity of the cell
    Column("run_id", S, "Run the row came from (run folder name; `vllm-bench:<dir>` etc. for imports)."),
    Column("cell_id", S, "Cell id inside the run (model.precision.technique.context.cN for specdeck runs)."),
    Column("model", S, "Target model (short name or HF id)."),
    Column("baseline_model", S, "Model whose AR row is this cell's baseline when it is not `model` "
           "(e.g. a diffusion model against its closest AR analogue); empty = `model`."),
    Column("total_params_b", F, "Total parameters, billions."),
    Column("active_params_b", F, "Parameters active per token, billions (= total for dense models)."),
    Column("bytes_per_param", F, "Bytes per weight as served (fp8/int8 1, bf16 2, 4-bit 0.5); empty = from precision."),
    Column("precision", S, "Weight precision label (bf16, fp8, int8, awq, …)."),
    Column("technique", S, "Decoding technique: ar, mtp, eagle3, dflash, draft_model, ngram, diffusion, …"),
    Column("k", INT, "num_speculative_tokens (empty for ar / diffusion)."),
    Column("sweep", S, "The k sweep the cell is one point of: the technique id as written with `k = [1, 2, 4, …]` "
           "(`draft-exact` for `draft-exact-k4`); empty when k was not swept."),
    Column("context", S, "Context condition label (short, 8k, 32k, …)."),
    Column("context_tokens", INT, "Prompt length in tokens for that context condition, when exact."),
    Column("concurrency", INT, "Client concurrency (requests in flight)."),
    Column("category", S, "Prompt category (SPEED-Bench category, `all`, …); empty when not split."),
    Column("measurement", S, "speed | acceptance | accuracy | determinism | niah."),
    # speed
    Column("tok_s_median", F, "Output tokens/s: Σ completion_tokens / wall clock, median over repeats."),
    Column("tok_s_min", F, "Slowest repeat, tok/s."),
    Column("tok_s_max", F, "Fastest repeat, tok/s."),
    Column("tok_s_source", S, "nonstreaming (specdeck's meter) | streaming-import (Σ tokens / wall clock "
           "from a streaming client such as `vllm bench serve`)."),
    Column("repeats", INT, "Timed repeats behind the tok/s figures (warm-up not counted)."),
    # latency, as a streaming client measured it (`vllm bench serve`); specdeck's own tok/s is non-streaming
    Column("ttft_ms_median", F, "Time to first token, median, ms (streaming client; see `latency_source`)."),
    Column("ttft_ms_p99", F, "Time to first token, 99th percentile, ms (streaming client)."),
    Column("tpot_ms_median", F, "Time per output token after the first, median, ms (streaming client)."),
    Column("tpot_ms_p99", F, "Time per output token after the first, 99th percentile, ms (streaming client)."),
    Column("itl_ms_median", F, "Inter-token latency, median, ms (streaming client; a speculative step delivers "
           "several tokens in one chunk)."),
    Column("itl_ms_p99", F, "Inter-token latency, 99th percentile, ms (streaming client)."),
    Column("latency_ms", S, "Every latency statistic the source had, JSON object of ms (mean/median/std/pNN of "
           "ttft, tpot, itl, e2el)."),
    Column("latency_source", S, "streaming (measured by a streaming client) when the latency columns are set."),
    # acceptance
    Column("acceptance_length", F, "Mean acceptance length = 1 + Δaccepted / Δdrafts (tokens per target step)."),
    Column("per_position", S, "Per-position acceptance rates, JSON list (Δaccepted_pos[i] / Δdrafts)."),
    Column("draft_acceptance_rate", F, "Δaccepted / Δdraft_tokens, as a fraction 0–1 (vLLM prints it as %)."),
    # accuracy (also determinism / niah: score = fraction passed out of n)
    Column("benchmark", S, "Benchmark / task name (gpqa_diamond, mmlu_pro, ifeval, …)."),
    Column("framework", S, "lm-eval | inspect | builtin (or another harness name)."),
    Column("n", INT, "Items scored (requests completed for speed rows; prompts for determinism / niah)."),
    Column("score", F, "Accuracy 0–1 (determinism: share of identical sequences; niah: share of needles found)."),
    Column("stderr", F, "Standard error of `score` as reported by the framework; empty = use √(p(1−p)/n)."),
    Column("blanks", INT, "Items with an empty final answer body."),
    Column("extraction_failures", INT, "Items with a body but no extractable answer."),
    Column("truncations", INT, "Items that stopped on the length limit (finish_reason = length)."),
    # provenance
    Column("serving_args", S, "Server / client settings as run, JSON object (disclosed in reports)."),
    Column("vllm_version", S, "vLLM version that served the cell."),
    Column("device_name", S, "Accelerator name as reported (e.g. `NVIDIA H100 80GB HBM3`, `cpu`)."),
    Column("node", S, "Where the cell ran on a Ray cluster: host (IP) and the GPUs or slots its worker held; "
                      "empty for a single-box run."),
    Column("source", S, "specdeck | vllm-bench | lm-eval | inspect | study (typed in from a write-up)."),
    Column("timestamp", S, "When the measurement finished, ISO 8601 UTC."),
    Column("notes", S, "Free-text caveats attached to the row."),
)

NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)
DTYPES: dict[str, str] = {c.name: c.dtype for c in COLUMNS}
MEASUREMENTS: tuple[str, ...] = ("speed", "acceptance", "accuracy", "determinism", "niah")
TOK_S_SOURCES: tuple[str, ...] = ("nonstreaming", "streaming-import")
# A row is "the same measurement" when these agree; merging keeps the newest such row.
NATURAL_KEY: tuple[str, ...] = (
    "run_id", "cell_id", "measurement", "category", "benchmark", "framework", "concurrency", "context",
)
UNKEYED_IF_MISSING: tuple[str, ...] = ("run_id", "cell_id", "measurement")
"""Key columns a row must have to be merged with another; rows missing one are kept as they are."""
JSON_COLUMNS: tuple[str, ...] = ("per_position", "serving_args", "latency_ms")


def empty_frame() -> pd.DataFrame:
    """A master frame with no rows and every column typed."""
    return pd.DataFrame({c.name: pd.Series(dtype=c.dtype) for c in COLUMNS})


def _json_cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return pd.NA
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, list | tuple):
        return json.dumps([None if isinstance(v, float) and math.isnan(v) else v for v in value])
    text = str(value).strip()
    if not text:
        return pd.NA
    try:  # canonical form, so equal settings compare (and de-duplicate) equal
        parsed = json.loads(text)
    except ValueError:
        return text
    return _json_cell(parsed) if isinstance(parsed, dict | list) else text


def _iso_utc(value: Any) -> Any:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)) or value == "":
        return pd.NA
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        return str(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.isoformat(timespec="seconds")


def normalize(df: pd.DataFrame) -> pd.DataFrame:
    """Add missing columns, put them in schema order (unknown extras kept at the end) and coerce dtypes.

    Strings are stripped, "" becomes missing, JSON columns accept lists/dicts, timestamps become ISO UTC.
    """
    out = df.copy()
    for col in NAMES:
        if col not in out.columns:
            out[col] = pd.NA
    for col in JSON_COLUMNS:
        out[col] = out[col].map(_json_cell).astype("object")
    out["timestamp"] = out["timestamp"].map(_iso_utc).astype("object")
    for col in NAMES:
        dtype = DTYPES[col]
        if dtype == S:
            series = out[col].astype("object").map(
                lambda v: pd.NA if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))
                else (str(v).strip() or pd.NA))
            out[col] = series.astype("string")
        else:
            numeric = pd.to_numeric(out[col].astype("object").replace({"": None}), errors="coerce")
            if dtype == INT:
                numeric = numeric.round()
            out[col] = numeric.astype(dtype)
    extras = [c for c in out.columns if c not in DTYPES]
    return out[list(NAMES) + extras].reset_index(drop=True)


def eq(series: pd.Series, value: Any, case: bool = True) -> pd.Series:
    """``series == value`` as a plain bool mask (missing values are False, on every pandas version)."""
    if case:
        return (series == value).fillna(False).astype(bool)
    return (series.astype("string").str.lower() == str(value).lower()).fillna(False).astype(bool)


def _key_frame(df: pd.DataFrame) -> pd.DataFrame:
    return df[list(NATURAL_KEY)].astype("string").fillna("\x00")


@dataclass(frozen=True)
class MergeResult:
    """The merged master frame and what the merge did to the existing rows."""

    frame: pd.DataFrame
    added: int
    replaced: int


def merge_master(frames: Iterable[pd.DataFrame], existing_csv: str | Path | None = None) -> MergeResult:
    """Merge frames (and an existing master CSV, if it exists) into one, de-duplicated on ``NATURAL_KEY``.

    When two rows share the key the newest ``timestamp`` wins; on equal or missing timestamps the later
    input wins (new frames come after the existing CSV). ``added`` counts new keys, ``replaced`` counts
    existing rows overwritten by an incoming one.
    """
    existing = empty_frame()
    if existing_csv is not None and Path(existing_csv).exists():
        existing = read_csv(existing_csv)
    incoming = [normalize(f) for f in frames]
    parts = [existing] + [f for f in incoming if len(f)]
    if len(parts) == 1:
        return MergeResult(existing, 0, 0)
    combined = pd.concat(parts, ignore_index=True)
    combined["_order"] = range(len(combined))
    combined["_new"] = combined["_order"] >= len(existing)
    keys = _key_frame(combined)
    combined["_key"] = keys.apply(lambda r: "\x1f".join(r), axis=1) if len(combined) else pd.Series(dtype=str)
    # A row without run, cell or measurement names no measurement: keep each such row, never merge them.
    unkeyed = combined[list(UNKEYED_IF_MISSING)].isna().any(axis=1)
    combined.loc[unkeyed, "_key"] = "\x00unkeyed\x1f" + combined.loc[unkeyed, "_order"].astype(str)
    combined["_ts"] = pd.to_datetime(combined["timestamp"], utc=True, errors="coerce")
    ranked = combined.sort_values(["_key", "_ts", "_order"], kind="stable", na_position="first")
    winners = ranked.drop_duplicates("_key", keep="last")
    old_keys = set(combined.loc[~combined["_new"], "_key"])
    new_winner_keys = set(winners.loc[winners["_new"], "_key"])
    incoming_keys = set(combined.loc[combined["_new"], "_key"])
    added = len(incoming_keys - old_keys)
    replaced = len(new_winner_keys & old_keys)
    merged = winners.sort_values("_order").drop(columns=["_order", "_new", "_key", "_ts"])
    return MergeResult(normalize(merged), added, replaced)


def write_csv(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a normalized frame; ``read_csv`` gives back an equal frame."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    normalize(df).to_csv(path, index=False, lineterminator="\n")
    return path


def read_csv(path: str | Path) -> pd.DataFrame:
    """Read a master CSV (any subset of columns, any order) into a normalized frame."""
    head = pd.read_csv(path, nrows=0)
    dtypes = {c: DTYPES.get(c, "string") for c in head.columns}
    df = pd.read_csv(path, dtype=dtypes, keep_default_na=False, na_values=[""])
    return normalize(df)


def concat(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate frames into one normalized frame (no de-duplication)."""
    parts = [normalize(f) for f in frames if len(f)]
    return normalize(pd.concat(parts, ignore_index=True)) if parts else empty_frame()


def column_reference_markdown() -> str:
    """The column reference as a Markdown table (the body of docs/results.md's reference section)."""
    lines = ["| # | column | type | meaning |", "|---|---|---|---|"]
    kinds = {S: "text", F: "float", INT: "integer"}
    for i, c in enumerate(COLUMNS, 1):
        lines.append(f"| {i} | `{c.name}` | {kinds[c.dtype]} | {c.meaning.replace('|', '&#124;')} |")
    return "\n".join(lines) + "\n"
