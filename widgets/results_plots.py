"""Result charts, one per widget (each with its own figure): tok/s by cell, or acceptance rate by draft
position for each speculative cell. Plain (label, value) series in."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from textual_plotext import PlotextPlot

Kind = Literal["tok_s", "acceptance"]


class ResultsPlot(PlotextPlot):
    """`kind="tok_s"`: horizontal bars of tok/s per cell; `kind="acceptance"`: one line per cell."""

    DEFAULT_CSS = "ResultsPlot { height: 1fr; min-height: 8; }"

    def __init__(self, kind: Kind, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.kind = kind
        self.tok_s: tuple[tuple[str, float], ...] = ()
        self.acceptance: tuple[tuple[str, tuple[float, ...]], ...] = ()

    def on_mount(self) -> None:
        self._draw()

    def set_data(self, tok_s: Sequence[tuple[str, float]],
                 acceptance: Sequence[tuple[str, Sequence[float]]]) -> None:
        """`tok_s`: (cell label, tok/s); `acceptance`: (cell label, per-position rates)."""
        new_tok = tuple(tok_s)
        new_acc = tuple((label, tuple(v)) for label, v in acceptance)
        if (new_tok, new_acc) != (self.tok_s, self.acceptance):
            self.tok_s, self.acceptance = new_tok, new_acc
            self._draw()

    def _draw(self) -> None:
        plt = self.plt
        plt.clear_figure()
        if self.kind == "tok_s":
            plt.title("tok/s by cell (non-streaming, Σ completion tokens / wall clock)")
            if self.tok_s:
                plt.bar([label for label, _ in self.tok_s], [v for _, v in self.tok_s], orientation="horizontal",
                        width=0.3)
        else:
            plt.title("acceptance rate by draft position (/metrics)")
            series = [(label, rates) for label, rates in self.acceptance if rates]
            plt.ylim(0, 1 + 0.15 * len(series))  # head room for the legend above the rates (≤ 1)
            for label, rates in series:
                plt.plot(list(range(1, len(rates) + 1)), list(rates), label=label, marker="braille")
            if series:
                plt.xlabel("position")
                plt.xticks(list(range(1, max(len(r) for _, r in series) + 1)))
        self.refresh()
