"""A yes/no question for decisions that cannot be undone (cancelling a cell); returns True or False."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static


class ConfirmDialog(ModalScreen[bool]):
    """`y` confirms, `n` or esc does not."""

    DEFAULT_CSS = """
    ConfirmDialog { align: center middle; }
    ConfirmDialog > Vertical {
        width: 80%; max-width: 90; height: auto; border: thick $error; background: $surface; padding: 0 1;
    }
    ConfirmDialog #cd-keys { color: $text-muted; margin-top: 1; }
    """
    BINDINGS = [Binding("y", "answer(True)", "Yes"), Binding("n", "answer(False)", "No"),
                Binding("escape", "answer(False)", "No", show=False)]

    def __init__(self, title: str, message: str) -> None:
        super().__init__()
        self.title_text = title
        self.message = message

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = self.title_text
            yield Static(self.message, markup=False)
            yield Static("y yes · n / esc no", id="cd-keys")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
