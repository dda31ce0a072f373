"""What goes wrong opening or reading a run's store: one typed error naming the file, what is wrong and the fix."""

from __future__ import annotations

import functools
import json
import sqlite3
from pathlib import Path
from typing import Any, TypeVar

from console.errors import SpecdeckError

READER_TIMEOUT_S = 2.0
"""How long a reader waits for a lock (WAL readers rarely wait at all); writers wait 30 s."""


class ReadOnlyStore(RuntimeError):
    """A write through a store opened read-only (a reader: status, report, the console's watcher)."""


class StoreError(SpecdeckError):
    """A store that cannot be read: `message` says what is wrong with which file, `fix` what to do."""

    def __init__(self, path: Path, message: str, fix: str) -> None:
        super().__init__(f"{path}: {message}", fix)
        self.path = Path(path)


class StoreBusy(StoreError):
    """A writer held the store longer than a reader waits (a reader never waits the writer's 30 s)."""


def damaged_fix(path: Path) -> str:
    return (f"Restore the run folder from a copy that has {path.name}-wal and {path.name}-shm beside "
            f"{path.name} (a copy without them loses the latest writes), or salvage what is readable: "
            f"`sqlite3 {path} .recover | sqlite3 recovered.sqlite`; the run's results_consolidated.csv, if it "
            "has one, still holds the last results written")


def diagnose(path: Path, exc: BaseException, what: str = "") -> StoreError:
    """The one clear error for a store that failed to open or read (`what`: the table being read)."""
    path = Path(path)
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and "locked" in text:
        return StoreBusy(path, f"the runner is writing and held the store for more than {READER_TIMEOUT_S:.0f} s",
                         "Try again in a moment")
    if path.is_dir():
        return StoreError(path, "is a directory, not a run store",
                          "Move it out of the way; a run folder's state.sqlite is a file written by `specdeck run`")
    if not path.exists():
        return StoreError(path, "does not exist", "Pass a run folder (one with state.sqlite) or a run id")
    if isinstance(exc, json.JSONDecodeError):
        return StoreError(path, f"a value in the {what or 'store'} table is not JSON ({text})", damaged_fix(path))
    if isinstance(exc, ValueError) and "CellState" in text:
        return StoreError(path, f"holds a cell state this specdeck does not know ({text}): a newer specdeck "
                                "wrote it", "Read it with that version (pip install -U specdeck)")
    if path.stat().st_size == 0 or "no such table" in text or "no such column" in text:
        return StoreError(path, f"holds no specdeck store (empty, or another database: {text})", damaged_fix(path))
    return StoreError(path, f"is damaged ({type(exc).__name__}: {text})", damaged_fix(path))


F = TypeVar("F")


def reads(table: str):  # noqa: ANN202 - a decorator factory
    """A read of `table`: sqlite errors, bad JSON and unknown states become one `StoreError` naming the file."""
    def wrap(fn: F) -> F:
        @functools.wraps(fn)  # type: ignore[arg-type]
        def read(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return fn(self, *args, **kwargs)  # type: ignore[operator]
            except StoreError:
                raise
            except (sqlite3.DatabaseError, ValueError) as exc:  # JSONDecodeError and CellState(...) are ValueErrors
                raise diagnose(self.path, exc, table) from exc
        return read  # type: ignore[return-value]
    return wrap
