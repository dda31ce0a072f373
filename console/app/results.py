"""The results screen: speed-up vs AR, accuracy Δ vs AR with the noise verdict, and plots — computed by
`console.results` (the same code as `specdeck report`) in a thread, so the screen never blocks."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, LoadingIndicator, Static, TabbedContent, TabPane

from console.app.messages import RunView
from console.app.results_data import ResultsData, Section, results_data
from widgets.results_plots import ResultsPlot
from widgets.results_tables import ResultsTables, TableData

if TYPE_CHECKING:
    from console.app.app import SpecdeckApp


def tables(sections: tuple[Section, ...]) -> list[TableData]:
    return [TableData(s.title, s.headers, s.rows, s.notes, s.empty) for s in sections]


class ResultsScreen(Screen[None]):
    """Tabs: 1 speed, 2 accuracy, 3 tok/s plot, 4 acceptance plot, 5 k sweep (curve + tables), 6 Pareto
    frontiers (per-user × total plot + tables). `r` recomputes from the run folder."""

    app: SpecdeckApp
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("r", "reload", "Reload"),
        Binding("1", "tab('speed')", "Speed", show=False),
        Binding("2", "tab('accuracy')", "Accuracy", show=False),
        Binding("3", "tab('plot-tok-s')", "tok/s", show=False),
        Binding("4", "tab('plot-acceptance')", "Acceptance", show=False),
        Binding("5", "tab('k-sweep')", "k sweep", show=False),
        Binding("6", "tab('pareto')", "Pareto", show=False),
    ]

    def compose(self) -> ComposeResult:
        yield Static(id="results-head")
        yield LoadingIndicator(id="results-loading")
        with TabbedContent(id="results-tabs", initial="speed"):
            with TabPane("1 Speed", id="speed"):
                yield ResultsTables(id="speed-tables")
            with TabPane("2 Accuracy", id="accuracy"):
                yield ResultsTables(id="accuracy-tables")
            with TabPane("3 tok/s", id="plot-tok-s"):
                yield ResultsPlot("tok_s", id="results-tok-s")
            with TabPane("4 Acceptance", id="plot-acceptance"):
                yield ResultsPlot("acceptance", id="results-acceptance")
            with TabPane("5 k sweep", id="k-sweep"):
                yield ResultsPlot("k_curve", id="results-k-curve")
                yield ResultsTables(id="k-sweep-tables")
            with TabPane("6 Pareto", id="pareto"):
                yield ResultsPlot("pareto", id="results-pareto")
                yield ResultsTables(id="pareto-tables")
        yield Footer()

    def __init__(self) -> None:
        super().__init__()
        self.run_view: RunView | None = None

    def on_mount(self) -> None:
        self.watch(self.app, "run_view", self._run_changed)
        if self.run_view is None:
            self.action_reload()  # nothing open: says so

    def _run_changed(self, view: RunView | None) -> None:
        first = self.run_view is None
        if view is not None:
            self.run_view = view
            if first:
                self.action_reload()

    def action_reload(self) -> None:
        view = self.run_view
        head = self.query_one("#results-head", Static)
        if view is None or view.run_dir is None or not view.has_store:
            head.update("no run yet: start cells from the matrix first")
            self.query_one(LoadingIndicator).display = False
            return
        head.update(f"results of run {view.run_dir.name} (the numbers `specdeck report` derives)")
        self.query_one(LoadingIndicator).display = True
        if self.app.settings.live:
            self._load(view.run_dir)
        else:
            self._show(results_data(view.run_dir))

    @work(thread=True, exclusive=True, group="results", exit_on_error=False)
    def _load(self, run_dir: Path) -> None:
        try:
            data = results_data(run_dir)
        except Exception as exc:  # noqa: BLE001 - show the error and how to retry
            self.app.call_from_thread(self._failed, exc)
            return
        self.app.call_from_thread(self._show, data)

    def _failed(self, exc: Exception) -> None:
        self.query_one(LoadingIndicator).display = False
        self.notify(f"could not build the results: {type(exc).__name__}: {exc}; press r to retry",
                    severity="error", timeout=10)

    def _show(self, data: ResultsData) -> None:
        self.query_one(LoadingIndicator).display = False
        notes = list(data.notes)
        self.query_one("#speed-tables", ResultsTables).set_sections(tables(data.speed))
        acc = tables(data.accuracy)
        if notes:
            acc.append(TableData("Notes", (), (), tuple(notes), ""))
        self.query_one("#accuracy-tables", ResultsTables).set_sections(acc)
        for plot in self.query(ResultsPlot):
            plot.set_data(data.tok_s, data.acceptance)
        self.query_one("#results-k-curve", ResultsPlot).set_curves(data.k_curves, data.best_k)
        self.query_one("#k-sweep-tables", ResultsTables).set_sections(tables(data.k_sweep))
        self.query_one("#results-pareto", ResultsPlot).set_curves(data.user_total, data.frontier_points)
        self.query_one("#pareto-tables", ResultsTables).set_sections(tables(data.frontiers))

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    def action_back(self) -> None:
        self.app.pop_screen()
