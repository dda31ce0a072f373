"""Shared pieces of the importers: typed errors, identity from metadata + names, `--set` overrides."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from console.results.columns import DTYPES
from console.results.naming import NameParts

# Metadata keys that name the cell rather than describe the serving setup.
IDENTITY_ALIASES: dict[str, tuple[str, ...]] = {
    "run_id": ("run_id", "run"),
    "cell_id": ("cell_id", "cell"),
    "model": ("model", "model_name"),
    "technique": ("technique", "method", "spec_method"),
    "k": ("k", "num_speculative_tokens", "nt"),
    "category": ("category", "speed_bench_category"),
    "context": ("context",),
    "precision": ("precision", "quantization", "dtype"),
    "device_name": ("device_name", "device", "gpu"),
    "vllm_version": ("vllm_version", "vllm", "version"),
    "total_params_b": ("total_params_b",),
    "active_params_b": ("active_params_b",),
}


class ImportFormatError(ValueError):
    """A file that is not what the importer expects; the message names the file and what was missing."""


def missing(v: Any) -> bool:
    """None, NA, NaN or an empty string."""
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)) or v == ""


def identity(meta: Mapping[str, Any], parts: NameParts) -> dict[str, Any]:
    """Master columns named by metadata (first alias present wins), else by the parsed name."""
    out: dict[str, Any] = {}
    for col, aliases in IDENTITY_ALIASES.items():
        for a in aliases:
            if not missing(meta.get(a)):
                out[col] = meta[a]
                break
    for col in ("technique", "k", "category", "concurrency"):
        if missing(out.get(col)) and getattr(parts, col) is not None:
            out[col] = getattr(parts, col)
    if isinstance(out.get("technique"), str):
        out["technique"] = {"baseline": "ar"}.get(out["technique"].lower(), out["technique"].lower())
    return out


def apply_overrides(row: dict[str, Any], overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """`--set key=value` pairs, which win over anything the file says; keys must be master columns."""
    for key, value in (overrides or {}).items():
        if key not in DTYPES:
            raise ValueError(f"--set {key}=…: not a master column; see docs/results.md for the list")
        row[key] = value
    return row


def cell_from_path(path: Path) -> str | None:
    """The cell id when the file sits in a specdeck run folder (`runs/<run>/cells/<cell>/…`)."""
    parts = path.parts
    if "cells" in parts:
        i = len(parts) - 1 - parts[::-1].index("cells")
        if i + 1 < len(parts):
            return parts[i + 1]
    return None


def run_from_path(path: Path) -> str | None:
    """The run id when the file sits in a specdeck run folder."""
    parts = path.parts
    if "cells" in parts:
        i = len(parts) - 1 - parts[::-1].index("cells")
        if i >= 1:
            return parts[i - 1]
    return None
