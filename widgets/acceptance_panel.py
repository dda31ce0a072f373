"""Acceptance of one cell: mean acceptance length and the per-position acceptance rates as bars.

Live values come from the server log's `SpecDecoding metrics:` lines (one ~10 s interval each); the final
value from `/metrics` counters diffed around the speed phase. Both are shown, labelled, never mixed.
Redraws at most twice a second (`Throttle`).
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.widgets import Static
from textual_plotext import PlotextPlot

from widgets.summary_plot import SummaryPlot


@dataclass(frozen=True)
class Acceptance:
    """One acceptance reading."""

    mean_acceptance_length: float | None
    per_position: tuple[float, ...] = ()
    draft_acceptance_rate: float | None = None
    source: str = ""
    """`log (last interval)`, `/metrics`, …"""


def describe(a: Acceptance | None, what: str) -> str:
    if a is None or a.mean_acceptance_length is None:
        return f"{what}: –"
    rate = f", draft acceptance {a.draft_acceptance_rate:.0%}" if a.draft_acceptance_rate is not None else ""
    return f"{what}: [b]{a.mean_acceptance_length:.2f}[/b] tokens/step ({a.source}{rate})"


class AcceptancePanel(SummaryPlot):
    """Mean acceptance length (live and final) and a per-position bar chart."""

    ID_PREFIX = "acc"

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.live: Acceptance | None = None
        self.final: Acceptance | None = None
        self.speculative = True

    def set_speculative(self, speculative: bool) -> None:
        """False for AR cells: nothing is drafted, so nothing is accepted."""
        if speculative != self.speculative:
            self.speculative = speculative
            self.throttle.poke()

    def set_live(self, acc: Acceptance | None) -> None:
        if acc != self.live:
            self.live = acc
            self.throttle.poke()

    def set_final(self, acc: Acceptance | None) -> None:
        if acc != self.final:
            self.final = acc
            self.throttle.poke()

    def draw(self, summary: Static, plot: PlotextPlot) -> None:
        plt = plot.plt
        if not self.speculative:
            summary.update("AR cell: no speculative decoding, so there is no acceptance to show.", layout=False)
            plot.display = False
            return
        plot.display = True
        summary.update(describe(self.final, "final") + "\n" + describe(self.live, "live"), layout=False)
        series = [(name, a.per_position) for name, a in (("final", self.final), ("live", self.live))
                  if a is not None and a.per_position]
        plt.title("acceptance rate by draft position")
        plt.ylim(0, 1)
        if series:
            width = max(len(v) for _, v in series)
            labels = [str(i + 1) for i in range(width)]
            values = [list(v) + [0.0] * (width - len(v)) for _, v in series]
            if len(values) == 1:
                plt.bar(labels, values[0], label=series[0][0])
            else:
                plt.multiple_bar(labels, values, labels=[name for name, _ in series])  # type: ignore[call-arg]  # the .pyi says label, plotext takes labels
            plt.xlabel("position")
