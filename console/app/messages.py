"""How the watcher thread, the app and the screens talk: Textual messages, nothing else.

- the watcher thread → the app: `RunUpdated`, `LogArrived` (thread-safe `post_message`, no call_from_thread per
  line);
- the app → screens: it publishes a `RunView` in its reactive `run_view`, which screens watch (Textual's data
  binding: the screen on top renders it in the same step), and sends `LogShown` (a batch of server.log lines)
  to the screen that asked to watch a cell;
- a screen → the app (they bubble up from the screen): what the operator asked for — open an experiment or a
  run, start cells, review / cancel / re-run a cell, watch a cell's log, close the run.

The app owns the session (runners, decisions) and the watcher; screens only render what they are sent and
post what the operator asked for, so a screen never reaches into the app's state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual.message import Message
from textual.message_pump import MessagePump
from textual.screen import Screen

from console.app.runview import RunSnapshot
from console.app.watcher import LogChunk


@dataclass(frozen=True)
class ConsoleSettings:
    """How this console was started; screens may read it (it never changes while the app runs)."""

    experiments_dir: Path | None = None
    """Where the picker lists experiments (None: ./experiments, else the examples shipped with specdeck)."""
    runs_root: Path | None = None
    live: bool = True
    """A watcher thread polls the run; False: one synchronous look when something is opened (tests)."""
    max_lines: int = 5000
    """Server-log lines the log pane keeps."""


@dataclass(frozen=True)
class RunView:
    """What a screen may know about the open run: the snapshot and the few facts around it."""

    snapshot: RunSnapshot
    run_dir: Path | None = None
    """The run folder once a run exists (None: an experiment nobody started yet)."""
    has_store: bool = False
    """The run folder holds a store (results can be computed)."""
    launching: bool = False
    """A runner this console started is still starting (it has not written its heartbeat yet)."""
    queued: int = 0
    """Start requests waiting for the current runner to finish (dropped if the run is closed)."""
    runner_args: tuple[str, ...] = ()
    """What every runner this console starts is given besides its cells (`specdeck tui --ray` → `--ray …`)."""

    @property
    def run_name(self) -> str | None:
        return self.run_dir.name if self.run_dir is not None else None


class RunFollower:
    """A screen's hold on the app's `run_view`: calls `draw(snapshot)` when a new view is published and the screen
    is on top; under another screen it only keeps the view and draws it when the screen comes back
    (`resumed()`, from the screen's `on_screen_resume`)."""

    def __init__(self, screen: Screen[Any], draw: Callable[[RunSnapshot], None]) -> None:
        self.screen = screen
        self.draw = draw
        self.view: RunView | None = None
        """The app's `run_view`, as last published."""
        self._stale = False

    def start(self) -> None:
        """Watch the app's `run_view` (called from the screen's `on_mount`; draws the current one at once)."""
        self.screen.watch(self.screen.app, "run_view", self._changed)

    def _changed(self, view: RunView | None) -> None:
        if view is None:
            return
        self.view = view
        self._stale = not self.screen.is_current
        if not self._stale:
            self.draw(view.snapshot)

    def resumed(self) -> None:
        if self._stale and self.view is not None:
            self._stale = False
            self.draw(self.view.snapshot)


# --- watcher thread → app ---------------------------------------------------------------------------------------
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


# --- app → screens -----------------------------------------------------------------------------------------------
class LogShown(Message, bubble=False):
    """Server-log lines for the screen that asked to watch a cell. It calls `taken` once they are on screen
    (after the next refresh): until then the watcher gathers the next batch instead of flooding the loop."""

    def __init__(self, chunk: LogChunk, taken: Callable[[], None]) -> None:
        super().__init__()
        self.chunk = chunk
        self.taken = taken


# --- screens → app -----------------------------------------------------------------------------------------------
class OpenExperiment(Message):
    """Open an experiment file: its cells in the matrix, nothing started."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path


class OpenRun(Message):
    """Attach to a run folder."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path


class WatchCell(Message):
    """Tail this cell's server.log and send its lines (`LogShown`) to `screen`; `cell_id` None stops it."""

    def __init__(self, screen: MessagePump, cell_id: str | None) -> None:
        super().__init__()
        self.screen = screen
        self.cell_id = cell_id


class StartCells(Message):
    """Start runners for these cells (speed → smoke → approval request). The app answers the screen with
    `CellsStarted` when a runner was started or queued for them."""

    def __init__(self, screen: MessagePump, cell_ids: list[str]) -> None:
        super().__init__()
        self.screen = screen
        self.cell_ids = cell_ids


class CellsStarted(Message, bubble=False):
    """The start request was taken (the screen clears its selection)."""


class ReviewCell(Message):
    """Open the approval dialog of a cell (its smoke, the full run's cost; approve or reject)."""

    def __init__(self, cell_id: str) -> None:
        super().__init__()
        self.cell_id = cell_id


class CancelCell(Message):
    """Ask to cancel a cell (a confirmation first)."""

    def __init__(self, cell_id: str) -> None:
        super().__init__()
        self.cell_id = cell_id


class RerunSmoke(Message):
    """Ask to score a cell's smoke again (a confirmation first)."""

    def __init__(self, cell_id: str) -> None:
        super().__init__()
        self.cell_id = cell_id


class CloseRun(Message):
    """Leave the open experiment or run (the run goes on) and go back to the picker."""
