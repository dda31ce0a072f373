"""Honest pairing: a speed-up or an accuracy Δ compares a cell only with an AR baseline measured on the same device.

On one box every row shares a device, so the rule is silent; across a mixed fleet (or against a baseline from an
earlier run on another box) an H100 cell divided by an A100 baseline is not a speed-up. Rows are plain mappings
with the master-CSV columns (`model`, `baseline_model`, `precision`, `technique`, `device_name`, `run_id`,
`timestamp` and the comparison keys), so `console/results/derive.py` can adopt `pair_with_baseline` as its
candidate filter without a second data model.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from console.cluster.devices import device_key

SPEED_KEYS: tuple[str, ...] = ("model", "precision", "context", "concurrency", "category")
ACCURACY_KEYS: tuple[str, ...] = ("model", "precision", "benchmark", "framework")
"""The same keys as `console.results.derive` (a test keeps them equal); `model` means the row's
`baseline_model` when set (diffusion's closest AR analogue)."""
AR = "ar"
Row = Mapping[str, Any]


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def _ref_model(row: Row) -> str:
    return _text(row.get("baseline_model")) or _text(row.get("model"))


@dataclass(frozen=True)
class Pairing:
    """A row, the baseline it is compared with (None: no comparison), the device both ran on, and why."""

    row: Row
    baseline: Row | None
    device: str
    note: str


def same_comparison(row: Row, candidate: Row, keys: Sequence[str]) -> bool:
    """True when the candidate is an AR row that agrees with the row on every key."""
    if _text(candidate.get("technique")) != AR:
        return False
    for key in keys:
        want = _ref_model(row) if key == "model" else _text(row.get(key))
        if _text(candidate.get(key)) != want:
            return False
    return True


def pair_with_baseline(row: Row, candidates: Iterable[Row], keys: Sequence[str] = SPEED_KEYS) -> Pairing:
    """The AR baseline for `row` among `candidates`: same comparison keys AND the same device (exact name as
    recorded, vendor/case/spacing folded; unknown pairs only with unknown). Among several: the same run first,
    then the newest. A baseline on another device is never used; the note names the devices it exists on."""
    device = device_key(row.get("device_name"))
    matching = [c for c in candidates if same_comparison(row, c, keys)]
    here = [c for c in matching if device_key(c.get("device_name")) == device]
    shown = _text(row.get("device_name")) or "an unknown device"
    if not here:
        elsewhere = sorted({_text(c.get("device_name")) or "unknown device" for c in matching})
        note = f"no AR baseline on {shown}"
        if elsewhere:
            note += f" (one exists on {', '.join(elsewhere)}: not paired, tok/s and accuracy runs differ by device)"
        return Pairing(row, None, device, note)
    run = _text(row.get("run_id"))
    best = max(here, key=lambda c: (_text(c.get("run_id")) == run, _text(c.get("timestamp"))))
    note = "" if _text(best.get("run_id")) == run else f"baseline from run {_text(best.get('run_id'))}"
    if not device:
        note = "; ".join(n for n in (note, "device unknown on both sides") if n)
    return Pairing(row, best, device, note)


def pair_all(rows: Sequence[Row], keys: Sequence[str] = SPEED_KEYS) -> list[Pairing]:
    """Every non-AR row of `rows` with its same-device baseline (or None and the reason)."""
    return [pair_with_baseline(r, rows, keys) for r in rows if _text(r.get("technique")) != AR]


def by_device(rows: Iterable[Row]) -> dict[str, list[Row]]:
    """Rows per device (the name as first recorded), so a mixed fleet is reported per device."""
    out: dict[str, list[Row]] = {}
    names: dict[str, str] = {}
    for row in rows:
        key = device_key(row.get("device_name"))
        name = names.setdefault(key, _text(row.get("device_name")) or "unknown device")
        out.setdefault(name, []).append(row)
    return out
