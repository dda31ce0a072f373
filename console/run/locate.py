"""Find a run folder from what a person types (kept for callers that want a plain Path).

The rule lives in `console.run.folder` (`find_run`, `list_runs`): these return the folder's path.
"""

from __future__ import annotations

from pathlib import Path

from console.run import folder
from console.run.folder import RunNotFound

__all__ = ["RunNotFound", "find_run", "find_run_or_say"]


def find_run(name: str | Path) -> Path:
    return folder.find_run(name).path


def find_run_or_say(name: str | Path) -> Path | None:
    found = folder.find_run_or_say(name)
    return None if found is None else found.path
