"""Messages the watcher thread posts to the app (thread-safe `post_message`, no call_from_thread per line)."""

from __future__ import annotations

from textual.message import Message

from console.app.runview import RunSnapshot
from console.app.watcher import LogChunk


class RunUpdated(Message):
    """A new picture of the run; a newer one replaces an older one still in the queue."""

    def __init__(self, snapshot: RunSnapshot) -> None:
        super().__init__()
        self.snapshot = snapshot

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, RunUpdated)


class LogArrived(Message):
    """A batch of server.log lines (~50 ms worth) for the cell being watched."""

    def __init__(self, chunk: LogChunk) -> None:
        super().__init__()
        self.chunk = chunk
