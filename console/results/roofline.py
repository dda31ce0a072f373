"""Roofline at concurrency 1: how close a cell runs to the memory-bandwidth ceiling of its device.

ceiling tok/s = memory bandwidth / (active params × bytes per param) — one full read of the active weights
per generated token. A speculative cell can exceed 100 %: one weight read verifies several tokens.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from console.errors import SpecdeckError
from console.results.columns import eq, normalize

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# Peak memory bandwidth, TB/s, from vendor spec sheets. Keys are matched as whole words inside the reported
# device name (case, `-` and `_` ignored); the longest matching key wins. `NVIDIA H100 80GB HBM3` is how torch / nvidia-smi
# name the SXM part.
BANDWIDTH_TBPS: dict[str, float] = {
    "H100 SXM": 3.35,
    "H100 80GB HBM3": 3.35,
    "H100 PCIe": 2.0,
    "H100 NVL": 3.9,
    "H200": 4.8,
    "B200": 8.0,
    "A100-SXM4-80GB": 2.039,
    "A100 80GB PCIe": 1.935,
    "A100-SXM4-40GB": 1.555,
    "L40S": 0.864,
    "RTX 4090": 1.008,
    "RTX 3090": 0.936,
    "MI300X": 5.3,
}

# Bytes per weight when the row does not say, by precision label.
BYTES_BY_PRECISION: dict[str, float] = {
    "fp32": 4, "float32": 4, "bf16": 2, "bfloat16": 2, "fp16": 2, "float16": 2, "half": 2,
    "fp8": 1, "int8": 1, "w8a8": 1, "qat": 0.5, "int4": 0.5, "awq": 0.5, "gptq": 0.5, "nvfp4": 0.5,
    "mxfp4": 0.5, "w4a16": 0.5,
}


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-]+", " ", name).strip().lower()


def bandwidth_table(overrides: Mapping[str, float] | str | Path | None = None) -> dict[str, float]:
    """The default table with overrides applied (a mapping, or a TOML file with a ``[bandwidth]`` table)."""
    table = dict(BANDWIDTH_TBPS)
    if overrides is None:
        return table
    if isinstance(overrides, str | Path):
        data: Any = tomllib.loads(Path(overrides).read_text())
        overrides = data.get("bandwidth", data)
    for key, value in dict(overrides).items():  # type: ignore[arg-type]
        table[str(key)] = float(value)
    return table


class BandwidthArgError(SpecdeckError, ValueError):
    """A `--bandwidth` value that is not `DEVICE=TB/s`."""

    fix = "write --bandwidth DEVICE=TB/s with a positive number, e.g. --bandwidth 'H100 PCIe=2.0'"


def parse_bandwidth_arg(text: str) -> tuple[str, float]:
    """`DEVICE=TB/s` from the command line, e.g. `H100 PCIe=2.0` or `cpu=0.05`."""
    name, sep, value = text.rpartition("=")
    if not sep or not name.strip():
        raise BandwidthArgError(f"--bandwidth expects DEVICE=TB/s (got {text!r})")
    try:
        tbps = float(value)
    except ValueError:
        raise BandwidthArgError(f"--bandwidth {text!r}: {value!r} is not a number of TB/s") from None
    if tbps <= 0:
        raise BandwidthArgError(f"--bandwidth {text!r}: TB/s must be > 0")
    return name.strip(), tbps


def lookup_bandwidth(device_name: str, table: Mapping[str, float] | None = None) -> tuple[float, str | None]:
    """(TB/s, matched key) for a reported device name; (NaN, None) when no key matches."""
    table = BANDWIDTH_TBPS if table is None else table
    dev = _norm(device_name or "")
    if not dev:
        return math.nan, None
    padded = f" {dev} "
    hits = [k for k in table if _norm(k) and f" {_norm(k)} " in padded]
    if not hits:
        return math.nan, None
    key = max(hits, key=lambda k: len(_norm(k)))
    return float(table[key]), key


def bytes_per_param(row: Mapping[str, Any]) -> float:
    """The row's bytes_per_param, else the usual size for its precision label, else NaN."""
    value = row.get("bytes_per_param")
    try:
        if value is not None and value is not pd.NA and not math.isnan(float(value)):
            return float(value)
    except (TypeError, ValueError):
        pass
    precision = row.get("precision")
    precision = "" if precision is None or pd.isna(precision) else str(precision).lower()
    return float(BYTES_BY_PRECISION.get(precision, math.nan))


def ceiling_tok_s(bandwidth_tbps: float, active_params_b: float, bytes_pp: float) -> float:
    """Memory-bound tokens/s at batch 1: bytes/s ÷ bytes of active weights read per token."""
    denom = active_params_b * 1e9 * bytes_pp
    if math.isnan(denom) or denom <= 0 or math.isnan(bandwidth_tbps):
        return math.nan
    return bandwidth_tbps * 1e12 / denom


def roofline_table(df: pd.DataFrame, bandwidth: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Speed rows at concurrency 1 with their ceiling tok/s and % of it; unknown inputs give NaN + a note."""
    df = normalize(df)
    table = bandwidth_table(bandwidth)
    speed = df[eq(df["measurement"], "speed") & eq(df["concurrency"], 1)]
    rows = []
    for _, row in speed.iterrows():
        device = "" if pd.isna(row["device_name"]) else str(row["device_name"])
        bw, key = lookup_bandwidth(device, table)
        bpp = bytes_per_param(row)
        active = float(row["active_params_b"]) if pd.notna(row["active_params_b"]) else math.nan
        ceiling = ceiling_tok_s(bw, active, bpp)
        tok = float(row["tok_s_median"]) if pd.notna(row["tok_s_median"]) else math.nan
        notes = []
        if key is None:
            notes.append(f"unknown bandwidth for {device or 'unnamed device'}: pass --bandwidth DEVICE=TB/s")
        if math.isnan(active):
            notes.append("active params unknown")
        if math.isnan(bpp):
            notes.append("bytes per param unknown")
        if str(row["technique"]) != "ar" and not math.isnan(ceiling) and tok > ceiling:
            notes.append("above the AR ceiling: several tokens per weight read")
        rows.append({
            "run_id": row["run_id"], "cell_id": row["cell_id"], "model": row["model"],
            "precision": row["precision"], "technique": row["technique"], "context": row["context"],
            "category": row["category"], "device_name": device or None, "bandwidth_tbps": bw,
            "active_params_b": active, "bytes_per_param": bpp, "tok_s": tok, "ceiling_tok_s": ceiling,
            "pct_of_ceiling": tok / ceiling * 100 if ceiling and not math.isnan(ceiling) else math.nan,
            "note": "; ".join(notes),
        })
    return pd.DataFrame(rows, columns=[
        "run_id", "cell_id", "model", "precision", "technique", "context", "category", "device_name",
        "bandwidth_tbps", "active_params_b", "bytes_per_param", "tok_s", "ceiling_tok_s", "pct_of_ceiling",
        "note"])
