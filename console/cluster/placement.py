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
  run as a new task on a box of the device type the group was measured on (one more server start).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
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
    """What the executor submits: a group, the kind of work, and the device type its box must have."""

    group: GroupRequest
    kind: TaskKind
    accelerator: str | None

    @property
    def gpus(self) -> int:
        return self.group.gpus


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


def order_key(group: GroupRequest) -> tuple[float, int, bool, str]:
    """Longest first: estimated GPU-hours, then GPUs; baselines first among equals; then the label."""
    return (-(group.gpu_hours or 0.0), -group.gpus, not group.baseline, group.label)


def order_groups(groups: Iterable[GroupRequest]) -> list[GroupRequest]:
    return sorted(groups, key=order_key)


def best_fit(task: Task, boxes: Sequence[Box], free: dict[str, int], wanted: str | None) -> Box | None:
    """The box of the wanted type with room for the task and the fewest GPUs left over (ties: by name)."""
    fits = [b for b in boxes if (wanted is None or b.accelerator == wanted) and free[b.name] >= task.gpus]
    return min(fits, key=lambda b: (free[b.name] - task.gpus, b.name)) if fits else None


class Placement:
    """The queue, the boxes' free GPUs, the approval holds and each model's device type; see the module
    docstring for the rules. One task per group at a time."""

    def __init__(self, boxes: Sequence[Box], groups: Sequence[GroupRequest], *,
                 approval_window_s: float = 1800.0, follow_baseline: bool = True) -> None:
        self.boxes = sorted(boxes, key=lambda b: b.name)
        self.window = approval_window_s
        self.follow_baseline = follow_baseline
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
            self.running[task.group.key] = placed
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

    def decided(self, group: GroupRequest, approved: bool, now: float) -> Outcome:
        """The operator's decision reached the head. In the window: continue on the held box (or release it on a
        rejection). Late: a rejection drops the group; an approval queues the full run on the same device type."""
        hold = self.holds.pop(group.key, None)
        if hold is not None and now <= hold.until:
            if approved:
                return "continue"
            self._release(group.key)
            return "released"
        if hold is not None:
            self._release(group.key)
        if not approved:
            return "dropped"
        self.queue.append(Task(group, TaskKind.FULL, self.measured_on.get(group.key)))
        self.queue.sort(key=lambda t: order_key(t.group))
        return "queued"

    def finished(self, key: str) -> None:
        """The group's task ended (done, failed with its typed reason, or rejected): its box is free."""
        self.holds.pop(key, None)
        self._release(key)
