"""A placed group → the options of its Ray task, as pure logic (Ray is imported only to build a strategy).

Verified against ray 2.60.0 (the `cluster` extra):
- `num_gpus`, `resources`, `accelerator_type`, `max_retries`, `retry_exceptions` are task options
  (`ray/_common/ray_option_utils.py`, `_common_options` / `_task_only_options`); `resources` must not name
  CPU or GPU (`_validate_resources`).
- `accelerator_type="H100"` becomes the resource `accelerator_type:H100: 0.001`
  (`ray/_common/utils.py`, `resources_from_ray_options`), which a node offers when its first GPU's name maps
  to that label (`ray/_private/resource_and_label_spec.py`, `_private/accelerators/nvidia_gpu.py`).
- `max_retries` (default 3, `ray/_private/ray_constants.py` DEFAULT_TASK_MAX_RETRIES) re-runs a task whose
  worker process or node died; application exceptions are retried only when `retry_exceptions` lists them
  (`ray/_private/worker.py`, the `ray.remote` docstring). So a server that cannot start (a typed
  ServerStartError) fails its config once, and only `TransientWorkerError` is retried.
- `NodeAffinitySchedulingStrategy(node_id, soft=True)` runs the task on the chosen node while it lives and
  elsewhere when it is dead or infeasible (`ray/util/scheduling_strategies.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from console.cluster.placement import Task

GPU_SLOT = "gpu_slot"
"""The custom resource a CPU-only test cluster counts "GPUs" in: `ray.init(resources={"gpu_slot": 2})`."""


class TransientWorkerError(Exception):
    """Raised by a worker for a failure worth another attempt on another node (e.g. the head's event sink was
    unreachable); Ray retries it up to `max_retries`. Everything else fails the group with its own reason."""


@dataclass(frozen=True)
class RayPolicy:
    """How groups become Ray tasks on this cluster."""

    slot_resource: str | None = None
    """Count GPUs in this custom resource instead of `num_gpus` (a CPU-only cluster, the local test)."""
    max_retries: int = 3
    """Attempts after a worker or node dies; committed items are never redone, so a retry costs a server start."""
    num_cpus: float = 1.0
    """CPUs the task itself holds (the phase driver and the eval client; vLLM's own CPU use is not counted)."""


def task_options(task: Task, policy: RayPolicy = RayPolicy(), *, accelerator: str | None = None,
                 node_id: str | None = None) -> dict[str, Any]:
    """The keyword arguments for `remote_fn.options(...)`. `accelerator` is the device type the placement
    wants (default: the task's own); `node_id` pins the task to the box the placement chose, softly."""
    gpus = task.gpus
    opts: dict[str, Any] = {
        "name": f"specdeck:{task.kind.value}:{task.group.label}",
        "num_cpus": policy.num_cpus,
        "max_retries": policy.max_retries,
        "retry_exceptions": [TransientWorkerError],
    }
    if policy.slot_resource:
        opts["num_gpus"] = 0
        opts["resources"] = {policy.slot_resource: gpus} if gpus else {}
    else:
        opts["num_gpus"] = gpus
    wanted = accelerator if accelerator is not None else task.accelerator
    if wanted:
        opts["accelerator_type"] = wanted
    if node_id:
        opts["scheduling_strategy"] = ("node_affinity", node_id)
    return opts


def to_ray(opts: dict[str, Any]) -> dict[str, Any]:
    """`task_options` with the scheduling strategy built as Ray's own object (needs the `cluster` extra)."""
    out = dict(opts)
    strategy = out.get("scheduling_strategy")
    if isinstance(strategy, tuple) and strategy[0] == "node_affinity":
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        out["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node_id=strategy[1], soft=True)
    return out
