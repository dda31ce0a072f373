"""Operators' decisions (approve, reject, cancel, re-run smoke, start): the one thing the CLI and the console
write into a run's store. The runner reads and consumes them between steps; they are requests, not facts of
the run, so they do not go through the run's sink (console/run/sink.py).
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from console.run.store_errors import reads

DECISIONS = ("approve", "reject", "cancel", "rerun_smoke", "start")
"""`start`: the operator selected the cell (the console's `s`); the run's runner takes it into its selection."""
PAST = {"approve": "approved", "reject": "rejected", "cancel": "cancelled", "rerun_smoke": "asked to re-run smoke"}


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


class OperatorDecisions:
    """The decisions part of `Store` (a mixin: it needs the store's `db` and `tx`)."""

    db: sqlite3.Connection

    def tx(self) -> AbstractContextManager[sqlite3.Connection]:  # pragma: no cover - Store's
        raise NotImplementedError

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

    @reads("decisions")
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
