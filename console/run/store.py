"""`runs/<run>/state.sqlite`: the durable store of a run (WAL; every write committed as it happens).

A run's facts (cells, transitions, measurements, results, eval items, verdicts, meta) are written by one
path only: `EventSink.apply` (console/run/sink.py) records each event in the `events` table and applies it to
these tables in one transaction. The TUI and the CLI write only operator decisions (approve, reject, cancel,
re-run smoke, start; console/run/decisions.py), which the runner consumes; the runner keeps its pid and
heartbeat here, the server pool the servers it started. Items are keyed by (cell, benchmark, stage, item id),
so a resumed run never scores an item twice.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from console.errors import SpecdeckError
from console.run import facts
from console.run.liveness import runner_alive
from console.run.operator_decisions import DECISIONS, PAST, Decision, DecisionConflict, OperatorDecisions
from console.run.states import CellState
from console.run.store_errors import (
    READER_TIMEOUT_S,
    ReadOnlyStore,
    StoreBusy,
    StoreError,
    damaged_fix,
    diagnose,
    reads,
)

__all__ = ["DECISIONS", "PAST", "READER_TIMEOUT_S", "CellRow", "Decision", "DecisionConflict", "ReadOnlyStore",
           "RunnerBusy", "Store", "StoreBusy", "StoreError", "damaged_fix", "diagnose"]

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cells (
  cell_id TEXT PRIMARY KEY, position INTEGER NOT NULL, state TEXT NOT NULL, reason TEXT,
  serving_key TEXT, info TEXT NOT NULL DEFAULT '{}', updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS transitions (
  id INTEGER PRIMARY KEY AUTOINCREMENT, cell_id TEXT NOT NULL, old TEXT, new TEXT NOT NULL,
  reason TEXT, ts REAL NOT NULL);
CREATE TABLE IF NOT EXISTS measurements (
  cell_id TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL, data TEXT NOT NULL, ts REAL NOT NULL,
  PRIMARY KEY (cell_id, kind, key));
CREATE TABLE IF NOT EXISTS items (
  cell_id TEXT NOT NULL, bench_id TEXT NOT NULL, stage TEXT NOT NULL, item_id TEXT NOT NULL,
  data TEXT NOT NULL, correct INTEGER, ts REAL NOT NULL,
  PRIMARY KEY (cell_id, bench_id, stage, item_id));
CREATE TABLE IF NOT EXISTS eval_results (
  cell_id TEXT NOT NULL, bench_id TEXT NOT NULL, stage TEXT NOT NULL, data TEXT NOT NULL, ts REAL NOT NULL,
  PRIMARY KEY (cell_id, bench_id, stage));
CREATE TABLE IF NOT EXISTS verdicts (
  cell_id TEXT NOT NULL, bench_id TEXT NOT NULL, passed INTEGER NOT NULL, data TEXT NOT NULL, ts REAL NOT NULL,
  PRIMARY KEY (cell_id, bench_id));
CREATE TABLE IF NOT EXISTS decisions (
  id INTEGER PRIMARY KEY AUTOINCREMENT, cell_id TEXT NOT NULL, bench_id TEXT, action TEXT NOT NULL,
  who TEXT NOT NULL, reason TEXT, estimate TEXT, ts REAL NOT NULL, consumed REAL);
CREATE TABLE IF NOT EXISTS servers (
  serving_key TEXT PRIMARY KEY, pgid INTEGER NOT NULL, base_url TEXT NOT NULL, api_key TEXT,
  log_path TEXT, started REAL NOT NULL);
CREATE TABLE IF NOT EXISTS results (
  cell_id TEXT NOT NULL, doc TEXT NOT NULL, key TEXT NOT NULL, data TEXT NOT NULL, ts REAL NOT NULL,
  PRIMARY KEY (cell_id, doc, key));
CREATE TABLE IF NOT EXISTS events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, eid TEXT NOT NULL UNIQUE, kind TEXT NOT NULL, ts REAL NOT NULL,
  line TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runner (
  id INTEGER PRIMARY KEY CHECK (id = 1), pid INTEGER NOT NULL, host TEXT NOT NULL, started REAL NOT NULL,
  heartbeat REAL NOT NULL);
"""

@dataclass(frozen=True)
class CellRow:
    """A cell as the store knows it."""

    cell_id: str
    state: CellState
    reason: str | None
    serving_key: str | None
    info: dict[str, Any]
    updated: float


class RunnerBusy(SpecdeckError, RuntimeError):
    """Another runner owns this run (one runner per run)."""

    exit_code = 3
    fix = "one runner per run: `specdeck status RUN` shows whether it is alive; stop it or wait"


class Store(OperatorDecisions):
    """One run's state. Safe to share between threads of one process; open one per process.

    `readonly=True` is a reader's store: opened with sqlite's `mode=ro` URI, no PRAGMA, no schema, no insert,
    a 2 s lock wait, so it works on a read-only, archived or another user's run folder, never changes the file
    and never waits 30 s behind a writer. A store that cannot be opened or read raises `StoreError` (the
    file, what is wrong, the fix)."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self.immutable = False
        """A reader of a folder it cannot write, with no writer in it: read as an unchanging file."""
        self._lock = threading.RLock()
        try:
            self._open_reader() if readonly else self._open_writer()
        except StoreError:
            raise
        except (sqlite3.DatabaseError, ValueError) as exc:
            raise diagnose(self.path, exc) from exc

    def _open_reader(self) -> None:
        if not self.path.is_file():  # sqlite would say "unable to open database file" for a folder too
            raise diagnose(self.path, FileNotFoundError(self.path))
        uri = self.path.resolve().as_uri() + "?mode=ro"
        self.db = sqlite3.connect(uri, uri=True, timeout=READER_TIMEOUT_S, check_same_thread=False,
                                  isolation_level=None)
        try:
            version = self.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.DatabaseError as exc:
            # A WAL store whose -shm is gone (no connection open) in a folder this user cannot write: sqlite
            # cannot set up the shared memory ("attempt to write a readonly database"). No writer can be in
            # it either (a writer creates the -shm), so the file is read as immutable.
            if "readonly" not in str(exc) and "unable to open" not in str(exc):
                raise
            if os.access(self.path.parent, os.W_OK) or self.path.with_name(self.path.name + "-shm").exists():
                raise
            self.db.close()
            wal = self.path.with_name(self.path.name + "-wal")
            if wal.exists() and wal.stat().st_size > 0:  # read as immutable, its writes would silently vanish
                raise StoreError(self.path, f"its latest writes are in {wal.name}, which sqlite reads only with "
                                            f"{self.path.name}-shm, absent here in a folder this user cannot write",
                                 "Copy the run folder somewhere you can write (cp -r) and read the copy") from exc
            self.db = sqlite3.connect(uri + "&immutable=1", uri=True, check_same_thread=False, isolation_level=None)
            self.immutable = True
            version = self.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if version and int(json.loads(version[0])) > SCHEMA_VERSION:
            raise StoreError(self.path, f"was written by a newer specdeck (store schema {version[0]}; this one "
                                        f"reads {SCHEMA_VERSION})", "Read it with that version (pip install -U specdeck)")

    def _open_writer(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA busy_timeout=30000")
        for stmt in SCHEMA.strip().split(";"):
            if stmt.strip():
                self.db.execute(stmt)
        self.db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction, committed on exit (IMMEDIATE: writers queue instead of failing)."""
        if self.readonly:
            raise ReadOnlyStore(f"{self.path} is open read-only: open it with Store(path) to write")
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()

    # --- direct writes: for tests that set up a store (the run itself writes through EventSink) --------------
    def set_meta(self, key: str, value: Any) -> None:
        with self.tx() as c:
            facts.set_meta(c, key, value)

    def add_cells(self, cells: list[tuple[str, str, dict[str, Any]]]) -> None:
        with self.tx() as c:
            facts.add_cells(c, cells, time.time())

    def set_state(self, cell_id: str, new: CellState, reason: str | None = None) -> CellState:
        with self.tx() as c:
            return facts.set_state(c, cell_id, new, reason, time.time())

    def put_measurement(self, cell_id: str, kind: str, key: str, data: dict[str, Any]) -> None:
        with self.tx() as c:
            facts.put_measurement(c, cell_id, kind, key, data, time.time())

    def put_item(self, cell_id: str, bench_id: str, stage: str, item_id: str, data: dict[str, Any],
                 correct: bool | None) -> bool:
        with self.tx() as c:
            return facts.put_item(c, cell_id, bench_id, stage, item_id, data, correct, time.time())

    # --- meta ----------------------------------------------------------------------------------------
    @reads("meta")
    def meta(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    # --- cells ---------------------------------------------------------------------------------------
    @reads("cells")
    def cells(self) -> list[CellRow]:
        rows = self.db.execute(
            "SELECT cell_id, state, reason, serving_key, info, updated FROM cells ORDER BY position"
        ).fetchall()
        return [CellRow(r[0], CellState(r[1]), r[2], r[3], json.loads(r[4]), r[5]) for r in rows]

    @reads("cells")
    def state_counts(self) -> dict[str, int]:
        """{state: number of cells} as stored (no state is interpreted: a summary that cannot fail on one)."""
        return dict(self.db.execute("SELECT state, count(*) FROM cells GROUP BY state").fetchall())

    def cell(self, cell_id: str) -> CellRow:
        for row in self.cells():
            if row.cell_id == cell_id:
                return row
        raise KeyError(f"no cell {cell_id!r} in this run")

    @reads("transitions")
    def transitions(self, cell_id: str) -> list[tuple[str | None, str, str | None]]:
        rows = self.db.execute(
            "SELECT old, new, reason FROM transitions WHERE cell_id = ? ORDER BY id", (cell_id,)
        ).fetchall()
        return [tuple(r) for r in rows]  # type: ignore[misc]

    # --- measurements and eval items -------------------------------------------------------------------
    @reads("measurements")
    def measurements(self, cell_id: str | None = None, kind: str | None = None) -> list[tuple[str, str, str, dict]]:
        q = "SELECT cell_id, kind, key, data FROM measurements WHERE 1=1"
        args: list[Any] = []
        if cell_id:
            q += " AND cell_id = ?"
            args.append(cell_id)
        if kind:
            q += " AND kind = ?"
            args.append(kind)
        return [(r[0], r[1], r[2], json.loads(r[3])) for r in self.db.execute(q + " ORDER BY ts", args)]

    @reads("results")
    def documents(self, cell_id: str) -> dict[str, dict[str, Any]]:
        """The cell's result documents ({"speed": {"summary": …, "repeats": …}, "acceptance": {…}, "niah": …}):
        the parts its `ResultRecorded` events carried, and its speed summary (from its `SpeedMeasured`)."""
        docs: dict[str, dict[str, Any]] = {}
        for doc, key, data in self.db.execute("SELECT doc, key, data FROM results WHERE cell_id = ? ORDER BY ts",
                                              (cell_id,)):
            docs.setdefault(doc, {})[key] = json.loads(data)
        for _cell, _kind, _key, data in self.measurements(cell_id, "speed"):  # the newest speed row is the summary
            docs.setdefault("speed", {})["summary"] = data
        return docs

    @reads("items")
    def done_items(self, cell_id: str, bench_id: str, stage: str) -> set[str]:
        rows = self.db.execute(
            "SELECT item_id FROM items WHERE cell_id = ? AND bench_id = ? AND stage = ?",
            (cell_id, bench_id, stage),
        ).fetchall()
        return {r[0] for r in rows}

    @reads("items")
    def items(self, cell_id: str, bench_id: str, stage: str) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT item_id, data, correct FROM items WHERE cell_id = ? AND bench_id = ? AND stage = ? "
            "ORDER BY ts", (cell_id, bench_id, stage)).fetchall()
        return [{"item_id": r[0], **json.loads(r[1]), "correct": None if r[2] is None else bool(r[2])}
                for r in rows]

    @reads("eval_results")
    def eval_results(self) -> list[tuple[str, str, str, dict[str, Any]]]:
        rows = self.db.execute("SELECT cell_id, bench_id, stage, data FROM eval_results ORDER BY ts")
        return [(r[0], r[1], r[2], json.loads(r[3])) for r in rows]

    @reads("verdicts")
    def verdicts(self, cell_id: str | None = None) -> list[tuple[str, str, bool, dict[str, Any]]]:
        q, args = "SELECT cell_id, bench_id, passed, data FROM verdicts", []
        if cell_id:
            q, args = q + " WHERE cell_id = ?", [cell_id]
        return [(r[0], r[1], bool(r[2]), json.loads(r[3])) for r in self.db.execute(q + " ORDER BY ts", args)]

    # --- servers this run started (so a resumed runner can adopt or reap them) -----------------------------
    def record_server(self, key: str, pgid: int, base_url: str, api_key: str | None, log_path: str | None) -> None:
        """Remember a server this run started. Its key is not stored (state.sqlite is as readable as the run
        folder): the runner keeps it in the run's 0600 `api_key` file (RunFolder.api_key)."""
        del api_key
        with self.tx() as c:
            c.execute("INSERT OR REPLACE INTO servers VALUES (?, ?, ?, NULL, ?, ?)",
                      (key, pgid, base_url, log_path, time.time()))

    def forget_server(self, key: str) -> None:
        with self.tx() as c:
            c.execute("DELETE FROM servers WHERE serving_key = ?", (key,))

    @reads("servers")
    def recorded_servers(self) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT serving_key, pgid, base_url, api_key, log_path FROM servers").fetchall()
        return [dict(zip(("serving_key", "pgid", "base_url", "api_key", "log_path"), r, strict=True)) for r in rows]

    # --- the runner lock -----------------------------------------------------------------------------------
    def claim_runner(self, stale_after_s: float = 30.0) -> None:
        """Become this run's only runner, or raise RunnerBusy naming the live one's pid."""
        me, host, now = os.getpid(), socket.gethostname(), time.time()
        with self.tx() as c:
            row = c.execute("SELECT pid, host, heartbeat FROM runner WHERE id = 1").fetchone()
            if row and row[0] != me and runner_alive(dict(zip(("pid", "host", "heartbeat"), row, strict=True)),
                                                     stale_after_s):
                raise RunnerBusy(f"run is owned by runner pid {row[0]} on {row[1]} "
                                 f"(heartbeat {now - row[2]:.0f} s ago): stop it first, or wait")
            c.execute("INSERT OR REPLACE INTO runner VALUES (1, ?, ?, ?, ?)", (me, host, now, now))

    def heartbeat(self) -> None:
        with self.tx() as c:
            c.execute("UPDATE runner SET heartbeat = ? WHERE id = 1 AND pid = ?", (time.time(), os.getpid()))

    def release_runner(self, unless_pending_for: set[str] | None = None) -> bool:
        """Give up the run; with `unless_pending_for`, only if no unconsumed decision names one of those cells
        and no cell was newly selected (`start`).

        Check and release share one transaction, so a decision is either seen here (the runner stays and takes
        it) or recorded after the release (its recorder sees no runner and says `specdeck resume`).
        """
        with self.tx() as c:
            if unless_pending_for is not None:
                pending = c.execute("SELECT cell_id, action FROM decisions WHERE consumed IS NULL").fetchall()
                if any(cell in unless_pending_for or action == "start" for cell, action in pending):
                    return False  # a decision for our cells, or a newly selected cell: stay and take it
            c.execute("DELETE FROM runner WHERE id = 1 AND pid = ?", (os.getpid(),))
        return True

    @reads("runner")
    def runner(self) -> dict[str, Any] | None:
        row = self.db.execute("SELECT pid, host, started, heartbeat FROM runner WHERE id = 1").fetchone()
        return dict(zip(("pid", "host", "started", "heartbeat"), row, strict=True)) if row else None
