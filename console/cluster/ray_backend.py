"""Workers on Ray: connecting to a cluster, the head's inbox actor, and the worker task.

What survives a worker dying mid-group: every record a worker ships is handed to the `Inbox` actor, which lives
on the head's node, with a blocking call (`ray.get(inbox.put.remote(record))`), so a record the worker got past
has reached the head; the head drains the inbox and applies each record (`ClusterRunner.take_shipped`) and keeps
them when the worker dies. A synchronous (non-async, one-thread) actor runs the calls of one caller in the order
they were submitted (ray 2.60.0 `ray/actor.py`: async or multi-threaded actors "can't execute actor tasks in
order", so the default one-thread actor keeps `allow_out_of_order_execution=False`). `ray.util.queue.Queue` is
not used: its actor is an asyncio one (`ray/util/queue.py`, `_QueueActor` over `asyncio.Queue`), which Ray runs
out of order, and it has no mailbox for the decisions going the other way.
"""

from __future__ import annotations

import os
from typing import Any

from console.cluster.ray_tasks import GPU_SLOT, to_ray
from console.cluster.worker import GroupJob, run_group
from console.errors import SpecdeckError

CRASHES = ("WorkerCrashedError", "NodeDiedError", "OutOfMemoryError", "LocalRayletDiedError", "ObjectLostError",
           "OwnerDiedError", "TaskCancelledError")
"""Ray's errors (ray 2.60.0 `ray/exceptions.py`) that mean the worker or its node went away, not that the group's
own code failed: the head re-submits the group for these."""


class ClusterUnavailable(SpecdeckError):
    """`--ray` cannot be used: the `cluster` extra is missing or no Ray cluster answers. Carries the fix."""


def import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ClusterUnavailable("`--ray` needs Ray, which is not installed",
                                 "pip install 'specdeck[cluster]' (ray[default] >= 2.60) on the head and on "
                                 "every node") from exc
    return ray


def default_address() -> str:
    """What a bare `--ray` joins when the experiment's `[cluster]` names no address: the Ray cluster this machine
    belongs to ("auto": RAY_ADDRESS, or the cluster the last `ray start` here recorded and that still answers —
    the order of ray 2.60.0 `_private/services.py` `get_ray_address_from_environment`), else a Ray of this
    machine alone ("local"), started for the run."""
    if os.environ.get("RAY_ADDRESS"):
        return "auto"
    import_ray()
    from ray._private.services import find_bootstrap_address  # reads /tmp/ray/ray_current_cluster

    recorded = find_bootstrap_address(None)
    return "auto" if recorded and _answers(recorded, timeout_s=2.0) else "local"


def connect(address: str, local_slots: int = 2) -> dict[str, Any]:
    """Join the Ray cluster at `address` ("auto", HOST:PORT, ray://HOST:PORT) or, for "local", start one on this
    machine with `local_slots` GPU slots (the custom resource `gpu_slot`). Returns what the executor needs:
    {"slot_resource": None | "gpu_slot", "nodes": n, "resources": cluster totals}."""
    ray = import_ray()
    if ray.is_initialized():
        ray.shutdown()
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    # Workers must import this very `console` (a checkout or an editable install). Ray adds only the driver's
    # script directory and current directory to its workers' paths (ray 2.60.0 `ray/_private/worker.py`,
    # `_py_driver_sys_path`), so the package root goes in through the job's environment.
    kwargs["runtime_env"] = {"env_vars": {"PYTHONPATH": _import_root()}}
    if address not in ("auto", "local") and not _answers(address):
        raise ClusterUnavailable(f"no Ray cluster answers at {address!r} (nothing accepts connections there)",
                                 "start one (`ray start --head --port=PORT` on that host), check the address and "
                                 "the firewall, or `--ray local` for a Ray on this machine alone")
    try:
        if address == "local":
            ray.init(address="local", num_cpus=max(2, local_slots), resources={GPU_SLOT: local_slots},
                     object_store_memory=100 * 2**20, **kwargs)
        else:
            ray.init(address=address, **kwargs)
    except ConnectionError as exc:
        raise ClusterUnavailable(f"no Ray cluster answers at {address!r} ({exc})",
                                 "start one (`ray start --head` here, `ray start --address HEAD:6379` on each "
                                 "node), pass its address (`--ray HOST:6379`), or `--ray local` for a Ray on "
                                 "this machine alone") from None
    totals = ray.cluster_resources()
    slot = GPU_SLOT if totals.get(GPU_SLOT) and not totals.get("GPU") else None
    if not slot and not totals.get("GPU"):
        ray.shutdown()
        raise ClusterUnavailable(f"the Ray cluster at {address!r} has no GPUs and no `{GPU_SLOT}` resource",
                                 f"start GPU nodes, or CPU-only nodes with `ray start --resources "
                                 f"'{{\"{GPU_SLOT}\": N}}'` to count N slots per node")
    return {"slot_resource": slot, "nodes": len([n for n in ray.nodes() if n.get("Alive")]), "resources": totals}


def _answers(address: str, timeout_s: float = 5.0) -> bool:
    """Something accepts TCP connections at HOST:PORT (ray://HOST:PORT). Checked first because `ray.init` keeps
    retrying an address where nothing listens for minutes (ray 2.60.0 logs "Failed to connect to GCS" and goes on)."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            return True
    except (OSError, ValueError):
        return False


def _import_root() -> str:
    import console

    root = os.path.dirname(os.path.dirname(os.path.abspath(console.__file__)))
    rest = os.environ.get("PYTHONPATH")
    return f"{root}{os.pathsep}{rest}" if rest else root


def start_head(exp: Any, run_dir: Any, phases: Any, options: Any, address: str, *, offline: bool = False,
               on_event: Any = None) -> tuple[Any, dict[str, Any]]:
    """The head of `specdeck run/resume --ray [ADDRESS]`: connect (ADDRESS "" = the experiment's
    `[cluster] address`, or without one `default_address()`), then a `ClusterRunner` whose workers run on Ray. Raises `ClusterUnavailable`."""
    from console.cluster.executor import ClusterRunner
    from console.cluster.groups import group_requests
    from console.cluster.ray_tasks import RayPolicy

    group_requests(exp.cells, exp.spec.experiment.device)  # a group the sweep cannot place: PlacementError now
    cfg = exp.spec.cluster
    if not address:
        address = cfg.address if "address" in cfg.model_fields_set else default_address()
    info = connect(address, cfg.local_slots)
    job = GroupJob(run_id="", attempt="", experiment_text=exp.path.read_text(encoding="utf-8"),
                   origin_dir=str(exp.base_dir.resolve()), cell_ids=(), facts={},
                   models_dir=str(options.models_dir.resolve()) if options.models_dir else None, offline=offline,
                   work_dir=cfg.work_dir, path_map=dict(cfg.path_map))
    policy = RayPolicy(slot_resource=info["slot_resource"])
    return ClusterRunner(exp, run_dir, phases, options, RayBackend(), policy=policy, job=job,
                         max_retries=cfg.max_retries, on_event=on_event), info


class RayBackend:
    """`console.cluster.executor.Backend` on Ray: one inbox actor on the head's node, one task per attempt."""

    def __init__(self, task: Any = None) -> None:
        """`task`: the function each attempt runs, `worker_task` (tests pass one with stand-in phases)."""
        ray = import_ray()
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        self.ray = ray
        here = ray.get_runtime_context().get_node_id()
        self.inbox = ray.remote(num_cpus=0)(Inbox).options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=here, soft=False)).remote()
        self.task = ray.remote(task or worker_task)
        self.refs: dict[Any, str] = {}

    def submit(self, job: GroupJob, options: dict[str, Any]) -> None:
        ref = self.task.options(**to_ray(options)).remote(job, self.inbox)
        self.refs[ref] = job.attempt

    def take(self) -> list[dict[str, Any]]:
        return list(self.ray.get(self.inbox.take.remote()))

    def forward(self, attempt: str, decisions: list[dict[str, Any]]) -> None:
        self.ray.get(self.inbox.post.remote(attempt, decisions))

    def finished(self) -> list[tuple[str, str | None, str]]:
        if not self.refs:
            return []
        done, _ = self.ray.wait(list(self.refs), num_returns=len(self.refs), timeout=0)
        out: list[tuple[str, str | None, str]] = []
        for ref in done:
            attempt = self.refs.pop(ref)
            try:
                self.ray.get(ref)
                out.append((attempt, None, ""))
            except Exception as exc:  # noqa: BLE001 - classified below, reported with its own words
                kind = "crashed" if type(exc).__name__ in CRASHES else "error"
                out.append((attempt, kind, f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1][:300]}"))
        return out

    def close(self) -> None:
        for ref in list(self.refs):
            self.ray.cancel(ref, force=True)
        self.refs.clear()


class Inbox:
    """The head's mailbox: records from workers (in arrival order) and decisions for them (per attempt)."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.decisions: dict[str, list[dict[str, Any]]] = {}

    def put(self, record: dict[str, Any]) -> None:
        self.records.append(record)

    def take(self) -> list[dict[str, Any]]:
        out, self.records = self.records, []
        return out

    def post(self, attempt: str, decisions: list[dict[str, Any]]) -> None:
        self.decisions.setdefault(attempt, []).extend(decisions)

    def decisions_for(self, attempt: str) -> list[dict[str, Any]]:
        return self.decisions.pop(attempt, [])


def worker_task(job: GroupJob, inbox: Any) -> dict[str, str]:
    """The Ray task: `run_group` with the inbox as the head."""
    import ray

    return run_group(job, lambda d: ray.get(inbox.put.remote(d)),
                     lambda: list(ray.get(inbox.decisions_for.remote(job.attempt))))
