"""The cell matrix: one row per cell (model × technique × context × concurrency) with its state and numbers.

Data in (`CellRow`s, a filter string), messages out (`SelectionChanged`, `OpenCell`). Rows are keyed by
cell id and only changed cells are updated (dolphie's pattern), so a run of hundreds of cells refreshing
twice a second does not rebuild the table.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable


@dataclass(frozen=True)
class CellRow:
    """What the matrix shows for one cell (already measured numbers; None = not measured yet)."""

    cell_id: str
    model: str
    technique: str
    context: str
    concurrency: int
    state: str = "planned"
    """The state label: planned, serving, speed, smoke, smoke_passed, awaiting_approval, full, done, …"""
    in_run: bool = False
    """False: the cell is in the experiment but no runner has taken it yet."""
    progress: str = ""
    """e.g. `3/5` while a phase reports done / total."""
    tok_s: float | None = None
    speedup: float | None = None
    acceptance_length: float | None = None
    smoke: str = ""
    """`ok 0.80`, `FAIL 0.20`, `2/2 ok`, …"""
    smoke_passed: bool | None = None
    reason: str | None = None
    preflight: str = ""
    """`fail` when `specdeck preflight` found a problem that would stop this cell (shown until it runs)."""
    node: str = ""
    """Where the cell ran on a Ray cluster (`specdeck run --ray`); the matrix grows a node column for it."""


STATE_LABELS = {
    "planned": "planned", "serving": "serving", "speed": "speed", "smoke": "smoke",
    "smoke_passed": "smoke ok", "smoke_failed": "smoke FAIL", "awaiting_approval": "approve?",
    "full": "full", "done": "done", "failed": "FAILED", "skipped": "skipped", "cancelled": "cancelled",
    # a decision recorded but not yet taken (the runner applies decisions between steps)
    "approved": "approved…", "rejecting": "rejecting…", "cancelling": "cancelling…",
}
STATE_STYLES = {
    "serving": "cyan", "speed": "cyan", "smoke": "cyan", "full": "cyan", "smoke_passed": "green",
    "done": "green", "awaiting_approval": "bold yellow", "smoke_failed": "bold red", "failed": "bold red",
    "cancelled": "dim", "skipped": "dim", "approved": "green", "rejecting": "dim", "cancelling": "dim",
}
COLUMNS: tuple[tuple[str, str], ...] = (
    ("sel", " "), ("model", "model"), ("technique", "technique"), ("context", "ctx"), ("conc", "c"),
    ("state", "state"), ("tok_s", "tok/s"), ("speedup", "vs AR"), ("acc", "acc"), ("smoke", "smoke"),
)
NODE_COLUMN = ("node", "node")
"""Shown only when a cell ran on a Ray cluster: a single-box run's matrix stays as it is."""


def state_text(row: CellRow) -> Text:
    if not row.in_run and row.preflight == "fail":
        return Text("✗ preflight", style="bold red")
    label = STATE_LABELS.get(row.state, row.state) if row.in_run else "·"
    if row.progress and row.state in ("speed", "smoke", "full", "serving"):
        label = f"{label} {row.progress}"
    return Text(label, style=STATE_STYLES.get(row.state, "") if row.in_run else "dim")


def _num(value: float | None, spec: str, suffix: str = "") -> Text:
    return Text("–" if value is None else format(value, spec) + suffix, justify="right")


def cells_of(row: CellRow, selected: bool, node: bool = False) -> tuple[Text, ...]:
    """The rendered cells of one row, in COLUMNS order (then the node, with `node`)."""
    smoke_style = "" if row.smoke_passed is None else ("green" if row.smoke_passed else "bold red")
    return (
        Text("●" if selected else " ", style="bold magenta"),
        Text(row.model),
        Text(row.technique),
        Text(row.context),
        Text(str(row.concurrency), justify="right"),
        state_text(row),
        _num(row.tok_s, ".0f"),
        _num(row.speedup, ".2f", "×"),
        _num(row.acceptance_length, ".2f"),
        Text(row.smoke or "–", style=smoke_style),
    ) + ((Text(row.node or "–"),) if node else ())


def matches(cell_id: str, pattern: str) -> bool:
    """Filter semantics: a glob when it has `*?[`, else every space-separated word is a substring."""
    pattern = pattern.strip().lower()
    if not pattern:
        return True
    cid = cell_id.lower()
    if any(ch in pattern for ch in "*?["):
        return fnmatch.fnmatchcase(cid, pattern)
    return all(word in cid for word in pattern.split())


class CellMatrix(DataTable):
    """The run's cells; space selects, `a` selects every visible cell, enter opens one."""

    BINDINGS = [
        Binding("space", "toggle_select", "Select"),
        Binding("a", "select_all", "All"),
    ]

    class SelectionChanged(Message):
        """The selected cell ids changed."""

        def __init__(self, selected: frozenset[str]) -> None:
            super().__init__()
            self.selected = selected

    class OpenCell(Message):
        """The operator asked to open a cell (enter)."""

        def __init__(self, cell_id: str) -> None:
            super().__init__()
            self.cell_id = cell_id

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=True)
        self._rows: dict[str, CellRow] = {}
        self._shown: list[str] = []
        self._rendered: dict[str, tuple[Text, ...]] = {}
        self.selected: set[str] = set()
        self.filter_text = ""
        self._columns = COLUMNS

    def on_mount(self) -> None:
        for key, label in self._columns:
            self.add_column(label, key=key)

    def _cells(self, cid: str) -> tuple[Text, ...]:
        return cells_of(self._rows[cid], cid in self.selected, node=self._columns[-1] == NODE_COLUMN)

    # --- data in ------------------------------------------------------------------------------------------
    def set_rows(self, rows: Iterable[CellRow]) -> None:
        """Show these rows (in this order); only cells whose text changed are redrawn."""
        new = {r.cell_id: r for r in rows}
        order_changed = list(new) != list(self._rows)
        self._rows = new
        self.selected &= set(new)
        columns = COLUMNS + (NODE_COLUMN,) if any(r.node for r in new.values()) else COLUMNS
        if columns != self._columns:  # a cell ran on a Ray cluster: the node column comes (or goes)
            current = self.current_cell_id
            self._columns = columns
            self.clear(columns=True)
            for key, label in columns:
                self.add_column(label, key=key)
            self._shown = []
            self._rebuild(current)
            return
        if order_changed or self._visible() != self._shown:
            self._rebuild()
            return
        with self.app.batch_update():
            for cid in self._shown:
                cells = self._cells(cid)
                old = self._rendered.get(cid)
                if old == cells:
                    continue
                for (key, _), value, before in zip(self._columns, cells, old or (None,) * len(self._columns),
                                                   strict=True):
                    if value != before:
                        self.update_cell(cid, key, value, update_width=True)
                self._rendered[cid] = cells

    def set_filter(self, text: str) -> None:
        self.filter_text = text
        if self._visible() != self._shown:
            self._rebuild()

    def _visible(self) -> list[str]:
        return [cid for cid in self._rows if matches(cid, self.filter_text)]

    def _rebuild(self, current: str | None = None) -> None:
        current = current or self.current_cell_id
        self.clear()
        self._rendered.clear()
        self._shown = self._visible()
        for cid in self._shown:
            cells = self._cells(cid)
            self.add_row(*cells, key=cid)
            self._rendered[cid] = cells
        if current in self._shown:
            self.move_cursor(row=self._shown.index(current))

    # --- queries -------------------------------------------------------------------------------------------
    @property
    def current_cell_id(self) -> str | None:
        if not self._shown or self.cursor_row < 0 or self.cursor_row >= len(self._shown):
            return None
        return self._shown[self.cursor_row]

    @property
    def visible_ids(self) -> Sequence[str]:
        return tuple(self._shown)

    def row(self, cell_id: str) -> CellRow | None:
        return self._rows.get(cell_id)

    # --- actions -------------------------------------------------------------------------------------------
    def _redraw_selection(self, ids: Iterable[str]) -> None:
        for cid in ids:
            if cid in self._rendered:
                cells = self._cells(cid)
                self.update_cell(cid, "sel", cells[0])
                self._rendered[cid] = cells
        self.post_message(self.SelectionChanged(frozenset(self.selected)))

    def action_toggle_select(self) -> None:
        cid = self.current_cell_id
        if cid is None:
            return
        self.selected ^= {cid}
        self._redraw_selection([cid])
        if self.cursor_row < len(self._shown) - 1:
            self.move_cursor(row=self.cursor_row + 1)

    def action_select_all(self) -> None:
        """Select every visible cell; if they all are already, clear the selection."""
        visible = set(self._shown)
        changed = visible | self.selected
        self.selected = set() if visible <= self.selected else self.selected | visible
        self._redraw_selection(changed)

    def select(self, ids: Iterable[str]) -> None:
        ids = set(ids) & set(self._rows)
        changed = ids ^ self.selected
        self.selected = ids
        self._redraw_selection(changed)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value:
            self.post_message(self.OpenCell(event.row_key.value))
