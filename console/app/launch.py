"""Starting runners from the console: the same code as `specdeck run … --detach` (its own session, so
closing the console or losing the SSH connection never stops it).

A runner takes one `--cells` glob; `selection_globs` turns a set of selected cells into as few globs as
match exactly that set (never a cell more), to be run one runner after another.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Protocol


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
    """`console.commands.run.detach`: `python -m console.cli ARGV --run-dir RUN` in a new session."""

    def __init__(self) -> None:
        self.pids: list[int] = []
        self.logs: dict[int, tuple[Path, int]] = {}
        self.failures: list[str] = []

    def launch(self, argv: list[str], run_dir: Path) -> Launched:
        from console.commands.run import detach

        log = run_dir / "runner.log"
        start = log.stat().st_size if log.exists() else 0
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            detach(list(argv), run_dir)
        m = re.search(r"pid (\d+)", out.getvalue())
        pid = int(m.group(1)) if m else None
        if pid is not None:
            self.pids.append(pid)
            self.logs[pid] = (log, start)
        return Launched(pid, tuple(argv), out.getvalue())

    def alive(self) -> bool:
        import os

        import psutil

        alive = False
        for pid in list(self.pids):
            code: int | None = None
            with contextlib.suppress(ChildProcessError, OSError):
                done, status = os.waitpid(pid, os.WNOHANG)  # reap it if it has exited (it is our child)
                if done:
                    code = os.waitstatus_to_exitcode(status)
            try:
                running = code is None and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
            except psutil.NoSuchProcess:
                running = False
            if running:
                alive = True
                continue
            self.pids.remove(pid)
            if code not in (None, 0):
                self.failures.append(self._failure(pid, code))
        return alive

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
