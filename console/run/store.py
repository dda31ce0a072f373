"""`runs/<run>/state.sqlite`: the durable store of a run (WAL; every write committed as it happens).

The runner writes cells, transitions, measurements, eval items, verdicts; the TUI and the CLI write only
operator decisions (approve, reject, cancel, re-run smoke), which the runner consumes. Items are keyed by
(cell, benchmark, stage, item id), so a resumed run never scores an item twice.
"""

from __future__ import annotations

import functools
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
from typing import Any, TypeVar

from console.errors import SpecdeckError
from console.run.liveness import runner_alive
from console.run.states import CellState, check_transition

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
CREATE TABLE IF NOT EXISTS runner (
  id INTEGER PRIMARY KEY CHECK (id = 1), pid INTEGER NOT NULL, host TEXT NOT NULL, started REAL NOT NULL,
  heartbeat REAL NOT NULL);
"""

DECISIONS = ("approve", "reject", "cancel", "rerun_smoke", "start")
"""`start`: the operator selected the cell (the console's `s`); the run's runner takes it into its selection."""
PAST = {"approve": "approved", "reject": "rejected", "cancel": "cancelled", "rerun_smoke": "asked to re-run smoke"}


@dataclass(frozen=True)
class CellRow:
    """A cell as the store knows it."""

    cell_id: str
    state: CellState
    reason: str | None
    serving_key: str | None
    info: dict[str, Any]
    updated: float


@dataclass(frozen=True)
class Decision:
    """An operator's decision, waiting for the runner (consumed = None) or taken."""

    id: int
    cell_id: str
    bench_id: str | None
    action: str
    who: str
    reason: str | None
    estimate: dict[str, Any] | None
    ts: float
    consumed: float | None


class DecisionConflict(ValueError):
    """A decision that repeats or contradicts one already recorded: nothing was recorded; the message names
    the earlier decision (who, when) and what became of it. `repeat` is True when it asked for the same thing."""

    def __init__(self, message: str, earlier: Decision, repeat: bool) -> None:
        super().__init__(message)
        self.earlier = earlier
        self.repeat = repeat


class RunnerBusy(SpecdeckError, RuntimeError):
    """Another runner owns this run (one runner per run)."""

    exit_code = 3
    fix = "one runner per run: `specdeck status RUN` shows whether it is alive; stop it or wait"


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


def _reads(table: str):  # noqa: ANN202 - a decorator factory
    """A read of `table`: sqlite errors, bad JSON and unknown states become one `StoreError` naming the file."""
    def wrap(fn: F) -> F:
        @functools.wraps(fn)  # type: ignore[arg-type]
        def read(self: Store, *args: Any, **kwargs: Any) -> Any:
            try:
                return fn(self, *args, **kwargs)  # type: ignore[operator]
            except StoreError:
                raise
            except (sqlite3.DatabaseError, ValueError) as exc:  # JSONDecodeError and CellState(...) are ValueErrors
                raise diagnose(self.path, exc, table) from exc
        return read  # type: ignore[return-value]
    return wrap


class Store:
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

    # --- meta ----------------------------------------------------------------------------------------
    def set_meta(self, key: str, value: Any) -> None:
        with self.tx() as c:
            c.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    @_reads("meta")
    def meta(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    # --- cells ---------------------------------------------------------------------------------------
    def add_cells(self, cells: list[tuple[str, str, dict[str, Any]]]) -> None:
        """Register cells (id, serving key, info) as planned; cells already known keep their state."""
        now = time.time()
        with self.tx() as c:
            for pos, (cell_id, key, info) in enumerate(cells):
                c.execute(
                    "INSERT OR IGNORE INTO cells VALUES (?, ?, ?, NULL, ?, ?, ?)",
                    (cell_id, pos, CellState.PLANNED.value, key, json.dumps(info), now),
                )

    @_reads("cells")
    def cells(self) -> list[CellRow]:
        rows = self.db.execute(
            "SELECT cell_id, state, reason, serving_key, info, updated FROM cells ORDER BY position"
        ).fetchall()
        return [CellRow(r[0], CellState(r[1]), r[2], r[3], json.loads(r[4]), r[5]) for r in rows]

    @_reads("cells")
    def state_counts(self) -> dict[str, int]:
        """{state: number of cells} as stored (no state is interpreted: a summary that cannot fail on one)."""
        return dict(self.db.execute("SELECT state, count(*) FROM cells GROUP BY state").fetchall())

    def cell(self, cell_id: str) -> CellRow:
        for row in self.cells():
            if row.cell_id == cell_id:
                return row
        raise KeyError(f"no cell {cell_id!r} in this run")

    def set_state(self, cell_id: str, new: CellState, reason: str | None = None) -> CellState:
        """Move a cell, checking the state machine; returns the old state."""
        with self.tx() as c:
            row = c.execute("SELECT state FROM cells WHERE cell_id = ?", (cell_id,)).fetchone()
            if row is None:
                raise KeyError(f"no cell {cell_id!r} in this run")
            old = CellState(row[0])
            if old != new:
                check_transition(old, new)
            now = time.time()
            c.execute("UPDATE cells SET state = ?, reason = ?, updated = ? WHERE cell_id = ?",
                      (new.value, reason, now, cell_id))
            c.execute("INSERT INTO transitions (cell_id, old, new, reason, ts) VALUES (?, ?, ?, ?, ?)",
                      (cell_id, old.value, new.value, reason, now))
        return old

    @_reads("transitions")
    def transitions(self, cell_id: str) -> list[tuple[str | None, str, str | None]]:
        rows = self.db.execute(
            "SELECT old, new, reason FROM transitions WHERE cell_id = ? ORDER BY id", (cell_id,)
        ).fetchall()
        return [tuple(r) for r in rows]  # type: ignore[misc]

    # --- measurements and eval items -------------------------------------------------------------------
    def put_measurement(self, cell_id: str, kind: str, key: str, data: dict[str, Any]) -> None:
        with self.tx() as c:
            c.execute("INSERT OR REPLACE INTO measurements VALUES (?, ?, ?, ?, ?)",
                      (cell_id, kind, key, json.dumps(data), time.time()))

    @_reads("measurements")
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

    def put_item(self, cell_id: str, bench_id: str, stage: str, item_id: str, data: dict[str, Any],
                 correct: bool | None) -> bool:
        """Commit one scored item; False if it was already there (a resumed run never duplicates)."""
        with self.tx() as c:
            cur = c.execute(
                "INSERT OR IGNORE INTO items VALUES (?, ?, ?, ?, ?, ?, ?)",
                (cell_id, bench_id, stage, item_id, json.dumps(data),
                 None if correct is None else int(correct), time.time()),
            )
            return cur.rowcount == 1

    @_reads("items")
    def done_items(self, cell_id: str, bench_id: str, stage: str) -> set[str]:
        rows = self.db.execute(
            "SELECT item_id FROM items WHERE cell_id = ? AND bench_id = ? AND stage = ?",
            (cell_id, bench_id, stage),
        ).fetchall()
        return {r[0] for r in rows}

    @_reads("items")
    def items(self, cell_id: str, bench_id: str, stage: str) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT item_id, data, correct FROM items WHERE cell_id = ? AND bench_id = ? AND stage = ? "
            "ORDER BY ts", (cell_id, bench_id, stage)).fetchall()
        return [{"item_id": r[0], **json.loads(r[1]), "correct": None if r[2] is None else bool(r[2])}
                for r in rows]

    def clear_stage(self, cell_id: str, stage: str) -> None:
        """Forget a stage's items, results and (for smoke) verdicts, so it can be run again after a fix."""
        with self.tx() as c:
            c.execute("DELETE FROM items WHERE cell_id = ? AND stage = ?", (cell_id, stage))
            c.execute("DELETE FROM eval_results WHERE cell_id = ? AND stage = ?", (cell_id, stage))
            if stage == "smoke":
                c.execute("DELETE FROM verdicts WHERE cell_id = ?", (cell_id,))

    def put_eval_result(self, cell_id: str, bench_id: str, stage: str, data: dict[str, Any]) -> None:
        with self.tx() as c:
            c.execute("INSERT OR REPLACE INTO eval_results VALUES (?, ?, ?, ?, ?)",
                      (cell_id, bench_id, stage, json.dumps(data), time.time()))

    @_reads("eval_results")
    def eval_results(self) -> list[tuple[str, str, str, dict[str, Any]]]:
        rows = self.db.execute("SELECT cell_id, bench_id, stage, data FROM eval_results ORDER BY ts")
        return [(r[0], r[1], r[2], json.loads(r[3])) for r in rows]

    def put_verdict(self, cell_id: str, bench_id: str, passed: bool, data: dict[str, Any]) -> None:
        with self.tx() as c:
            c.execute("INSERT OR REPLACE INTO verdicts VALUES (?, ?, ?, ?, ?)",
                      (cell_id, bench_id, int(passed), json.dumps(data), time.time()))

    @_reads("verdicts")
    def verdicts(self, cell_id: str | None = None) -> list[tuple[str, str, bool, dict[str, Any]]]:
        q, args = "SELECT cell_id, bench_id, passed, data FROM verdicts", []
        if cell_id:
            q, args = q + " WHERE cell_id = ?", [cell_id]
        return [(r[0], r[1], bool(r[2]), json.loads(r[3])) for r in self.db.execute(q + " ORDER BY ts", args)]

    # --- operator decisions ------------------------------------------------------------------------------
    def decide(self, cell_id: str, action: str, who: str, *, bench_id: str | None = None,
               reason: str | None = None, estimate: dict[str, Any] | None = None) -> int:
        """Record a decision, or raise `DecisionConflict` if it repeats or contradicts one already recorded.

        The check and the insert share one IMMEDIATE transaction, so operators deciding at the same moment
        (two consoles, a console and the CLI, five parallel `approve`s) get exactly one row between them.
        A repeated `start` is not an error: it returns the pending one's id."""
        if action not in DECISIONS:
            raise ValueError(f"action must be one of {DECISIONS} (got {action!r})")
        with self.tx() as c:
            earlier = self._decisions(c, cell_id)
            if action == "start":
                pending = [d for d in earlier if d.action == "start" and d.consumed is None]
                if pending:
                    return pending[0].id
            else:
                self._refuse_conflict(c, cell_id, action, bench_id, earlier)
            cur = c.execute(
                "INSERT INTO decisions (cell_id, bench_id, action, who, reason, estimate, ts) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (cell_id, bench_id, action, who, reason, json.dumps(estimate) if estimate else None, time.time()),
            )
            return int(cur.lastrowid or 0)

    def conflict(self, cell_id: str, action: str, bench_id: str | None = None) -> DecisionConflict | None:
        """What `decide` would refuse, without recording anything (to answer before asking for a confirmation)."""
        try:
            self._refuse_conflict(self.db, cell_id, action, bench_id, self._decisions(self.db, cell_id))
        except DecisionConflict as exc:
            return exc
        return None

    def _decisions(self, c: sqlite3.Connection, cell_id: str) -> list[Decision]:
        rows = c.execute("SELECT id, cell_id, bench_id, action, who, reason, estimate, ts, consumed FROM decisions "
                         "WHERE cell_id = ? ORDER BY id", (cell_id,)).fetchall()
        return [Decision(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]) if r[6] else None, r[7], r[8])
                for r in rows]

    def _refuse_conflict(self, c: sqlite3.Connection, cell_id: str, action: str, bench_id: str | None,
                         earlier: list[Decision]) -> None:
        row = c.execute("SELECT state FROM cells WHERE cell_id = ?", (cell_id,)).fetchone()
        state = row[0] if row else None
        meta = c.execute("SELECT value FROM meta WHERE key = 'benchmarks'").fetchone()
        every = {b["id"] for b in json.loads(meta[0])} if meta else set()
        for d in earlier:
            if d.action == "cancel":  # final: nothing is decided on a cancelled cell
                raise DecisionConflict(_answer(d, cell_id, state), d, action == "cancel")
            if action == "rerun_smoke" and d.action == "rerun_smoke" and d.consumed is None:
                raise DecisionConflict(_answer(d, cell_id, state), d, True)
        if action not in ("approve", "reject"):
            return
        decided: dict[str, Decision] = {}
        for d in earlier:
            if d.action in ("approve", "reject"):
                for b in ([d.bench_id] if d.bench_id else sorted(every) or ["*"]):
                    decided.setdefault(b, d)
        if bench_id is not None:
            hit = decided.get(bench_id) or decided.get("*")
        else:  # every benchmark not decided yet; a conflict only when none is left
            left = (every - decided.keys()) if every else ({"*"} - decided.keys())
            hit = None if left else (list(decided.values())[-1] if decided else None)
        if hit is not None:
            raise DecisionConflict(_answer(hit, cell_id, state), hit, hit.action == action)

    @_reads("decisions")
    def decisions(self, pending_only: bool = False) -> list[Decision]:
        q = "SELECT id, cell_id, bench_id, action, who, reason, estimate, ts, consumed FROM decisions"
        if pending_only:
            q += " WHERE consumed IS NULL"
        rows = self.db.execute(q + " ORDER BY id").fetchall()
        return [Decision(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]) if r[6] else None, r[7], r[8])
                for r in rows]

    def consume(self, decision_id: int) -> None:
        with self.tx() as c:
            c.execute("UPDATE decisions SET consumed = ? WHERE id = ?", (time.time(), decision_id))

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

    @_reads("servers")
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

    @_reads("runner")
    def runner(self) -> dict[str, Any] | None:
        row = self.db.execute("SELECT pid, host, started, heartbeat FROM runner WHERE id = 1").fetchone()
        return dict(zip(("pid", "host", "started", "heartbeat"), row, strict=True)) if row else None


def _answer(d: Decision, cell_id: str, state: str | None) -> str:
    """'already approved by ana at 2026-12-01 14:03:12; the full run is queued' — what the earlier decision did."""
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(d.ts))
    bench = f" ({d.bench_id})" if d.bench_id else ""
    head = f"{cell_id}{bench}: already {PAST.get(d.action, d.action)} by {d.who} at {when}"
    if d.action == "approve":
        then = ("the full run is running" if state == "full" else "the full run is done" if state == "done"
                else "the full run is queued: the runner takes it between steps" if d.consumed is None
                else f"the full run was taken (the cell is {state})")
    elif d.action == "reject":
        then = "the rejection is queued" if d.consumed is None else f"the cell is {state}"
    elif d.action == "cancel":
        then = "the cancel is queued" if d.consumed is None else f"the cell is {state}"
    else:
        then = "the re-run is queued"
    return f"{head}; {then}"
