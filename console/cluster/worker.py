"""The worker: one serving-config group on one slot, with the local runner's own phases and its own server.

`run_group` is plain Python (a Ray task calls it, a test calls it with a list as the head): it seeds a replica
of the group's facts in a scratch folder on this node (`console.cluster.replica`), runs the local `Runner` for
the group's cells against it (server start, speed, smoke, the approval window, full runs of approved
benchmarks) and hands every event it applies to `ship` as its dict, after its own sink committed it — the head
applies it with its sink (#14's one write path: `EventSink.apply(Event.from_dict(d))` is a local emit).
Decisions stay on the head: `fetch_decisions` returns the ones the head forwarded since the last call, and the
runner takes them from the replica as it would from its own store. The worker never waits for a decision past
the approval window: then it stops its server and returns, and a late approval becomes a new task.

A server the worker starts gets a guard (`console.cluster.guard`) in a session of its own, so the server does
not outlive a worker that dies without cleanup.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from console.cluster.files import pack
from console.cluster.replica import insert_decision, seed_replica
from console.events import Event, PhaseProgress, ResultRecorded
from console.run.folder import EXPERIMENT_COPY, RunFolder
from console.run.resolved import load_frozen
from console.run.runner import Phases, Runner, RunOptions
from console.run.sink import EventSink
from console.run.store import Store

NOT_SHIPPED = ("run_started", "run_finished", "cells_selected", "cells_registered")
"""The worker runner's own lifecycle: the head's runner is the run's one runner and registered the cells, so
these stay in the worker's scratch folder; the head records where each group ran instead."""
PLACEMENT_DOC = "placement"
"""The result document (`ResultRecorded.doc`) saying where a cell ran: its part `where` (`where_am_i`)."""

Ship = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class GroupJob:
    """What the head hands a worker: the run, the group's cells and what the head holds for them."""

    run_id: str
    attempt: str
    """Unique per submission ("<group label>#<n>")."""
    experiment_text: str
    origin_dir: str | None
    cell_ids: tuple[str, ...]
    facts: dict[str, Any]
    until: str = "full"
    approval_window_s: float | None = None
    poll_s: float = 1.0
    models_dir: str | None = None
    offline: bool = False
    work_dir: str | None = None
    path_map: dict[str, str] = field(default_factory=dict)


def map_path(path: str | None, path_map: dict[str, str]) -> str | None:
    """A head path as this node sees it: the longest matching prefix of `path_map` replaced ([cluster] path_map)."""
    if not path:
        return path
    for head in sorted(path_map, key=len, reverse=True):
        if path == head or path.startswith(head.rstrip("/") + "/"):
            return path_map[head] + path[len(head.rstrip("/")):]
    return path


def where_am_i() -> dict[str, Any]:
    """This worker's node and devices: host, pid, the device nvidia-smi names (else cpu) and, inside a Ray task,
    its node id, IP and the GPUs / custom resources Ray assigned it (ray 2.60.0 `ray/runtime_context.py`)."""
    from console.run.runner import device_name

    out: dict[str, Any] = {"host": socket.gethostname(), "pid": os.getpid(), "device": device_name(None)}  # type: ignore[arg-type]
    try:
        import ray
    except ImportError:
        return out
    if ray.is_initialized():
        ctx = ray.get_runtime_context()
        out["node_id"] = ctx.get_node_id()
        out["node_ip"] = ray.util.get_node_ip_address()
        out["gpu_ids"] = [str(g) for g in ctx.get_accelerator_ids().get("GPU", [])]
        out["resources"] = {k: v for k, v in ctx.get_assigned_resources().items() if k != "CPU"}
    return out


class GuardedRegistry:
    """The worker's server registry (its replica store's servers table): a server recorded in it (the pool
    records each one as it spawns) gets a guard that stops its process group if this worker dies first."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.guarded: set[int] = set()

    def record_server(self, key: str, pgid: int, base_url: str, api_key: str | None, log_path: str | None) -> None:
        from console.cluster.guard import start_guard

        self.store.record_server(key, pgid, base_url, api_key, log_path)
        if pgid not in self.guarded:  # recorded when it spawns and again when it is ready
            self.guarded.add(pgid)
            start_guard(pgid, log_path=self.store.path.parent / "servers" / f"guard.{pgid}.log")

    def forget_server(self, key: str) -> None:
        self.store.forget_server(key)

    def recorded_servers(self) -> list[dict[str, Any]]:
        return list(self.store.recorded_servers())


class WorkerRunner(Runner):
    """The local runner on a replica: it ships every event it applies, takes the decisions the head forwards,
    guards its servers, and leaves the results file to the head."""

    def __init__(self, exp: Any, run_dir: Path, phases: Phases, options: RunOptions, ship: Ship,
                 fetch_decisions: Callable[[], list[dict[str, Any]]], pool: Any = None) -> None:
        super().__init__(exp, run_dir, phases, options, pool=pool)
        self.ship = ship
        self.fetch_decisions = fetch_decisions
        if self.pool is None:
            from console.serve.pool import ServerPool

            self.pool = ServerPool(self.run_dir, run_id=self.run_id, api_key=self.folder.api_key(),
                                   base_dir=exp.base_dir, models_dir=options.models_dir, on_event=self.emit,
                                   registry=GuardedRegistry(self.store))

    def emit(self, event: Event) -> None:
        if not event.run_id:
            event = dataclasses.replace(event, run_id=self.run_id)
        super().emit(event)  # committed in the replica first: what fails here is not shipped
        if event.kind not in NOT_SHIPPED:
            self.ship(event.to_dict())

    def apply_decisions(self) -> None:
        for d in self.fetch_decisions():
            insert_decision(self.store, d)
        super().apply_decisions()

    def consolidate(self) -> None:
        """The head writes the run's results file from its own store."""


def run_group(job: GroupJob, ship: Ship, fetch_decisions: Callable[[], list[dict[str, Any]]],
              phases: Phases | None = None, pool: Any = None) -> dict[str, str]:
    """Run a group's phases here, shipping every event; at the end its cells' files. Returns the cells' states
    as this worker left them. `phases` and `pool` default to the real ones (tests pass stand-ins)."""
    scratch = Path(job.work_dir or tempfile.gettempdir()) / "specdeck-worker" / job.attempt.replace("/", "_") \
        / job.run_id
    (scratch / "servers").mkdir(parents=True, exist_ok=True)
    (scratch / EXPERIMENT_COPY).write_text(job.experiment_text, encoding="utf-8")
    seeder = EventSink(RunFolder(scratch))
    seed_replica(seeder, job.facts)
    seeder.close()
    origin = map_path(job.origin_dir, job.path_map)
    exp = load_frozen(scratch, Path(origin) if origin else None)
    models_dir = map_path(job.models_dir, job.path_map)
    if phases is None:
        from console.run.phases import RealPhases

        phases = RealPhases(models_dir=Path(models_dir) if models_dir else None, base_dir=exp.base_dir,
                            offline=job.offline, experiment=str(exp.path))
    opts = RunOptions(until=job.until, cells=",".join(job.cell_ids), wait_for_approval=False,  # type: ignore[arg-type]
                      approval_window_s=job.approval_window_s, poll_s=job.poll_s,
                      models_dir=Path(models_dir) if models_dir else None)
    runner = WorkerRunner(exp, scratch, phases, opts, ship, fetch_decisions, pool)
    here = {**where_am_i(), "attempt": job.attempt}
    for cell_id in job.cell_ids:
        runner.emit(ResultRecorded(cell_id=cell_id, doc=PLACEMENT_DOC, parts={"where": here}))
    slots = ", ".join(f"{k} {v:g}" for k, v in here.get("resources", {}).items()) or "no GPU"
    runner.emit(PhaseProgress(phase="placement",  # the run's log, not a cell's progress
                              detail=f"{job.attempt} ({', '.join(job.cell_ids)}) on {here['host']} "
                                     f"({here.get('node_ip', 'local')}, {slots})"))
    states = runner.run()  # a worker that dies ships no files: its logs stay on its node
    ship(pack(scratch, job.cell_ids))
    runner.store.close()
    return states
