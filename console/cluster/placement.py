"""The placement policy of the scale-out: which serving-config group runs on which box, and when.

Pure logic, driven by the caller's clock: the Ray executor (to be built, issue #15) and
`benchmarks/scaleout_sim.py` call the same methods. The rules:

- the unit is a serving-config group (one server start for all its cells); it needs `gpus` GPUs of its
  accelerator type on ONE box;
- the queue is ordered longest first (estimated GPU-hours, then GPUs, baselines before the rest, then label):
  longest-processing-time-first keeps the makespan within 4/3 of the optimum for equal boxes;
- a box is chosen by best fit (the fewest GPUs left over), so a box with a large hole stays free for a
  tensor-parallel group; smaller groups may pass a blocked larger one (backfill);
- a model's groups follow the device type its first group was placed on, so every speed-up has a baseline
  measured on the same kind of device (mixed fleets; an experiment that names a device pins all of them);
- a group awaiting approval holds its box (and its warm server) through the approval window; a decision in
  time continues on that box; at the window's end the box is released, and a late approval queues the full
  run as a new task on a box of the device type the group was measured on (one more server start);
- optionally (`shard_s`), an approved full run longer than `shard_s` is split into item-range shards of the
  same config, each a task on another box of the same device type (one server start each): a group's full run
  is otherwise the one piece of work no number of boxes can shorten.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Literal

from console.cluster.groups import GroupRequest, PlacementError


class TaskKind(str, Enum):
    MEASURE = "measure"
    """Start the server, speed, smoke, then wait for the decision (and, approved in time, the full run)."""
    FULL = "full"
    """A late approval's full run: a fresh server start on a box of the same device type."""


@dataclass(frozen=True)
class Box:
    """A node of the cluster as the policy sees it: its GPUs and their Ray accelerator label."""

    name: str
    gpus: int
    accelerator: str | None = None


@dataclass(frozen=True)
class Task:
    """What the executor submits: a group, the kind of work, the device type its box must have and, for a full
    run split over boxes, which item-range shard of how many."""

    group: GroupRequest
    kind: TaskKind
    accelerator: str | None
    shard: int = 0
    shards: int = 1
    est_s: float | None = None
    """This task's estimated seconds (a shard's share of the full run); None: the group's estimate."""

    @property
    def gpus(self) -> int:
        return self.group.gpus

    @property
    def gpu_hours(self) -> float | None:
        est = self.est_s if self.est_s is not None else self.group.est_s
        return None if est is None else est * max(self.gpus, 1) / 3600

    @property
    def id(self) -> str:
        """The group key for its MEASURE task (which may continue into shard 0), else key/full-i-of-n."""
        if self.kind is TaskKind.MEASURE:
            return self.group.key
        return f"{self.group.key}/full-{self.shard + 1}-of-{self.shards}"

    def items(self, n: int) -> range:
        """The item indices (of `n`, in the benchmark's order) this shard scores: contiguous, disjoint, complete."""
        return range(n * self.shard // self.shards, n * (self.shard + 1) // self.shards)


@dataclass(frozen=True)
class Assignment:
    task: Task
    box: Box


@dataclass(frozen=True)
class Hold:
    """A box kept for a group awaiting its decision, until `until` (the caller's clock)."""

    box: str
    until: float


Outcome = Literal["continue", "released", "queued", "dropped"]


@dataclass(frozen=True)
class Decision:
    """What a decision did: the outcome, the shard (if any) that continues on the held box, the tasks queued."""

    outcome: Outcome
    here: Task | None = None
    queued: tuple[Task, ...] = field(default=())


def even_share_s(groups: Sequence[GroupRequest], boxes: Sequence[Box]) -> float | None:
    """GPU-seconds of all estimated work ÷ the cluster's GPUs: a shard size that lets every box take an even
    share (None when nothing is estimated). Pass it as `shard_s` to split only what would outlast that share."""
    gpus = sum(b.gpus for b in boxes)
    work = sum((g.est_s or 0.0) * max(g.gpus, 1) for g in groups)
    return work / gpus if gpus and work else None


def order_key(group: GroupRequest) -> tuple[float, int, bool, str]:
    """Longest first: estimated GPU-hours, then GPUs; baselines first among equals; then the label."""
    return (-(group.gpu_hours or 0.0), -group.gpus, not group.baseline, group.label)


def order_groups(groups: Iterable[GroupRequest]) -> list[GroupRequest]:
    return sorted(groups, key=order_key)


def task_order_key(task: Task) -> tuple[float, int, bool, str, int]:
    """The queue's order: as `order_key`, with a task's own estimate (a shard is a share of its group)."""
    return (-(task.gpu_hours or 0.0), -task.gpus, not task.group.baseline, task.group.label, task.shard)


def best_fit(task: Task, boxes: Sequence[Box], free: dict[str, int], wanted: str | None) -> Box | None:
    """The box of the wanted type with room for the task and the fewest GPUs left over (ties: by name)."""
    fits = [b for b in boxes if (wanted is None or b.accelerator == wanted) and free[b.name] >= task.gpus]
    return min(fits, key=lambda b: (free[b.name] - task.gpus, b.name)) if fits else None


class Placement:
    """The queue, the boxes' free GPUs, the approval holds and each model's device type; see the module
    docstring for the rules. One task per group at a time."""

    def __init__(self, boxes: Sequence[Box], groups: Sequence[GroupRequest], *,
                 approval_window_s: float = 1800.0, follow_baseline: bool = True,
                 shard_s: float | None = None) -> None:
        self.boxes = sorted(boxes, key=lambda b: b.name)
        self.window = approval_window_s
        self.follow_baseline = follow_baseline
        self.shard_s = shard_s
        self.free = {b.name: b.gpus for b in self.boxes}
        self.queue: list[Task] = [Task(g, TaskKind.MEASURE, g.accelerator) for g in order_groups(groups)]
        self.running: dict[str, Assignment] = {}
        self.holds: dict[str, Hold] = {}
        self.measured_on: dict[str, str | None] = {}
        self.model_device: dict[str, str | None] = {}
        for group in groups:
            self._check_fits(group)

    def _check_fits(self, group: GroupRequest) -> None:
        types = sorted({str(b.accelerator) for b in self.boxes})
        if not any((group.accelerator is None or b.accelerator == group.accelerator) and b.gpus >= group.gpus
                   for b in self.boxes):
            want = f"{group.gpus} GPU(s)" + (f" of type {group.accelerator}" if group.accelerator else "")
            raise PlacementError(
                f"{group.label} needs {want} on one box; the cluster has {len(self.boxes)} box(es) of type(s) "
                f"{', '.join(types) or 'none'} with at most {max((b.gpus for b in self.boxes), default=0)} GPU(s)",
                "add such a node, lower its tensor parallel size, or drop/correct [experiment] device",
            )

    def wanted(self, task: Task) -> str | None:
        """The device type the task's box must have: the task's own, else its model's (follow the baseline)."""
        if task.accelerator is not None or not self.follow_baseline:
            return task.accelerator
        return self.model_device.get(task.group.model)

    def assign(self) -> list[Assignment]:
        """Place every queued task that fits now, in queue order."""
        out: list[Assignment] = []
        for task in list(self.queue):
            box = best_fit(task, self.boxes, self.free, self.wanted(task))
            if box is None:
                continue
            self.queue.remove(task)
            self.free[box.name] -= task.gpus
            placed = Assignment(task, box)
            self.running[task.id] = placed
            if task.kind is TaskKind.MEASURE:
                self.measured_on[task.group.key] = box.accelerator
                self.model_device.setdefault(task.group.model, box.accelerator)
            out.append(placed)
        return out

    def _release(self, key: str) -> None:
        placed = self.running.pop(key, None)
        if placed is not None:
            self.free[placed.box.name] += placed.task.gpus

    def awaiting_approval(self, key: str, now: float) -> float:
        """The group reached awaiting_approval: its box is held until the returned time."""
        until = now + self.window
        self.holds[key] = Hold(self.running[key].box.name, until)
        return until

    def expire_holds(self, now: float) -> list[str]:
        """Release the boxes whose approval window has passed; returns the groups released."""
        gone = [key for key, hold in self.holds.items() if now > hold.until]
        for key in gone:
            del self.holds[key]
            self._release(key)
        return gone

    def shards_for(self, group: GroupRequest, full_s: float | None) -> int:
        """How many item-range shards an approved full run of `full_s` estimated seconds becomes: 1 without
        `shard_s`, else ⌈full_s ÷ shard_s⌉, at most one per box that could take it."""
        if not self.shard_s or not full_s or full_s <= self.shard_s:
            return 1
        wanted = self.measured_on.get(group.key)
        room = sum(1 for b in self.boxes if (wanted is None or b.accelerator == wanted) and b.gpus >= group.gpus)
        return max(1, min(math.ceil(full_s / self.shard_s), room))

    def decided(self, group: GroupRequest, approved: bool, now: float, full_s: float | None = None) -> Decision:
        """The operator's decision reached the head. In the window: continue on the held box (or release it on a
        rejection). Late: a rejection drops the group; an approval queues the full run on the same device type.
        `full_s` (the approval's estimate) decides the shards when `shard_s` is set; shard 0 continues on the
        held box when the decision is in time."""
        hold = self.holds.pop(group.key, None)
        in_time = hold is not None and now <= hold.until
        if not approved:
            self._release(group.key)
            return Decision("released" if in_time else "dropped")
        if hold is not None and not in_time:
            self._release(group.key)
        n = self.shards_for(group, full_s)
        share = full_s / n if full_s else None
        tasks = [Task(group, TaskKind.FULL, self.measured_on.get(group.key), i, n, share) for i in range(n)]
        here = tasks.pop(0) if in_time else None
        self.queue.extend(tasks)
        self.queue.sort(key=task_order_key)
        return Decision("continue" if in_time else "queued", here, tuple(tasks))

    def finished(self, task_id: str) -> None:
        """A task ended (done, or failed with its typed reason): its box is free. A MEASURE task's id is its
        group's key, also when it continued into its first full-run shard."""
        self.holds.pop(task_id, None)
        self._release(task_id)
