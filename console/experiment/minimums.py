"""Engine minimums: does the installed vLLM serve every cell of an experiment?

Each cell needs the highest of its method's minimum (console/methods.py: the method itself, a config key it
sets, a model family it serves) and its `serving.vllm_ref` when that is a version (e.g. "0.24.0"). `specdeck
validate` (and preflight) compare those with the installed vLLM: older is an error carrying the fix; no vLLM at
all (a laptop) is a note, not an error. Optional packages a method needs (suffix → arctic-inference) are
checked the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from console import methods
from console.experiment.caveats import installed_engine, installed_version
from console.experiment.cells import Cell


@dataclass(frozen=True)
class CellMinimum:
    """The oldest vLLM a cell can run on, and why."""

    version: str
    why: str


@dataclass(frozen=True)
class EngineFinding:
    """One problem (or note) about the installed engine against an experiment's cells."""

    severity: Literal["error", "note"]
    message: str
    cells: tuple[str, ...] = ()


def parse_ref(ref: str | None) -> str | None:
    """`vllm_ref` as a version minimum ("0.24.0", ">=0.24.0", "vllm>=0.24"), or None when it is prose."""
    from packaging.version import InvalidVersion, Version

    if not ref:
        return None
    text = ref.strip().removeprefix("vllm").strip().removeprefix(">=").strip()
    try:
        return str(Version(text))
    except InvalidVersion:
        return None


def cell_minimum(cell: Cell) -> CellMinimum | None:
    """The highest minimum that applies to the cell (technique table, then the cell's `vllm_ref`)."""
    t = cell.technique
    req = methods.requirement(t.method, method_name=t.method_name, config_keys=t.config,
                              paths=[cell.model.path, cell.drafter or ""])
    best = CellMinimum(req.version, req.why) if req else None
    ref = parse_ref(cell.serving.vllm_ref)
    if ref and (best is None or methods.version_below(best.version, ref)):
        best = CellMinimum(ref, f"the experiment's vllm_ref = {cell.serving.vllm_ref!r}")
    return best


def _installed(dist: str) -> bool:
    return installed_version(dist) is not None


def engine_findings(cells: list[Cell], engine: str | None = None,
                    has_package: Callable[[str], bool] = _installed) -> list[EngineFinding]:
    """Every cell whose minimum is above the installed vLLM (``engine`` = "vllm 0.20.2", default: the
    installed one; "" = none installed), and every optional package a cell's method needs and lacks."""
    engine = installed_engine() if engine is None else engine
    needs: dict[tuple[str, str], list[str]] = {}
    for c in cells:
        m = cell_minimum(c)
        if m is not None:
            needs.setdefault((m.version, m.why), []).append(c.id)
    out: list[EngineFinding] = []
    if not engine:
        if needs:
            top = max((v for v, _ in needs), key=methods._key)
            out.append(EngineFinding("note", f"no vLLM installed here: these cells need vLLM ≥ {top} on the "
                                             "machine that runs them (console/methods.py)",
                                     tuple(sorted({i for ids in needs.values() for i in ids}))))
        return out
    dist, _, ver = engine.partition(" ")
    for (minimum, why), ids in sorted(needs.items(), key=lambda kv: methods._key(kv[0][0])):
        if methods.version_below(ver, minimum):
            out.append(EngineFinding(
                "error", f"{dist} {ver} is older than {minimum}, which {len(ids)} cell(s) need: {why}. Fix: "
                         f"install {'vllm' if dist == 'vllm' else dist}>={minimum}, or exclude those cells",
                tuple(ids)))
    packages: dict[str, list[str]] = {}
    for c in cells:
        info = methods.get(c.method)
        for pkg in info.packages if info else ():
            packages.setdefault(pkg, []).append(c.id)
    for pkg, ids in sorted(packages.items()):
        if not has_package(pkg):
            out.append(EngineFinding(
                "error", f"{len(ids)} cell(s) need the Python package {pkg!r}, which is not installed. Fix: "
                         f"pip install {pkg}", tuple(ids)))
    return out

