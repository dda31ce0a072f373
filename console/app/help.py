"""`?`: the keys of every screen, and how the console relates to the runner."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS = {
    "PickerScreen": [("↑ ↓", "move"), ("enter", "open the experiment or run"), ("r", "rescan"), ("q", "quit")],
    "MatrixScreen": [("↑ ↓ / pgup pgdn", "move"), ("space", "select / unselect a cell"),
                     ("a", "select every visible cell (again: none)"),
                     ("s", "start the selected cells (or the one under the cursor): speed → smoke → approval"),
                     ("enter", "open the cell: live log, acceptance, throughput, smoke"),
                     ("y", "review the smoke and the full run's cost; approve or reject"),
                     ("x", "cancel a cell"), ("R", "results tables and plots"),
                     ("/ or a letter", "filter cells by words or a glob (esc clears)"),
                     ("esc", "back to the picker"), ("q", "quit (the run goes on)")],
    "CellScreen": [("1 2 3 4", "log · acceptance · throughput · smoke"), ("f", "follow the log on/off"),
                   ("l", "log level: all → info → warning → error"), ("/", "regex filter of the log"),
                   ("y", "approve / reject the full run"), ("x", "cancel the cell"), ("S", "re-run the smoke"),
                   ("R", "results"), ("esc", "back to the matrix")],
    "ResultsScreen": [("1 2 3 4", "speed · accuracy · tok/s plot · acceptance plot"), ("r", "recompute"),
                      ("esc", "back")],
    "ApprovalDialog": [("↑ ↓", "pick a benchmark"), ("a / x", "mark it approved / rejected (again: unmark)"),
                       ("enter", "confirm the marks (unmarked benchmarks stay undecided)"),
                       ("y", "approve every undecided benchmark (asks once more, naming the GPU-hours)"),
                       ("r", "reject them all, with a reason"), ("esc", "close, nothing decided")],
}
ABOUT = (
    "The run belongs to a runner process started in its own session (by this console or by `specdeck run`). "
    "The console replays runs/<run>/events.jsonl, tails the files and writes only your decisions (approve, "
    "reject, cancel, re-run smoke) into the store. Quit or lose the SSH connection: the run goes on; "
    "`specdeck tui RUN_DIR` shows it again."
)


def help_text(screen: str) -> str:
    lines = [f"[b]{screen.removesuffix('Screen') or screen}[/b]"]
    for key, what in KEYS.get(screen, []):
        lines.append(f"  [b cyan]{key:<16}[/] {what}")
    lines += ["", "[b]everywhere[/b]", "  [b cyan]?               [/] this help", "", ABOUT]
    return "\n".join(lines)


class HelpScreen(ModalScreen[None]):
    """Press any of esc, q or ? to close."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 90%; max-width: 100; height: auto; max-height: 90%;
                                  border: thick $accent; background: $surface; padding: 0 1; }
    """
    BINDINGS = [Binding("escape,q,question_mark", "close", "Close")]

    def __init__(self, screen_name: str) -> None:
        super().__init__()
        self.screen_name = screen_name

    def compose(self) -> ComposeResult:
        with VerticalScroll() as box:
            box.border_title = "keys"
            yield Static(help_text(self.screen_name))

    def action_close(self) -> None:
        self.dismiss(None)
