"""Generation throughput over time, from the server's periodic stats lines (one point per ~10 s interval).

This is the *server's* per-interval `Avg generation throughput`: a live view, not the measured tok/s (which
is Σ completion tokens / wall clock of the speed phase and is shown next to it). Redraws at ≤ 2 Hz.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual.widgets import Static
from textual_plotext import PlotextPlot

from widgets.summary_plot import SummaryPlot


class ThroughputPlot(SummaryPlot):
    """A line of (seconds since the log's first point, tok/s) and a one-line summary."""

    ID_PREFIX = "tp"

    def __init__(self, max_points: int = 2000, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.max_points = max_points
        self.points: list[tuple[float, float]] = []
        self.measured: float | None = None

    def set_points(self, points: Sequence[tuple[float, float]], measured_tok_s: float | None = None) -> None:
        """Replace the series (the app keeps it; the last `max_points` are drawn)."""
        pts = list(points[-self.max_points:])
        if pts != self.points or measured_tok_s != self.measured:
            self.points, self.measured = pts, measured_tok_s
            self.throttle.poke()

    def draw(self, summary: Static, plot: PlotextPlot) -> None:
        plt = plot.plt
        last = f"last interval {self.points[-1][1]:.0f} tok/s" if self.points else "no stats lines yet"
        measured = f" · measured (speed phase) {self.measured:.0f} tok/s" if self.measured else ""
        summary.update(f"server generation throughput: {last}{measured}", layout=False)
        plt.title("generation tok/s per log interval")
        if self.points:
            xs = [p[0] for p in self.points]
            ys = [p[1] for p in self.points]
            plt.plot(xs, ys, marker="braille")
            plt.ylim(0, max(ys) * 1.1 or 1)
            plt.xlabel("seconds")
