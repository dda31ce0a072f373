"""Results tables (speed-up vs AR, accuracy Δ vs AR, …): already formatted string tables in, DataTables out.

The numbers are computed by `console.results` (the same code as `specdeck report`); this widget only lays
the tables out, one titled DataTable per section, scrollable with the keyboard.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static


@dataclass(frozen=True)
class TableData:
    """One section: a title, column headers, rows of strings, and notes shown under it."""

    title: str
    headers: Sequence[str]
    rows: Sequence[Sequence[str]]
    notes: Sequence[str] = field(default_factory=tuple)
    empty: str = "(nothing yet)"


def _numeric(values: Sequence[str]) -> bool:
    seen = [v for v in values if v not in ("", "–")]
    return bool(seen) and all(v.lstrip("+-−").replace(".", "", 1).rstrip("×%").replace(",", "").isdigit()
                              for v in seen)


class ResultsTables(VerticalScroll):
    """Sections of tables, stacked."""

    DEFAULT_CSS = """
    ResultsTables { height: 1fr; }
    ResultsTables > .rt-title { text-style: bold; margin-top: 1; }
    ResultsTables > .rt-note { color: $text-muted; }
    ResultsTables > DataTable { height: auto; max-height: 20; }
    """

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.sections: tuple[TableData, ...] = ()

    def set_sections(self, sections: Sequence[TableData]) -> None:
        sections = tuple(sections)
        if sections == self.sections:
            return
        self.sections = sections
        self.remove_children()
        self.mount_all(list(self._widgets()))

    def _widgets(self) -> ComposeResult:
        for sec in self.sections:
            yield Static(sec.title, classes="rt-title", markup=False)
            if not sec.rows:
                yield Static(sec.empty, classes="rt-note", markup=False)
            else:
                table: DataTable = DataTable(cursor_type="row", zebra_stripes=True)
                right = [_numeric([str(r[i]) for r in sec.rows]) for i in range(len(sec.headers))]
                for h in sec.headers:
                    table.add_column(h)
                for r in sec.rows:
                    table.add_row(*(Text(str(v), justify="right" if right[i] else "left") for i, v in enumerate(r)))
                yield table
            for note in sec.notes:
                yield Static(note, classes="rt-note", markup=False)
