"""Starting runners from the console: the core's `console.run.launch.start_detached`, the same code as
`specdeck run … --detach` (its own session, so closing the console or losing the SSH connection never stops it).

A runner takes one `--cells` glob; `selection_globs` turns a set of selected cells into as few globs as
match exactly that set (never a cell more), to be run one runner after another.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from console.run.launch import DetachedRunner


def _exact(glob: str, selected: set[str], all_ids: Sequence[str]) -> bool:
    return {c for c in all_ids if fnmatchcase(c, glob)} == selected


def fieldwise_glob(ids: Iterable[str]) -> str:
    """`model.precision.technique.context.cN` fields that all ids share stay literal, the others become `*`."""
    split = [i.split(".") for i in ids]
    width = {len(s) for s in split}
    if len(width) != 1:
        return "*"
    return ".".join(parts[0] if len(set(parts)) == 1 else "*" for parts in zip(*split, strict=True))


def selection_globs(selected: Iterable[str], all_ids: Sequence[str]) -> list[str]:
    """Globs that together match exactly `selected` among `all_ids`, fewest first-tried: one glob, then one
    per serving config (model.precision.technique), then one per cell."""
    sel = set(selected) & set(all_ids)
    if not sel:
        return []
    if sel == set(all_ids):
        return ["*"]
    one = fieldwise_glob(sorted(sel))
    if _exact(one, sel, all_ids):
        return [one]
    groups: dict[str, set[str]] = defaultdict(set)
    for cid in sel:
        groups[".".join(cid.split(".")[:3])].add(cid)
    out: list[str] = []
    for key in sorted(groups, key=lambda k: min(all_ids.index(c) for c in groups[k])):
        g = groups[key]
        glob = fieldwise_glob(sorted(g))
        if _exact(glob, g, all_ids):
            out.append(glob)
        else:
            out += sorted(g, key=all_ids.index)
    return out


@dataclass(frozen=True)
class Launched:
    """A runner process started in the background."""

    pid: int | None
    argv: tuple[str, ...]
    output: str


class Launcher(Protocol):
    """Starts a runner for a run folder; the console never owns it (tests substitute an in-process one)."""

    def launch(self, argv: list[str], run_dir: Path) -> Launched: ...

    def alive(self) -> bool:
        """Whether a runner this launcher started is still running."""
        ...

    def take_failures(self) -> list[str]:
        """Runners that died badly since the last call, each with what its output said."""
        ...


class DetachedLauncher:
    """Runners started by `console.run.launch.start_detached` (what `specdeck run --detach` does)."""

    def __init__(self) -> None:
        self.pids: list[int] = []
        self.logs: dict[int, tuple[Path, int]] = {}
        self.failures: list[str] = []
        self._procs: dict[int, DetachedRunner] = {}

    def launch(self, argv: list[str], run_dir: Path) -> Launched:
        from console.run.launch import start_detached

        started = start_detached(list(argv), run_dir)
        self.pids.append(started.pid)
        self.logs[started.pid] = (started.log_path, started.log_offset)
        self._procs[started.pid] = started
        return Launched(started.pid, tuple(argv), f"runner started in the background (pid {started.pid})")

    def running(self) -> list[int]:
        """Pids of the runners this console started that are still running (exited ones are reaped)."""
        out = []
        for pid in list(self.pids):
            code = self._procs[pid].process.poll() if pid in self._procs else 0
            if code is None:
                out.append(pid)
                continue
            self.pids.remove(pid)
            self._procs.pop(pid, None)
            if code != 0:
                self.failures.append(self._failure(pid, code))
        return out

    def alive(self) -> bool:
        return bool(self.running())

    def _failure(self, pid: int, code: int) -> str:
        log, start = self.logs.pop(pid, (None, 0))
        tail = ""
        if log is not None and log.exists():
            with log.open("rb") as f:
                f.seek(start)
                lines = f.read().decode("utf-8", errors="replace").strip().splitlines()
            tail = " | ".join(lines[-3:])
        return f"runner pid {pid} exited with code {code}: {tail or 'no output'} (full output: {log})"

    def take_failures(self) -> list[str]:
        out, self.failures = self.failures, []
        return out
