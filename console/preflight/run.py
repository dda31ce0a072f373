"""Put the checks together: the machine, one table per server config, one per benchmark, the disk, the cost."""

from __future__ import annotations

import fnmatch
import shutil
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from console.experiment.cells import Cell
from console.experiment.loader import LoadedExperiment
from console.hub import Hub
from console.preflight import device as dev
from console.preflight.benchmarks import DatasetNeed, benchmark_section, dataset_check
from console.preflight.checks import FAIL, OK, UNKNOWN, Report, Section
from console.preflight.cost import campaign
from console.preflight.engine import machine_section
from console.preflight.models import Source, gib, probe
from console.preflight.servers import server_section
from console.preflight.vllm_registry import installed_registry
from console.run.paths import runs_root as default_runs_root


def select(cells: list[Cell], pattern: str | None) -> list[Cell]:
    """Cells whose id matches a glob (comma-separated globs allowed); all cells without one."""
    if not pattern:
        return list(cells)
    globs = [p.strip() for p in pattern.split(",") if p.strip()]
    return [c for c in cells if any(fnmatch.fnmatchcase(c.id, g) for g in globs)]


def free_bytes(path: Path) -> tuple[float, Path]:
    """Free space on the file system that holds `path` (its nearest existing parent)."""
    p = path.expanduser()
    while not p.exists() and p != p.parent:
        p = p.parent
    return float(shutil.disk_usage(p).free), p


def preflight(exp: LoadedExperiment, *, cells: list[Cell] | None = None, hub: Hub | None = None,
              network: bool = True, runs_root: Path | None = None, models_dir: Path | None = None,
              engine: str | None | bool = True, gpus: tuple[list[dev.Gpu], str | None] | None = None,
              bandwidth: Mapping[str, float] | None = None) -> Report:
    """Everything preflight checks, for `cells` (default: all) of a loaded experiment. `engine=True` reads the
    installed engine; pass a string (or None) to check against another. `gpus` defaults to NVML's answer."""
    from console.experiment.caveats import installed_engine

    spec, base = exp.spec, exp.base_dir
    cells = list(exp.cells) if cells is None else cells
    engine_name = installed_engine() if engine is True else (engine or None)
    gpu_list, gpu_reason = gpus if gpus is not None else dev.nvml_gpus()
    report = Report(spec.experiment.name, str(exp.path))
    report.sections.append(machine_section(spec, engine_name, gpu_list, gpu_reason, cells))

    # models and drafters, each looked at once
    sources: dict[str, Source] = {}
    started = [c for c in cells if c.model.attach is None]
    for c in started:
        for ref in (c.model.path, c.drafter):
            if ref and ref not in sources:
                sources[ref] = probe(ref, base_dir=base, models_dir=models_dir, hub=hub, network=network)
    registry = installed_registry()
    groups: dict[str, list[Cell]] = {}
    for c in cells:
        groups.setdefault(c.serving_key, []).append(c)
    for group in groups.values():
        report.sections.append(server_section(group, spec, sources, registry, engine_name, gpu_list, gpu_reason, base))

    # benchmarks: evals run on the first cell of each server config
    eval_cells = tuple(g[0].id for g in groups.values() if g)
    datasets: dict[str, DatasetNeed] = {}
    for bench in spec.benchmarks:
        section, needs = benchmark_section(bench, eval_cells, base)
        for need in needs:
            dataset_check(section, need, hub, network)
            datasets.setdefault(need.path, need)
        report.sections.append(section)

    report.sections.append(disk_section(sources, list(datasets.values()), hub, cells))
    report.cost = campaign(spec, cells, runs_root=runs_root or default_runs_root(), base_dir=base, bandwidth=bandwidth)
    report.sections.append(cost_section(report.cost, cells))
    for section in report.sections:  # fixes name this experiment's file, ready to paste
        section.checks = [replace(c, fix=c.fix.replace(" EXPERIMENT`", f" {exp.path}`")) for c in section.checks]
    return report


def disk_section(sources: dict[str, Source], datasets: list[DatasetNeed], hub: Hub | None, cells: list[Cell]) -> Section:
    section = Section("disk", "disk", tuple(c.id for c in cells))
    to_fetch = [s for s in sources.values() if s.where == "hub"]
    known = sum(s.to_download or 0 for s in to_fetch) + sum(d.to_download or 0 for d in datasets)
    unknown = [s.path for s in to_fetch if s.to_download is None] + [d.path for d in datasets if d.to_download is None]
    cache = hub.cache_dir if hub is not None and hub.cache_dir is not None else Path("~/.cache/huggingface/hub")
    free, where = free_bytes(cache)
    fetch_sets = [d for d in datasets if d.to_download != 0.0]
    if not to_fetch and not fetch_sets:
        section.add("disk", OK, f"nothing to download; {gib(free)} free on {where}")
        return section
    names = [f"{s.path} ({gib(s.to_download)})" for s in to_fetch]
    names += [f"dataset {d.path} ({gib(d.to_download)})" for d in fetch_sets]
    section.add("downloads", UNKNOWN if unknown else OK, f"still to download: {', '.join(names)}",
                "`specdeck prepare EXPERIMENT` fetches all of it before the first start",
                items=[*(s.path for s in to_fetch), *(d.path for d in fetch_sets)])
    if known > free:
        section.add("disk", FAIL, f"{gib(known)} still to download but only {gib(free)} free on {where}",
                    "free space, or point HF_HUB_CACHE / HF_HOME at a larger disk")
    elif unknown:
        section.add("disk", UNKNOWN, f"{gib(known)} known still to download (+ unknown size of "
                    f"{', '.join(unknown[:4])}{'…' if len(unknown) > 4 else ''}); {gib(free)} free on {where}",
                    "preflight on a machine that reaches the hub gives every size")
    else:
        section.add("disk", OK, f"{gib(known)} still to download; {gib(free)} free on {where}")
    return section


def cost_section(cost: dict, cells: list[Cell]) -> Section:
    from console.units import gpu_hours

    section = Section("cost", "campaign cost (before anything starts)", tuple(c.id for c in cells))
    totals = cost["gpu_hours"]
    unpriced = cost["unpriced"]
    for phase in ("speed", "smoke", "full"):
        n = sum(1 for line in cost["lines"] if line["phase"] == phase)
        if not n:
            continue
        missing = unpriced.get(phase, 0)
        if missing == n:
            what = f"{phase}: {n} run(s), not priced: no tok/s (no earlier run of these cells, no roofline)"
        else:
            what = f"{phase}: {n} run(s), {gpu_hours(totals.get(phase, 0.0))}"
            what += f" (+ {missing} without a tok/s: not priced)" if missing else ""
        section.add(phase, UNKNOWN if missing else OK, what,
                    "run these cells once (later preflights use their measured tok/s), set [experiment] device "
                    "(roofline), or pass --bandwidth DEVICE=TB/s" if missing else "")
    status = UNKNOWN if unpriced else OK
    priced = "nothing priced" if not totals else gpu_hours(cost["total_gpu_hours"])
    section.add("total", status, f"{priced} for {cost['cells']} cells on "
                f"{cost['server_configs']} server configs; tok/s from: {'; '.join(cost['bases'])}; not counted: "
                f"{cost['not_counted']}")
    return section


__all__ = ["preflight", "select", "FAIL", "OK", "UNKNOWN"]
