"""The cell matrix screen: every cell of the experiment, what state it is in and what it measured."""

from __future__ import annotations

import time

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.events import Key
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from console.app.messages import (
    CancelCell,
    CellsStarted,
    CloseRun,
    ReviewCell,
    RunFollower,
    RunView,
    StartCells,
)
from console.app.runview import CellStatus, RunSnapshot
from console.run.states import TERMINAL, CellState
from widgets.approval_dialog import clock
from widgets.cell_matrix import CellMatrix, CellRow


def progress_text(c: CellStatus) -> str:
    if c.progress is None:
        return ""
    phase, done, total = c.progress
    return f"{done}/{total}" if total else str(done)


def smoke_text(c: CellStatus) -> tuple[str, bool | None]:
    if not c.verdicts:
        return "", None
    passed = all(v.passed for v in c.verdicts)
    if len(c.verdicts) == 1:
        v = c.verdicts[0]
        score = f" {v.score:.2f}" if v.score is not None else ""
        text = ("ok" if v.passed else "FAIL") + score
    else:
        text = f"{sum(v.passed for v in c.verdicts)}/{len(c.verdicts)} ok"
    if c.eval_cell and c.eval_cell != c.cell_id:
        text = "=" + text  # the verdict of the cell that measures this serving config's accuracy
    return text, passed


PENDING_STATES = {"approve": "approved", "reject": "rejecting", "cancel": "cancelling", "start": "queued"}


def to_row(c: CellStatus, preflight: tuple[str, ...] = ()) -> CellRow:
    """The matrix row of a cell; `preflight` = its problem lines from `specdeck preflight` (✗ first)."""
    smoke, passed = smoke_text(c)
    state = c.state.value
    if c.pending and not c.state.terminal:
        state = PENDING_STATES.get(c.pending, state)  # recorded, not yet taken: the runner is in another phase
    return CellRow(cell_id=c.cell_id, model=c.info.model, technique=c.info.technique, context=c.info.context,
                   concurrency=c.info.concurrency, state=state, in_run=c.in_run, progress=progress_text(c),
                   tok_s=c.tok_s, speedup=c.speedup, acceptance_length=c.acceptance_length, smoke=smoke,
                   smoke_passed=passed, reason=c.reason,
                   preflight="fail" if any(p.startswith("✗") for p in preflight) else "", node=c.node or "")




def runner_text(snap: RunSnapshot, launching: bool, now: float | None = None) -> str:
    """What the run's runner is doing, from the snapshot alone (liveness = heartbeat and pid)."""
    active = (CellState.SERVING, CellState.SPEED, CellState.SMOKE, CellState.FULL)
    stuck = sum(snap.count(s) for s in active)
    if snap.runner_alive:
        who = f"runner pid {snap.runner_pid}"
        busy = [c for c in snap.cells if c.in_run and c.state in active]
        if busy:
            return f"[green]{who} working: {busy[0].cell_id} {busy[0].state.value}[/]"
        if snap.windows:
            w = snap.windows[0]
            return (f"[green]{who}[/] [b yellow]keeps the {w.config} server warm for your approval: "
                    f"{clock(w.left(now))} left[/]")
        if any(c.in_run and c.state is CellState.AWAITING_APPROVAL for c in snap.cells):
            return f"[green]{who} waiting for your decisions[/]"
        return f"[green]{who} between steps[/]"
    if launching:
        return "[cyan]runner starting …[/]"
    if stuck:
        return f"[b red]{stuck} cell(s) mid-phase but no runner: select them and press s to resume[/]"
    return "[dim]no runner active[/]"


def awaiting_decision(snap: RunSnapshot) -> list[str]:
    """Cells of the run waiting for the operator's approval with no decision queued (the header's "N awaiting
    approval (y)")."""
    return [c.cell_id for c in snap.cells if c.in_run and c.state is CellState.AWAITING_APPROVAL and not c.pending]


def run_line(snap: RunSnapshot | None, run_name: str | None, toy: bool, launching: bool = False,
             now: float | None = None, runner_args: tuple[str, ...] = ()) -> str:
    if snap is None:
        return ""
    parts = [f"[b]{snap.experiment}[/b]"]
    if runner_args:  # e.g. `specdeck tui --ray HEAD:6379`: say where the cells will run before any starts
        parts.append(f"[cyan]runners start with {escape(' '.join(runner_args))}[/]")
    if run_name is None:
        parts.append("no run yet: select cells (space, a) and start them (s)")
    else:
        parts.append(f"run {run_name}")
        parts.append(runner_text(snap, launching, now))
        waiting = len(awaiting_decision(snap))
        if waiting:
            parts.append(f"[b yellow]{waiting} awaiting approval (y)[/]")
        queued = sum(1 for c in snap.cells if c.pending == "start" and (not c.in_run or not c.state.terminal))
        if queued:
            parts.append(f"[cyan]{queued} cell(s) queued for the runner[/]")
        decided = sum(1 for c in snap.cells if c.in_run and c.pending and c.pending != "start"
                      and c.state not in TERMINAL)
        if decided:
            parts.append(f"[green]{decided} decision(s) queued: the runner takes them after its current phase[/]")
        done, failed = snap.count(CellState.DONE), snap.count(CellState.FAILED)
        if done:
            parts.append(f"{done} done")
        if failed:
            parts.append(f"[red]{failed} failed[/]")
        if snap.gpu is not None and snap.gpu.starts:  # a held server's up-time counts on between events
            gpu = snap.gpu.at(time.time() if now is None else now) if snap.runner_alive else snap.gpu
            parts.append(gpu.short())
    if snap.caveats:
        first = snap.caveats[0].split(". ", 1)[0]
        parts.append(f"[b red]engine caveat: {escape(first)} (specdeck status shows it whole)[/]")
    if snap.unknown_kinds:
        kinds = ", ".join(escape(k) for k in snap.unknown_kinds)
        parts.append(f"[b yellow]events this console does not know ({kinds}): a newer specdeck wrote this run; "
                     "upgrade to see them[/]")
    if toy:
        parts.append("[i]toy models: the machinery is real, the scores are not[/]")
    return " · ".join(parts)


class MatrixScreen(Screen[None]):
    """Select cells, start them, watch their states; enter opens a cell."""

    BINDINGS = [
        Binding("s", "start", "Start"),
        Binding("y", "approve", "Approve"),
        Binding("x", "cancel_cell", "Cancel"),
        Binding("R", "results", "Results"),
        Binding("slash", "filter", "Filter"),
        Binding("escape", "back", "Back", show=False),
    ]

    def __init__(self, toy: bool = False) -> None:
        super().__init__()
        self._ready = False
        self.toy = toy
        self._run_line = ""
        self._cell_line = ""
        self.follower = RunFollower(self, self.show_snapshot)

    def compose(self) -> ComposeResult:
        yield Static(id="run-line")
        yield Input(placeholder="filter: type words or a glob (esc clears)", id="filter")
        yield CellMatrix(id="matrix")
        yield Static(id="cell-line")
        yield Footer()

    def on_mount(self) -> None:
        self._ready = True
        self.query_one(CellMatrix).focus()
        self.follower.start()

    def on_screen_resume(self) -> None:
        self.follower.resumed()

    @property
    def run_view(self) -> RunView | None:
        return self.follower.view

    @property
    def matrix(self) -> CellMatrix:
        return self.query_one(CellMatrix)

    def show_snapshot(self, snap: RunSnapshot) -> None:
        if not self._ready:  # a snapshot can arrive before the screen is composed: on_mount shows the latest
            return
        view = self.run_view
        text = run_line(snap, view.run_name if view else None, self.toy, launching=bool(view and view.launching),
                        runner_args=view.runner_args if view else ())
        if text != self._run_line:
            self._run_line = text
            self.query_one("#run-line", Static).update(text)
        self.matrix.set_rows([to_row(c, snap.preflight.get(c.cell_id, ())) for c in snap.cells])
        self._describe_cursor()

    def _describe_cursor(self) -> None:
        snap, cid = (self.run_view.snapshot if self.run_view else None), self.matrix.current_cell_id
        c = snap.cell(cid) if snap and cid else None
        text = ""
        if c is not None:
            text = f"[b]{c.cell_id}[/b]"
            if c.reason:
                text += f" — {c.reason}"
            elif c.pending == "approve" and c.state == "awaiting_approval":
                text += " — approved; the full run starts when the runner finishes its current phase"
            elif c.state == "awaiting_approval":
                text += " — smoke passed: press y to review the full run's cost and approve"
            elif not c.in_run and snap is not None and snap.preflight.get(c.cell_id):
                text += " — preflight: " + escape("; ".join(snap.preflight[c.cell_id][:2]))
            elif not c.in_run:
                text += " — not started"
        sel = len(self.matrix.selected)
        if sel:
            text += f"   [magenta]{sel} selected[/]"
        if text != self._cell_line:
            self._cell_line = text
            self.query_one("#cell-line", Static).update(text)

    def on_data_table_row_highlighted(self) -> None:
        self._describe_cursor()

    def on_cell_matrix_selection_changed(self) -> None:
        self._describe_cursor()

    def on_cell_matrix_open_cell(self, message: CellMatrix.OpenCell) -> None:
        from console.app.cellview import CellScreen

        self.app.push_screen(CellScreen(message.cell_id))

    # --- filter -----------------------------------------------------------------------------------------------
    def on_key(self, event: Key) -> None:
        """Typing a letter that is not a key binding starts the filter with it."""
        box = self.query_one("#filter", Input)
        if (self.focused is self.matrix and event.is_printable and event.character and event.character != " "
                and event.key not in self.active_bindings):
            box.value += event.character
            box.cursor_position = len(box.value)
            box.focus()
            event.stop()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.matrix.set_filter(event.value)
        self._describe_cursor()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.matrix.focus()

    def action_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_back(self) -> None:
        box = self.query_one("#filter", Input)
        if box.has_focus or box.value:
            box.value = ""
            self.matrix.focus()
            return
        self.post_message(CloseRun())

    # --- work ------------------------------------------------------------------------------------------------
    def action_start(self) -> None:
        ids = [c for c in self.matrix.visible_ids if c in self.matrix.selected] or list(self.matrix.selected)
        if not ids and self.matrix.current_cell_id:
            ids = [self.matrix.current_cell_id]
        if not ids:
            self.notify("select cells first: space selects, a selects all", severity="warning")
            return
        self.post_message(StartCells(self, ids))

    def on_cells_started(self, message: CellsStarted) -> None:
        self.matrix.select([])

    def action_approve(self) -> None:
        """Review the cell under the cursor; when it has nothing to decide and another cell waits for its
        approval (the header says "N awaiting approval (y)"), review that one and move the cursor to it."""
        cid = self.matrix.current_cell_id
        snap = self.run_view.snapshot if self.run_view else None
        here = snap.cell(cid) if snap and cid else None
        if snap is not None and (here is None or here.state is not CellState.AWAITING_APPROVAL):
            visible = list(self.matrix.visible_ids)
            shown = [w for w in awaiting_decision(snap) if w in visible]
            if shown:
                cid = shown[0]
                self.matrix.move_cursor(row=visible.index(cid))
        if cid:
            self.post_message(ReviewCell(cid))

    def action_cancel_cell(self) -> None:
        cid = self.matrix.current_cell_id
        if cid:
            self.post_message(CancelCell(cid))

    def action_results(self) -> None:
        from console.app.results import ResultsScreen

        self.app.push_screen(ResultsScreen())
