"""Shared pieces of the importers: typed errors, identity from metadata + names, `--set` overrides."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from console.errors import SpecdeckError
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


class ImportFormatError(SpecdeckError, ValueError):
    """A file that is not what the importer expects; the message names the file and what was missing."""

    fix = "give the files `specdeck import KIND --help` describes for that kind; nothing was imported"


def read_text(path: Path) -> str:
    """A result file as UTF-8 text, or ImportFormatError naming the file."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ImportFormatError(f"{path}: not UTF-8 text (byte {exc.start}): not a result file") from None


def load_json(path: Path) -> Any:
    """One JSON document, or ImportFormatError naming the file and where it stops being JSON."""
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise ImportFormatError(f"{path}:{exc.lineno}: not JSON ({exc.msg})") from None


def json_kind(value: Any) -> str:
    """`a list`, `a number`, `null`… for messages about a JSON document of the wrong shape."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return {list: "a list", str: "a string", int: "a number", float: "a number"}.get(type(value), type(value).__name__)


def check_master_csv(path: str | Path) -> None:
    """`--out` may name a new file or an existing master CSV, nothing else (it would be overwritten)."""
    p = Path(path)
    if not p.exists():
        return
    if p.is_dir():
        raise ImportFormatError(f"--out {p}: is a folder; give a .csv file")
    try:
        with p.open(encoding="utf-8") as f:
            header = f.readline().strip()
    except UnicodeDecodeError:
        header = ""
    columns = {c.strip().strip('"') for c in header.split(",")}
    if not {"run_id", "cell_id", "measurement"} <= columns:
        raise ImportFormatError(f"--out {p}: exists and is not a master CSV (its first line has no run_id, cell_id "
                                "and measurement columns); it would be overwritten: give a new file or an existing "
                                "master CSV")


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
