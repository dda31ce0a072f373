"""`events.jsonl`: the append-only event stream of a run (what the CLI prints and the TUI replays)."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from console.events import Event, from_dict


class EventLog:
    """Appends one JSON line per event, flushed and fsync'd so a crash loses at most the line in flight."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._checked = False

    def append(self, event: Event) -> None:
        line = event.to_json() + "\n"
        with self._lock, self.path.open("a", encoding="utf-8") as f:
            if not self._checked:
                self._checked = True
                if _ends_mid_line(self.path):  # a writer killed mid-line: start ours on a line of its own
                    line = "\n" + line
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    __call__ = append


def _ends_mid_line(path: Path) -> bool:
    """The file's last byte is not a newline (a torn last line a crash left), so an append would join it."""
    with path.open("rb") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() == 0:
            return False
        f.seek(-1, os.SEEK_END)
        return f.read(1) != b"\n"


def read_events(path: Path, offset: int = 0) -> tuple[list[Event], int]:
    """Events from byte `offset` on, and the offset after the last complete line (a partial last line
    — a writer mid-append — is left for the next call)."""
    try:
        with Path(path).open("rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n") + 1
    events = []
    for raw in data[:end].splitlines():
        if raw.strip():
            try:
                data = json.loads(raw)
            except ValueError:  # a torn line from a crash, or bytes that are not UTF-8
                continue  # skip it, never stop replaying
            if not isinstance(data, dict):
                continue  # valid JSON but not an event (a string, a number, a list)
            try:
                events.append(from_dict(data))
            except (TypeError, ValueError):
                continue
    return events, offset + end
