"""Is a run's runner alive? One rule for every reader (status, console, picker, the runner lock).

Alive = a fresh heartbeat AND, when the runner is on this host, a process with its pid. The pid check makes a
runner killed with -9 read as dead at once instead of for the 30 s the heartbeat stays fresh; the heartbeat
covers a runner on another host (its pid cannot be checked from here) and a pid reused after a crash long ago.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from typing import Any

STALE_AFTER_S = 30.0
"""A heartbeat older than this is stale (the runner beats every few seconds between steps)."""


def pid_alive(pid: int) -> bool:
    """A process with this pid exists on this host (one we may not signal counts: it exists)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class RunnerLiveness:
    """The runner row of a run's store, judged: who it is, how old its heartbeat is, and whether it is alive."""

    pid: int
    host: str
    started: float
    heartbeat: float
    alive: bool
    age_s: float
    pid_gone: bool
    """On this host and no such process: killed (or crashed) without releasing the run."""

    def describe(self) -> str:
        if self.alive:
            return "alive"
        if self.pid_gone:
            return f"dead (no process {self.pid} on this host)"
        return f"silent for {self.age_s:.0f} s (dead?)"


def judge(row: dict[str, Any] | None, *, now: float | None = None, stale_after_s: float = STALE_AFTER_S,
          my_host: str | None = None) -> RunnerLiveness | None:
    """The one liveness rule applied to a runner row (`Store.runner()`); None when no runner holds the run."""
    if not row:
        return None
    now = time.time() if now is None else now
    host = str(row.get("host") or "")
    pid = int(row.get("pid") or 0)
    beat = float(row.get("heartbeat") or 0.0)
    age = now - beat
    local = host == (my_host or socket.gethostname())
    gone = local and not pid_alive(pid)
    return RunnerLiveness(pid, host, float(row.get("started") or 0.0), beat,
                          alive=age < stale_after_s and not gone, age_s=age, pid_gone=gone)


def runner_alive(row: dict[str, Any] | None, stale_after_s: float = STALE_AFTER_S) -> bool:
    """`judge(row).alive`: a fresh heartbeat, and (on this host) a process with that pid."""
    j = judge(row, stale_after_s=stale_after_s)
    return j is not None and j.alive
