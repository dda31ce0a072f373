"""A summary line over a plotext chart, redrawn at most twice a second and only while it is on screen."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static
from textual_plotext import PlotextPlot

from widgets.throttle import Throttle


class SummaryPlot(Vertical):
    """The frame the cell view's charts share: a `Static` summary above a `PlotextPlot`, a `Throttle` that
    batches data updates into redraws, and no drawing while hidden (a hidden tab draws when it is shown —
    plots and layouts cost frames). A subclass says what to draw in `draw`; its data setters call
    `self.throttle.poke()`."""

    DEFAULT_CSS = """
    SummaryPlot { height: 1fr; }
    SummaryPlot > Static { height: 2; }
    SummaryPlot > PlotextPlot { height: 1fr; min-height: 6; }
    """

    ID_PREFIX = "plot"
    """The children's ids: `<prefix>-summary` and `<prefix>-plot`."""

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.throttle = Throttle(self._redraw)

    def compose(self) -> ComposeResult:
        yield Static(id=f"{self.ID_PREFIX}-summary")
        yield PlotextPlot(id=f"{self.ID_PREFIX}-plot")

    def on_mount(self) -> None:
        self.set_interval(self.throttle.period, self.throttle.tick)
        self._redraw()

    def on_show(self) -> None:
        self.call_after_refresh(self.throttle.flush)  # drawn once it is on screen

    def _redraw(self) -> None:
        if not self.is_mounted:
            return
        if not self.is_on_screen:
            self.throttle.dirty = True
            return
        plot = self.query_one(PlotextPlot)
        plot.plt.clear_figure()
        self.draw(self.query_one(f"#{self.ID_PREFIX}-summary", Static), plot)
        plot.refresh()

    def draw(self, summary: Static, plot: PlotextPlot) -> None:
        """Write the summary and draw on `plot.plt` (its figure is already cleared)."""
        raise NotImplementedError
