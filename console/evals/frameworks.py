"""The eval frameworks specdeck drives, in one table (imports nothing heavy: the schema reads it).

Adding a framework means one ``Framework`` row here plus its adapter (a class with the ``EvalAdapter``
protocol of ``console.evals.base``, built as ``Adapter(base_dir=..., <concurrency_arg>=n)``).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Framework:
    """One accuracy framework: its name in experiment files, its adapter, and what it needs installed."""

    name: str
    adapter: str
    """``module:Class`` of the adapter, imported only when a benchmark runs."""
    concurrency_arg: str
    """The adapter's keyword for requests in flight."""
    default_cap: int | None = None
    """Caps the default concurrency when the benchmark sets none (lm-eval: 4)."""
    packages: tuple[str, ...] = ()
    """Python distributions the framework needs (pip names)."""
    task_packages: tuple[tuple[str, str], ...] = ()
    """(task prefix, package) pairs: tasks under a prefix need one more package."""
    epochs: bool = False
    """Runs each item several times (a benchmark's `epochs`) and reports the mean."""
    description: str = ""

    def packages_for(self, task: str) -> tuple[str, ...]:
        return self.packages + tuple(pkg for prefix, pkg in self.task_packages if task.startswith(prefix))


FRAMEWORKS: dict[str, Framework] = {f.name: f for f in (
    Framework("lm-eval", "console.evals.lmeval:LmEval", "num_concurrent", default_cap=4, packages=("lm-eval",),
              description="EleutherAI lm-evaluation-harness, `lm_eval run` as a subprocess"),
    Framework("inspect", "console.evals.inspect_adapter:Inspect", "max_connections", packages=("inspect-ai",),
              task_packages=(("inspect_evals/", "inspect-evals"),), epochs=True,
              description="inspect-ai, `inspect eval` as a subprocess"),
    Framework("builtin", "console.evals.builtin:BuiltinMCQ", "concurrency",
              description="specdeck's own MCQ runner (last answer letter of the final body)"),
)}
"""Every framework a benchmark may name, keyed by that name."""

FRAMEWORK_NAMES: tuple[str, ...] = tuple(FRAMEWORKS)


def build_adapter(name: str, *, base_dir: Path | None, concurrency: int, explicit: bool) -> Any:
    """The adapter for framework ``name``; ``explicit`` = the benchmark set its own concurrency."""
    fw = FRAMEWORKS.get(name)
    if fw is None:
        raise ValueError(f"unknown framework {name!r}: use one of {', '.join(FRAMEWORK_NAMES)}")
    if fw.default_cap is not None and not explicit:
        concurrency = min(concurrency, fw.default_cap)
    module, _, cls = fw.adapter.partition(":")
    return getattr(importlib.import_module(module), cls)(base_dir=base_dir, **{fw.concurrency_arg: concurrency})
