"""Which adapter runs a benchmark, and how many items its full run has (for the cost estimate)."""

from __future__ import annotations

from pathlib import Path

from console.evals.base import EvalAdapter
from console.evals.data import load_items, resolve_dataset
from console.evals.frameworks import build_adapter
from console.experiment.schema import Benchmark

DEFAULT_FULL_ITEMS = 1000
"""Assumed size of a task whose dataset is not on this machine and not in KNOWN_SIZES; set the benchmark's
``full_items`` for an exact estimate."""

KNOWN_SIZES: dict[str, int] = {
    "gpqa_diamond": 198,
    "inspect_evals/gpqa_diamond": 198,
    "ifeval": 541,
    "inspect_evals/ifeval": 541,
    "mmlu_pro": 12032,
    "kmmlu": 35030,
}
"""Test-set sizes of public benchmarks (task-name prefixes: gpqa_diamond_cot_zeroshot → gpqa_diamond)."""


def adapter_for(bench: Benchmark, base_dir: Path | None = None, concurrency: int = 4, offline: bool = False,
                experiment: str = "EXPERIMENT") -> EvalAdapter:
    """The adapter for ``bench.framework`` (console/evals/frameworks.py); ``base_dir`` resolves relative
    data/task paths (the experiment's folder). The benchmark's own ``concurrency`` wins over the default.
    ``offline`` sets the HF offline switches of the frameworks that download data (lm-eval, inspect; see
    console.prepare.offline_decision); ``experiment`` is named in their `specdeck prepare` hint."""
    adapter = build_adapter(bench.framework, base_dir=base_dir, concurrency=bench.concurrency or concurrency,
                            explicit=bench.concurrency is not None)
    if hasattr(adapter, "offline"):
        adapter.offline = offline
        adapter.experiment = experiment
    return adapter  # type: ignore[no-any-return]


def dataset_size(bench: Benchmark, base_dir: Path | None = None) -> int | None:
    """Items in the task's dataset when known: a local jsonl is counted, public tasks come from KNOWN_SIZES."""
    try:
        return len(load_items(resolve_dataset(bench.task, base_dir)))
    except FileNotFoundError:
        pass
    for name, size in sorted(KNOWN_SIZES.items(), key=lambda kv: -len(kv[0])):
        if bench.task == name or bench.task.startswith(name + "_"):
            return size
    return None


def full_items(bench: Benchmark, base_dir: Path | None = None) -> int:
    """Items the full run will score: the dataset size (capped by ``bench.full_items``), else
    ``bench.full_items``, else DEFAULT_FULL_ITEMS."""
    size = dataset_size(bench, base_dir)
    if size is not None:
        return min(size, bench.full_items) if bench.full_items else size
    return bench.full_items or DEFAULT_FULL_ITEMS


def requests(bench: Benchmark, stage: str, base_dir: Path | None = None) -> int:
    """Generations a stage asks for: its items (smoke: ``smoke_items``, picked across a group's subtasks;
    full: ``full_items``) × the benchmark's epochs."""
    items = bench.smoke_items if stage == "smoke" else full_items(bench, base_dir)
    return items * bench.epochs
