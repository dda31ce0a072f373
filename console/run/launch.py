"""Starting a runner in the background: `python -m console.cli ARGV --run-dir RUN` in its own session, so
closing the terminal (or the console, or an SSH hang-up) never reaches it. Used by `specdeck run --detach`
and by the console; both get back what was started instead of parsing printed text."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DetachedRunner:
    """A runner process started in the background: its pid, its run folder and where its output goes."""

    pid: int
    run_dir: Path
    log_path: Path
    log_offset: int
    """Size of the log before this runner wrote to it (a runner's own output starts here)."""
    argv: tuple[str, ...]
    process: subprocess.Popen[bytes]
    """The child: `process.poll()` reaps it once it has exited (no zombie left behind)."""


def start_detached(argv: list[str], run_dir: Path) -> DetachedRunner:
    """Start `specdeck ARGV --run-dir RUN_DIR` in a new session; stdout and stderr append to runner.log."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    log_path = run_dir / "runner.log"
    offset = log_path.stat().st_size if log_path.exists() else 0
    cmd = [sys.executable, "-m", "console.cli", *argv, "--run-dir", str(run_dir)]
    with log_path.open("ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return DetachedRunner(proc.pid, run_dir, log_path, offset, tuple(argv), proc)
