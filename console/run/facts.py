"""The SQL that records a run's facts, on a connection inside the caller's transaction.

Only two modules call these: `run/sink.py` (`EventSink`, the run's one write path: an event and what it
changes commit together) and `run/store.py` (its direct-write helpers, for tests that set up a store).
`tests/unit/test_one_write_path.py` fails if anything else in the code does.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from console.run.states import CellState, check_transition


def set_meta(c: sqlite3.Connection, key: str, value: Any) -> None:
    c.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))


def add_cells(c: sqlite3.Connection, cells: list[tuple[str, str, dict[str, Any]]], ts: float) -> None:
    """Register cells (id, serving key, info) as planned; cells already known keep their state and place."""
    for pos, (cell_id, key, info) in enumerate(cells):
        c.execute("INSERT OR IGNORE INTO cells VALUES (?, ?, ?, NULL, ?, ?, ?)",
                  (cell_id, pos, CellState.PLANNED.value, key, json.dumps(info), ts))


def set_state(c: sqlite3.Connection, cell_id: str, new: CellState, reason: str | None, ts: float) -> CellState:
    """Move a cell, checking the state machine; returns the old state (the same state: the reason changes)."""
    row = c.execute("SELECT state FROM cells WHERE cell_id = ?", (cell_id,)).fetchone()
    if row is None:
        raise KeyError(f"no cell {cell_id!r} in this run")
    old = CellState(row[0])
    if old != new:
        check_transition(old, new)
    c.execute("UPDATE cells SET state = ?, reason = ?, updated = ? WHERE cell_id = ?", (new.value, reason, ts, cell_id))
    c.execute("INSERT INTO transitions (cell_id, old, new, reason, ts) VALUES (?, ?, ?, ?, ?)",
              (cell_id, old.value, new.value, reason, ts))
    return old


def put_measurement(c: sqlite3.Connection, cell_id: str, kind: str, key: str, data: dict[str, Any],
                    ts: float) -> None:
    c.execute("INSERT OR REPLACE INTO measurements VALUES (?, ?, ?, ?, ?)",
              (cell_id, kind, key, json.dumps(data), ts))


def put_result(c: sqlite3.Connection, cell_id: str, doc: str, key: str, data: Any, ts: float) -> None:
    c.execute("INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?)",
              (cell_id, doc, key, json.dumps(data, default=str), ts))


def put_item(c: sqlite3.Connection, cell_id: str, bench_id: str, stage: str, item_id: str, data: dict[str, Any],
             correct: bool | None, ts: float) -> bool:
    """Commit one scored item; False if it was already there (a resumed run never duplicates)."""
    cur = c.execute("INSERT OR IGNORE INTO items VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (cell_id, bench_id, stage, item_id, json.dumps(data),
                     None if correct is None else int(correct), ts))
    return cur.rowcount == 1


def put_eval_result(c: sqlite3.Connection, cell_id: str, bench_id: str, stage: str, data: dict[str, Any],
                    ts: float) -> None:
    c.execute("INSERT OR REPLACE INTO eval_results VALUES (?, ?, ?, ?, ?)",
              (cell_id, bench_id, stage, json.dumps(data), ts))


def put_verdict(c: sqlite3.Connection, cell_id: str, bench_id: str, passed: bool, data: dict[str, Any],
                ts: float) -> None:
    c.execute("INSERT OR REPLACE INTO verdicts VALUES (?, ?, ?, ?, ?)",
              (cell_id, bench_id, int(passed), json.dumps(data), ts))


def clear_stage(c: sqlite3.Connection, cell_id: str, stage: str) -> None:
    """Forget a stage's items, results and (for smoke) verdicts, so it can be run again after a fix."""
    c.execute("DELETE FROM items WHERE cell_id = ? AND stage = ?", (cell_id, stage))
    c.execute("DELETE FROM eval_results WHERE cell_id = ? AND stage = ?", (cell_id, stage))
    if stage == "smoke":
        c.execute("DELETE FROM verdicts WHERE cell_id = ?", (cell_id,))
