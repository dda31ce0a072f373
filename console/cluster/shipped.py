"""The head's side of shipping: what a worker shipped, applied to the run folder the head owns.

One function, `apply_shipped_event`, is the seam: an event's dict goes through the head runner's sink exactly as
a local emit (#14's one write path: `EventSink.apply(Event.from_dict(d))`), and a worker's files record
(`console.cluster.files`) is unpacked into the run folder. An event the sink has seen (same `eid`: a record
shipped twice, or one the worker's replica was seeded with) changes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from console.cluster.files import FILES, unpack
from console.events import Event, from_dict
from console.run.sink import EventSink


def apply_shipped_event(sink: EventSink, run_dir: Path, d: dict[str, Any]) -> Event | None:
    """Apply one shipped record; the event when it was new (to show it), else None."""
    if d.get("kind") == FILES:
        unpack(run_dir, d)
        return None
    event = from_dict(d)
    return event if sink.apply(event) is not None else None
