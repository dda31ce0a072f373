"""The cell view: one cell's live server log, acceptance, throughput, smoke verdicts and activity."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, ProgressBar, Static, TabbedContent, TabPane

from console.app.messages import (
    CancelCell,
    LogShown,
    RerunSmoke,
    ReviewCell,
    RunFollower,
    RunView,
    WatchCell,
)
from console.app.runview import AcceptanceReading, CellStatus, RunSnapshot
from console.app.watcher import LogChunk
from console.run.states import CellState
from console.units import gpu_hours, human_seconds
from widgets.acceptance_panel import Acceptance, AcceptancePanel
from widgets.log_pane import LogPane
from widgets.smoke_table import SmokeRow, SmokeTable
from widgets.throughput_plot import ThroughputPlot

if TYPE_CHECKING:
    from console.app.app import SpecdeckApp


def _acc(a: AcceptanceReading | None) -> Acceptance | None:
    if a is None:
        return None
    return Acceptance(a.mean_acceptance_length, a.per_position, a.draft_acceptance_rate, a.source)


def head_text(c: CellStatus) -> str:
    state = c.state.value if c.in_run else "not started"
    line = f"[b]{c.cell_id}[/b]  {state}"
    if c.progress:
        line += f"  {c.progress[0]} {c.progress[1]}/{c.progress[2]}"
    nums = []
    if c.tok_s is not None:
        rng = f" ({c.tok_s_range[0]:.0f}–{c.tok_s_range[1]:.0f})" if c.tok_s_range else ""
        nums.append(f"{c.tok_s:.1f} tok/s{rng}")
    if c.speedup is not None:
        nums.append(f"{c.speedup:.2f}× vs AR")
    if c.acceptance_length is not None:
        nums.append(f"acceptance length {c.acceptance_length:.2f}")
    if nums:
        line += "\n" + " · ".join(nums)
    if c.node:
        line += f"\non {c.node}"
    if c.reason:
        line += f"\n[i]{c.reason}[/i]"
    elif c.state is CellState.AWAITING_APPROVAL:
        line += "\n[b yellow]smoke passed: press y to review the cost and approve the full run[/]"
    return line


def short_path(path: str, run_dir: Path | None) -> str:
    if not path or run_dir is None:
        return path
    try:
        return str(Path(path).relative_to(run_dir))
    except ValueError:
        return path


def smoke_rows(c: CellStatus) -> list[SmokeRow]:
    rows = []
    for v in c.verdicts:
        est = v.estimate or {}
        if est.get("wall_s"):
            text = (f"{est.get('items')} items × {est.get('expected_output_tokens')} tokens ÷ "
                    f"{est.get('tok_s') or 0:.0f} tok/s ≈ {human_seconds(est['wall_s'])} wall, "
                    f"{gpu_hours(est.get('gpu_hours') or 0.0)}")
        elif est:
            text = f"{est.get('items')} items, cost unknown (no speed measured)"
        else:
            text = ""
        rows.append(SmokeRow(v.bench_id, v.passed, v.score, v.threshold, v.n, v.reasons, v.notes, text))
    return rows


class CellScreen(Screen[None]):
    """Everything about one cell; esc goes back to the matrix."""

    app: SpecdeckApp
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("1", "tab('log')", "Log", show=False),
        Binding("2", "tab('acceptance')", "Accept.", show=False),
        Binding("3", "tab('throughput')", "Tput", show=False),
        Binding("4", "tab('smoke')", "Smoke", show=False),
        Binding("y", "approve", "Approve"),
        Binding("x", "cancel_cell", "Cancel"),
        Binding("S", "rerun_smoke", "Re-smoke", show=False),
        Binding("R", "results", "Results", show=False),
    ]

    def __init__(self, cell_id: str) -> None:
        super().__init__()
        self._ready = False
        self.cell_id = cell_id
        self._texts: dict[str, str] = {}
        self.follower = RunFollower(self, self.show_snapshot)

    def compose(self) -> ComposeResult:
        yield Static(id="cell-head")
        yield ProgressBar(id="cell-progress", show_eta=False)
        with TabbedContent(id="cell-tabs", initial="log"):
            with TabPane("1 Log", id="log"):
                yield LogPane(max_lines=self.app.settings.max_lines, id="log-pane")
            with TabPane("2 Acceptance", id="acceptance"):
                yield AcceptancePanel(id="acceptance-panel")
            with TabPane("3 Throughput", id="throughput"):
                yield ThroughputPlot(id="throughput-plot")
            with TabPane("4 Smoke", id="smoke"):
                yield SmokeTable(id="smoke-table")
                yield Static(id="activity", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self._ready = True
        self.query_one(LogPane).view.focus()
        self.follower.start()
        self.post_message(WatchCell(self, self.cell_id))

    def on_screen_resume(self) -> None:
        self.follower.resumed()

    @property
    def run_view(self) -> RunView | None:
        return self.follower.view

    def on_log_shown(self, message: LogShown) -> None:
        try:
            self.show_log(message.chunk)
        finally:
            self.call_after_refresh(message.taken)

    def show_snapshot(self, snap: RunSnapshot) -> None:
        if not self._ready:  # a snapshot can arrive before the screen is composed: on_mount shows the latest
            return
        c = snap.cell(self.cell_id)
        if c is None:
            return
        self._set("#cell-head", head_text(c))
        bar = self.query_one(ProgressBar)
        if c.progress and c.progress[2]:
            bar.display = True
            bar.update(total=c.progress[2], progress=c.progress[1])
        else:
            bar.display = False
        panel = self.query_one(AcceptancePanel)
        panel.set_speculative(c.speculative)
        panel.set_final(_acc(c.final_acceptance))
        panel.set_live(_acc(c.live_acceptance))
        self.query_one(ThroughputPlot).set_points(c.throughput, c.tok_s)
        pending = ""
        if c.eval_cell and c.eval_cell != c.cell_id:
            pending = (f"accuracy of this serving config is measured on {c.eval_cell} (same server, "
                       "context and concurrency do not change answers)")
        elif c.state is CellState.SMOKE and c.progress:
            pending = f"smoke running: {c.progress[1]}/{c.progress[2]} items"
        self.query_one(SmokeTable).set_rows(smoke_rows(c), pending)
        self._set("#activity", "activity:\n" + ("\n".join(c.activity[-15:]) or "  (none yet)"))

    def _set(self, selector: str, text: str) -> None:
        """Update a Static only when its text changed (an update costs a layout pass)."""
        if self._texts.get(selector) != text:
            self._texts[selector] = text
            self.query_one(selector, Static).update(text)

    def show_log(self, chunk: LogChunk) -> None:
        if chunk.cell_id != self.cell_id or not self._ready:
            return
        pane = self.query_one(LogPane)
        if chunk.reset:
            pane.set_source(short_path(chunk.path, self.run_view.run_dir if self.run_view else None)
                            or "no server.log yet (the server starts when the cell runs)")
        pane.write_batch(list(chunk.lines), skipped=chunk.skipped)

    def on_log_pane_filter_error(self, message: LogPane.FilterError) -> None:
        self.notify(message.message, severity="error")

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    def action_back(self) -> None:
        self.app.post_message(WatchCell(self, None))  # to the app directly: this screen is about to close
        self.app.pop_screen()

    def action_approve(self) -> None:
        self.post_message(ReviewCell(self.cell_id))

    def action_cancel_cell(self) -> None:
        self.post_message(CancelCell(self.cell_id))

    def action_rerun_smoke(self) -> None:
        self.post_message(RerunSmoke(self.cell_id))

    def action_results(self) -> None:
        from console.app.results import ResultsScreen

        self.app.push_screen(ResultsScreen())
