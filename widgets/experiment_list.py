"""The picker's list: experiment files (with their validation problems inline) and existing runs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option


@dataclass(frozen=True)
class PickerEntry:
    """One line of the picker: an experiment file or a run folder."""

    kind: str
    """`experiment` or `run`."""
    key: str
    """The path to open."""
    title: str
    detail: str = ""
    problems: tuple[str, ...] = ()


def entry_text(e: PickerEntry) -> Text:
    text = Text()
    icon = "▶ " if e.kind == "experiment" else "◆ "
    text.append(icon, style="bold cyan" if e.kind == "experiment" else "bold magenta")
    text.append(e.title, style="bold")
    if e.detail:
        text.append(f"  {e.detail}", style="dim")
    shown = e.problems[:6]
    for p in shown:
        text.append(f"\n    ✗ {p}", style="red")
    if len(e.problems) > len(shown):
        text.append(f"\n    … and {len(e.problems) - len(shown)} more (specdeck validate FILE lists all)",
                    style="red")
    return text


class ExperimentList(OptionList):
    """Enter opens the highlighted experiment or run; an experiment with problems cannot be opened."""

    class Picked(Message):
        def __init__(self, entry: PickerEntry) -> None:
            super().__init__()
            self.entry = entry

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.entries: tuple[PickerEntry, ...] = ()

    def set_entries(self, entries: Sequence[PickerEntry]) -> None:
        self.entries = tuple(entries)
        self.clear_options()
        self.add_options([Option(entry_text(e), id=f"{i}") for i, e in enumerate(self.entries)])
        if self.entries:
            self.highlighted = 0

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id is not None:
            self.post_message(self.Picked(self.entries[int(event.option.id)]))
