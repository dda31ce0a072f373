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

    def append(self, event: Event) -> None:
        line = event.to_json() + "\n"
        with self._lock, self.path.open("a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    __call__ = append


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
                events.append(from_dict(json.loads(raw)))
            except (json.JSONDecodeError, TypeError):
                continue  # a torn line from a crash: skip it, never stop replaying
    return events, offset + end
