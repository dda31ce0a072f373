"""`RunWatcher`: what changed in a run folder since the last look — events, store, one server log.

Polled from a thread worker (`SpecdeckApp.watch_run`) about every 50 ms; it returns a new `RunSnapshot`
when something changed (at most every `snapshot_every` s) and a `LogChunk` with the log lines gathered
since the UI took the last one (back-pressure: while the UI is behind, lines accumulate here, capped at
`max_lines`, so memory stays flat and the event loop is never flooded). No Textual in here.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from console.app.runview import AcceptanceReading, RunModel, RunSnapshot
from console.run.eventlog import read_events
from console.run.folder import RunFolder
from console.run.store import Store, StoreError
from console.serve.logfold import STATS_MARKERS, ServerLogFold, log_seconds
from console.serve.logparse import parse_line


def stats_lines(text: str) -> list[str]:
    """The lines of `text` holding an engine-stats or spec-decode marker, in order (str.find: C speed, so
    the thousands of request lines around them cost next to nothing)."""
    found: dict[int, str] = {}
    for marker in STATS_MARKERS:
        i = text.find(marker)
        while i >= 0:
            start = text.rfind("\n", 0, i) + 1
            end = text.find("\n", i)
            end = len(text) if end < 0 else end
            found[start] = text[start:end]
            i = text.find(marker, end)
    return [found[k] for k in sorted(found)]
INITIAL_TAIL_BYTES = 16 << 20


@dataclass(frozen=True)
class LogChunk:
    """Lines of a cell's server.log for the log pane, plus what they said about speed and acceptance."""

    cell_id: str
    path: str
    lines: tuple[str, ...]
    reset: bool = False
    """A new file: the pane starts over."""
    skipped: int = 0
    """Lines not shown because the UI was behind or the file was too long to replay."""


class LogTail:
    """Follows one growing file: complete lines only, a partial last line waits for its newline."""

    def __init__(self, path: Path, read_bytes: int = 4 << 20) -> None:
        self.path = path
        self.offset = 0
        self.read_bytes = read_bytes
        self.started = False
        self.skipped_bytes = 0
        self.t0: float | None = None
        self.throughput: list[tuple[float, float]] = []
        """Server tok/s per logging tick (summed over engines), seconds from the first tick."""
        self.live: AcceptanceReading | None = None
        self.fold = ServerLogFold()

    def read(self) -> list[str]:
        try:
            size = self.path.stat().st_size
        except OSError:
            return []
        if not self.started:
            self.started = True
            if size > INITIAL_TAIL_BYTES:
                self.offset = size - INITIAL_TAIL_BYTES
                self.skipped_bytes = self.offset
        if size < self.offset:  # truncated or replaced: start over
            self.offset = 0
        if size == self.offset:
            return []
        with self.path.open("rb") as f:
            f.seek(self.offset)
            data = f.read(self.read_bytes)
        if self.skipped_bytes and self.offset == self.skipped_bytes:
            cut = data.find(b"\n") + 1  # we started mid-line: drop the fragment
            self.offset += cut
            data = data[cut:]
        end = data.rfind(b"\n") + 1
        if end == 0:
            if len(data) < self.read_bytes:
                return []
            end = len(data)
        self.offset += end
        text = data[:end].decode("utf-8", errors="replace")
        self._stats(text)
        return text.splitlines()

    def _stats(self, text: str) -> None:
        """Fold the chunk's stats lines (the one fold `specdeck logstats` and the bench use) and take the
        ticks every engine has reported in."""
        for line in stats_lines(text):
            self.fold.add(parse_line(line))
        self.fold.close_if_complete()
        for tick in self.fold.take_closed():
            gen, t = tick.generation_throughput, log_seconds(tick.time)
            if gen is not None and t is not None:
                if self.t0 is None:
                    self.t0 = t
                self.throughput.append((t - self.t0, gen))
            acc = tick.acceptance()
            if acc is not None and acc.mean_acceptance_length is not None:
                engines = len(tick.specs)
                self.live = AcceptanceReading(acc.mean_acceptance_length, tuple(acc.per_position_rates or ()),
                                              acc.draft_acceptance_rate,
                                              "log, last interval" + (f" ({engines} engines)" if engines > 1 else ""))


class RunWatcher:
    """Polls one run folder. `set_cell()` may be called from any thread; `poll()` from the worker only."""

    def __init__(self, run_dir: Path, model: RunModel, *, max_lines: int = 5000,
                 store_every: float = 0.5, snapshot_every: float = 0.2) -> None:
        self.run_dir = Path(run_dir)
        self.folder = RunFolder(run_dir)
        self.model = model
        self.max_lines = max_lines
        self.store_every = store_every
        self.snapshot_every = snapshot_every
        self.offset = 0
        self.store: Store | None = None
        self._last_store = -1e9
        self._store_retry_at = -1e9
        self._store_backoff = 0.0
        self._problem: str | None = None
        self._reported: str | None = None
        self._last_snapshot = -1e9
        self._posted_version = -1
        self._cell: str | None = None
        self._lock = threading.Lock()
        self._tail: LogTail | None = None
        self._tail_cell: str | None = None
        self._pending: deque[str] = deque(maxlen=max_lines)
        self._pending_skipped = 0
        self._reset = False
        self.ui_ready = threading.Event()
        self.ui_ready.set()

    def set_cell(self, cell_id: str | None) -> None:
        """Tail this cell's server.log from now on (None: no log)."""
        with self._lock:
            self._cell = cell_id

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None

    # --- one look -----------------------------------------------------------------------------------------
    def poll(self, force: bool = False) -> tuple[RunSnapshot | None, LogChunk | None]:
        now = time.monotonic()
        events, self.offset = read_events(self.folder.events_path, self.offset)
        self.model.apply_events(events)
        due = force or events or now - self._last_store >= self.store_every
        if due and (force or now >= self._store_retry_at):
            self._read_store(now)
            self._last_store = now
        chunk = self._read_log()
        snap = None
        if self.model.version != self._posted_version and (force or now - self._last_snapshot >= self.snapshot_every):
            snap = self.model.snapshot()
            self._posted_version = snap.version
            self._last_snapshot = now
        return snap, chunk

    def take_problem(self) -> str | None:
        """A store problem not reported yet (each distinct one once; None when there is nothing new)."""
        if self._problem is None or self._problem == self._reported:
            return None
        self._reported = self._problem
        return self._problem

    def _read_store(self, now: float) -> None:
        try:
            if self.store is None:
                if not self.folder.is_run():
                    return
                self.store = self.folder.read_store()
            s = self.store
            pending = {d.cell_id: d.action for d in s.decisions(pending_only=True)}
            self.model.apply_store(s.cells(), s.measurements(kind="speed"), s.verdicts(), s.runner(), pending)
        except StoreError as exc:
            # Damaged, foreign or busy: say it once (take_problem), then look again less and less often
            # (1 s, 2 s, … 30 s) in case it is repaired or the writer lets go; events and logs keep flowing.
            self.close()
            self._problem = str(exc)
            self._store_backoff = min(30.0, max(1.0, self._store_backoff * 2))
            self._store_retry_at = now + self._store_backoff
            return
        self._problem = self._reported = None
        self._store_backoff = 0.0

    def _log_path(self, cell_id: str) -> Path | None:
        link = self.folder.cell_dir(cell_id) / "server.log"
        if link.exists():
            return link
        row = self.model.rows.get(cell_id)
        if row is not None and row.serving_key:
            shared = self.folder.servers_dir / f"{row.serving_key}.log"
            if shared.exists():
                return shared
        live = self.model.live.get(cell_id)
        if live is not None and live.log_path and Path(live.log_path).exists():
            return Path(live.log_path)
        return None

    def _read_log(self) -> LogChunk | None:
        with self._lock:
            cell = self._cell
        if cell != self._tail_cell:
            self._tail_cell, self._tail = cell, None
            self._pending.clear()
            self._pending_skipped = 0
            self._reset = True
        if cell is None:
            return None
        if self._tail is None:
            path = self._log_path(cell)
            if path is None:
                return self._flush(cell, "")
            self._tail = LogTail(path)
            self._reset = True
        tail = self._tail
        before_tp = len(tail.throughput)
        live_before = tail.live
        for _ in range(8):  # at most 8 reads (32 MB) per look, so a huge backlog cannot stall the thread
            lines = tail.read()
            if not lines:
                break
            self._pending_skipped += max(0, len(self._pending) + len(lines) - self.max_lines)
            self._pending.extend(lines)
        if len(tail.throughput) != before_tp or tail.live is not live_before:
            self.model.apply_log_stats(cell, tail.throughput[-2000:], tail.live)
        return self._flush(cell, str(tail.path))

    def _flush(self, cell: str, path: str) -> LogChunk | None:
        if not self._reset and not self._pending:
            return None
        if not self.ui_ready.is_set():
            return None  # the UI has not taken the last chunk: keep gathering
        chunk = LogChunk(cell, path, tuple(self._pending), self._reset, self._pending_skipped)
        self._pending.clear()
        self._pending_skipped = 0
        self._reset = False
        self.ui_ready.clear()
        return chunk
