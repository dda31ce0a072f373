"""A run's one write path: `EventSink.apply(event)` records an event and every fact it carries.

One transaction of the run's store (`state.sqlite`) inserts the event into the `events` table — which gives it
its sequence number `seq` and refuses an `eid` seen before — and applies it to the tables it changes (a
`CellStateChanged` moves the cell, an `EvalItemDone` commits the item, a `SpeedMeasured` stores the speed
summary …). After the commit, the event is appended to `events.jsonl` as one line carrying its `seq`.

The order is what makes a crash harmless:
- killed before the commit: nothing happened (no row, no line); the runner redoes the step as on any resume;
- killed between the commit and the line: the store has the event, the file lacks it. Opening a sink catches
  `events.jsonl` up from the `events` table (every seq after the file's last one), so the line appears once;
- an event applied twice (a worker on another box that ships it again, a replay) is ignored: its `eid` is
  already in the `events` table, so neither a table nor the file changes.

So the store is the truth and `events.jsonl` is its projection, complete after any open. An event made on
another box, shipped as its dict, is applied by `EventSink.apply(Event.from_dict(d))` exactly as a local emit
(tests/unit/test_event_sink.py runs a phase, ships its events as dicts into a fresh run folder and compares).
Only this module (and the store's own direct-write helpers, for tests) calls `console/run/facts.py`.
A result document an event changes is also exported, after the commit, to `cells/<cell>/<doc>.json` for
people: wherever the events are applied, the exports follow; nothing reads them back.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from console.events import (
    ApprovalDecided,
    CellsRegistered,
    CellStateChanged,
    EvalFinished,
    EvalItemDone,
    Event,
    PhaseFailed,
    ResultRecorded,
    RunFrozen,
    RunStarted,
    SmokeVerdictEvent,
    SpeedMeasured,
    StageCleared,
)
from console.run import facts
from console.run.folder import RunFolder
from console.run.states import CellState
from console.run.store import Store

Apply = Callable[[sqlite3.Connection, Any], None]


def _num(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


def speed_summary(e: SpeedMeasured) -> dict[str, Any]:
    """The speed summary a cell's `SpeedMeasured` (scope `point`) records: what the runner's estimate, status,
    the console and consolidation read (`tok_s` is the median; None when no request succeeded)."""
    mal = _num(e.mean_acceptance_length)
    return {"tok_s": _num(e.tok_s_median), "tok_s_min": _num(e.tok_s_min), "tok_s_max": _num(e.tok_s_max),
            "repeats": e.repeats, "requests": e.requests, "failures": e.failures,
            "context_tokens": e.context_tokens, "concurrency": e.concurrency, "max_tokens": e.max_tokens,
            "mean_acceptance_length": mal, "acceptance_length": mal,
            "server_log_gen_tok_s": _num(e.server_log_gen_tok_s)}


def _cell(e: Event) -> str:
    if not e.cell_id:
        raise ValueError(f"a {type(e).__name__} event without a cell_id cannot be applied")
    return e.cell_id


def _run_frozen(c: sqlite3.Connection, e: RunFrozen) -> None:
    for key, value in (("experiment", e.experiment), ("origin_dir", e.origin_dir),
                       ("benchmarks", list(e.benchmarks)), ("vllm_version", e.vllm_version),
                       ("device_name", e.device_name)):
        facts.set_meta(c, key, value)


def _run_started(c: sqlite3.Connection, e: RunStarted) -> None:
    if e.until:
        facts.set_meta(c, "until", e.until)
    facts.set_meta(c, "caveats", list(e.caveats))


def _cells_registered(c: sqlite3.Connection, e: CellsRegistered) -> None:
    facts.add_cells(c, [(str(d["cell_id"]), str(d.get("serving_key") or ""), dict(d.get("info") or {}))
                        for d in e.cells], e.ts)


def _state_changed(c: sqlite3.Connection, e: CellStateChanged) -> None:
    facts.set_state(c, _cell(e), CellState(e.new), e.reason, e.ts)


def _stage_cleared(c: sqlite3.Connection, e: StageCleared) -> None:
    facts.clear_stage(c, _cell(e), e.stage)


def _item_done(c: sqlite3.Connection, e: EvalItemDone) -> None:
    data = {"item_id": e.item_id, "raw_output": e.raw_output, "extracted": e.extracted, "correct": e.correct,
            "target": e.target, "finish_reason": e.finish_reason, "output_tokens": e.output_tokens}
    facts.put_item(c, _cell(e), e.bench_id, e.stage, e.item_id, data, e.correct, e.ts)


def _eval_finished(c: sqlite3.Connection, e: EvalFinished) -> None:
    facts.put_eval_result(c, _cell(e), e.bench_id, e.stage,
                          {**e.result, "wall_s": e.wall_s, "resumed_with": e.resumed_with}, e.ts)


def _verdict(c: sqlite3.Connection, e: SmokeVerdictEvent) -> None:
    data = {"benchmark": e.bench_id, "passed": e.passed, "reasons": list(e.reasons), "score": e.score,
            "threshold": e.threshold, "n": e.n, "estimate": e.estimate or None, "notes": list(e.notes)}
    facts.put_verdict(c, _cell(e), e.bench_id, e.passed, data, e.ts)


def _approval(c: sqlite3.Connection, e: ApprovalDecided) -> None:
    if e.approved:  # the latest approval, for readers of runs made before decisions were per benchmark
        facts.set_meta(c, f"approved:{_cell(e)}", {"bench": e.bench_id, "who": e.who, "ts": e.decided_at,
                                                   "estimate": e.estimate or None})


def _speed(c: sqlite3.Connection, e: SpeedMeasured) -> None:
    if e.scope == "point":  # a category's speed is one row of the `categories` result (ResultRecorded)
        facts.put_measurement(c, _cell(e), "speed", "summary", speed_summary(e), e.ts)


def _result(c: sqlite3.Connection, e: ResultRecorded) -> None:
    for key, value in e.parts.items():
        facts.put_result(c, _cell(e), e.doc, key, value, e.ts)


def _phase_failed(c: sqlite3.Connection, e: PhaseFailed) -> None:
    facts.put_result(c, _cell(e), "failures", e.phase, {"reason": e.reason, "fix": e.fix}, e.ts)


APPLY: dict[type[Event], Apply] = {
    RunFrozen: _run_frozen, RunStarted: _run_started, CellsRegistered: _cells_registered,
    CellStateChanged: _state_changed, StageCleared: _stage_cleared, EvalItemDone: _item_done,
    EvalFinished: _eval_finished, SmokeVerdictEvent: _verdict, ApprovalDecided: _approval,
    SpeedMeasured: _speed, ResultRecorded: _result, PhaseFailed: _phase_failed,
}
"""What each event changes in the store's tables; every other event (progress, server life, live engine
statistics, AcceptanceMeasured's per-interval figures: the acceptance a cell keeps travels in
ResultRecorded("acceptance") …) is recorded in `events` and the log only."""


EXPORTED_DOCS = ("speed", "acceptance", "determinism", "niah", "latency", "failures")
"""The result documents exported as `cells/<cell>/<doc>.json` (the bench phases' results; a document of the
run's own bookkeeping, such as a cluster group's `placement`, stays in the store)."""


def exported_doc(event: Event) -> str | None:
    """The exported result document an event changes, if any."""
    match event:
        case ResultRecorded() if event.doc in EXPORTED_DOCS:
            return event.doc
        case PhaseFailed():
            return "failures"
        case SpeedMeasured() if event.scope == "point":
            return "speed"
    return None


class EventSink:
    """The one writer of a run's facts: `apply(event)` commits the event and what it changes to the store,
    then appends it to `events.jsonl` (module docstring: the order, and why a crash loses nothing).

    One sink per run folder and process; safe to share between the threads of that process."""

    def __init__(self, folder: RunFolder | Path | str, store: Store | None = None, *, export: bool = True) -> None:
        """`export`: also write each changed result document to `cells/<cell>/<doc>.json` (for people)."""
        self.folder = RunFolder(folder)
        self.store = store if store is not None else self.folder.open_store()
        self.log_path = self.folder.events_path
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.export = export
        self._lock = threading.Lock()
        self._logged = 0
        """The last seq known to be in events.jsonl."""
        with self._lock:
            self._logged = _last_logged_seq(self.log_path)
            self._catch_up()

    def apply(self, event: Event) -> int | None:
        """Record `event` and apply it; its seq, or None if it was applied before (same `eid`). A fact the
        store refuses (a transition the state machine forbids) raises, and nothing is recorded."""
        line = event.to_dict()
        eid = str(line.get("eid") or event.eid)
        with self._lock:
            with self.store.tx() as c:
                if c.execute("SELECT 1 FROM events WHERE eid = ?", (eid,)).fetchone():
                    return None  # applied before: a replay or a retried shipment
                cur = c.execute("INSERT INTO events (eid, kind, ts, line) VALUES (?, ?, ?, ?)",
                                (eid, str(line.get("kind")), event.ts,
                                 json.dumps(line, default=str, separators=(",", ":"))))
                seq = int(cur.lastrowid or 0)
                handler = APPLY.get(type(event))
                if handler is not None:
                    handler(c, event)
            self._catch_up()
            doc = exported_doc(event) if self.export and event.cell_id else None
            if doc is not None:
                self._export(str(event.cell_id), doc)
        return seq

    __call__ = apply

    def close(self) -> None:
        self.store.close()

    def _export(self, cell_id: str, doc: str) -> None:
        """Rewrite `cells/<cell>/<doc>.json` from the store (atomically: a reader never sees half a file)."""
        data = self.store.documents(cell_id).get(doc)
        path = self.folder.cell_dir(cell_id) / f"{doc}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
        tmp.replace(path)

    def _catch_up(self) -> None:
        """Append to events.jsonl every recorded event after the last one it holds, in seq order."""
        rows = self.store.db.execute("SELECT seq, line FROM events WHERE seq > ? ORDER BY seq",
                                     (self._logged,)).fetchall()
        if not rows:
            return
        text = "".join(_with_seq(seq, line) for seq, line in rows)
        with self.log_path.open("a", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        self._logged = rows[-1][0]


def _with_seq(seq: int, line: str) -> str:
    """The event's JSON with its seq first: `{"seq":N,"kind":…}` (an event's JSON always has a kind)."""
    return f'{{"seq":{seq},{line[1:]}\n'


def _last_logged_seq(path: Path, chunk: int = 1 << 16) -> int:
    """The seq of the last complete line of events.jsonl that has one (0: none). A torn last line — a crash
    mid-append — is ended with a newline so the next line starts on its own; a line whose bytes were all
    written but its newline was not is counted (it is complete JSON) and gets its newline."""
    if not path.exists():
        return 0
    with path.open("rb+") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        if size and (f.seek(size - 1), f.read(1))[1] != b"\n":
            f.write(b"\n")
            size += 1
        end = size
        tail = b""
        while end > 0:
            start = max(0, end - chunk)
            f.seek(start)
            tail = f.read(end - start) + tail
            lines = tail.split(b"\n")
            complete = lines if start == 0 else lines[1:]  # the first piece may be cut: read further back
            for raw in reversed(complete):
                seq = _seq_of(raw)
                if seq is not None:
                    return seq
            tail = lines[0] if start > 0 else b""
            end = start
    return 0


def _seq_of(raw: bytes) -> int | None:
    if b'"seq"' not in raw:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    seq = data.get("seq") if isinstance(data, dict) else None
    return seq if isinstance(seq, int) else None
