"""A server's guard: stops a server's process group when the process that started it dies.

A worker that crashes (an OOM kill, SIGKILL, a segfault) runs no cleanup, and the vLLM server it started sits in
its own session (specdeck stops a server by its process group), out of reach of Ray's own cleanup: the raylet of
ray 2.60.0 kills each worker's process group when the worker exits (its log: "Per-worker process group cleanup is
ENABLED, subreaper is DISABLED"), a group a `setsid` server has left; the subreaper alternative is off by default,
deprecated ("Subreaper is deprecated and will be removed in a future release", `ray/core/src/ray/raylet/raylet`)
and ignored while the group cleanup is on. So whoever starts a server on a worker also starts this guard, in a
session of its own: it polls the owner and, when the owner is gone, stops the server's group (SIGTERM, grace,
SIGKILL) with the same `stop_group` the local runner uses; when the group ends first, the guard just exits.

    python -m console.cluster.guard --owner PID --owner-start CREATE_TIME --pgid PGID [--grace 30]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import psutil


def process_start(pid: int) -> float | None:
    """The process's start time (psutil's create_time), None when it does not exist or is a zombie."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc.create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def owner_alive(pid: int, started: float) -> bool:
    """The same process still runs: the pid exists, is not a zombie, and was started when the owner was (a reused
    pid is another process)."""
    now = process_start(pid)
    return now is not None and abs(now - started) < 0.05


def watch(owner: int, owner_start: float, pgid: int, grace_s: float = 30.0, poll_s: float = 0.5) -> str:
    """Block until the group ends (→ "group ended") or the owner dies (→ the group is stopped; the outcome)."""
    from console.serve.server import group_members, stop_group

    while True:
        if not group_members(pgid):
            return "group ended"
        if not owner_alive(owner, owner_start):
            report = stop_group(pgid, grace_s=grace_s)
            survivors = f"; survivors: {', '.join(report.survivors)}" if report.survivors else ""
            return f"owner {owner} died: stopped group {pgid} with {report.signal_used}{survivors}"
        time.sleep(poll_s)


def start_guard(pgid: int, owner: int | None = None, grace_s: float = 30.0,
                log_path: str | os.PathLike[str] | None = None) -> subprocess.Popen[bytes]:
    """Start a guard for process group `pgid`, owned by `owner` (default: this process), in its own session so
    that the owner's death (and whatever cleans up the owner's group) does not take it along."""
    owner = os.getpid() if owner is None else owner
    started = process_start(owner)
    if started is None:
        raise ProcessLookupError(f"owner {owner} is not running")
    argv = [sys.executable, "-m", "console.cluster.guard", "--owner", str(owner), "--owner-start", repr(started),
            "--pgid", str(pgid), "--grace", str(grace_s)]
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 - handed to the child
    try:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, env={**os.environ, "PYTHONPATH": _import_root()})
    finally:
        if log_path:
            out.close()  # type: ignore[union-attr]


def _import_root() -> str:
    """PYTHONPATH that lets the child import this very `console` package (an editable or a worktree checkout)."""
    import console

    root = os.path.dirname(os.path.dirname(os.path.abspath(console.__file__)))
    rest = os.environ.get("PYTHONPATH")
    return f"{root}{os.pathsep}{rest}" if rest else root


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m console.cluster.guard", description=__doc__.split("\n\n")[0])
    p.add_argument("--owner", type=int, required=True, help="pid of the process that started the server")
    p.add_argument("--owner-start", type=float, required=True, help="its start time (psutil create_time)")
    p.add_argument("--pgid", type=int, required=True, help="the server's process group")
    p.add_argument("--grace", type=float, default=30.0, help="seconds between SIGTERM and SIGKILL (default 30)")
    p.add_argument("--poll", type=float, default=0.5, help="seconds between checks (default 0.5)")
    args = p.parse_args(argv)
    print(watch(args.owner, args.owner_start, args.pgid, args.grace, args.poll), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
