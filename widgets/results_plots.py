"""Result charts, one per widget (each with its own figure): tok/s by cell, acceptance rate by draft
position for each speculative cell, tok/s against k for each k sweep (best k marked), or total against
per-user tok/s across concurrency (Pareto frontier marked). Plain labelled series in."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from textual_plotext import PlotextPlot

Kind = Literal["tok_s", "acceptance", "k_curve", "pareto"]
Curve = tuple[str, tuple[tuple[float, float], ...]]


class ResultsPlot(PlotextPlot):
    """`kind="tok_s"`: horizontal bars of tok/s per cell; `kind="acceptance"`: one line per cell;
    `kind="k_curve"`: tok/s against k per sweep, best k marked; `kind="pareto"`: total against per-user
    tok/s per configuration across concurrency, the frontier marked."""

    DEFAULT_CSS = "ResultsPlot { height: 1fr; min-height: 8; }"

    def __init__(self, kind: Kind, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.kind = kind
        self.tok_s: tuple[tuple[str, float], ...] = ()
        self.acceptance: tuple[tuple[str, tuple[float, ...]], ...] = ()
        self.curves: tuple[Curve, ...] = ()
        self.marks: tuple[tuple[float, float], ...] = ()

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

    def set_curves(self, curves: Sequence[Curve], marks: Sequence[tuple[float, float]]) -> None:
        """`curves`: (label, ((x, y), …)); `marks`: the points to mark (best k, or the Pareto frontier)."""
        new = (tuple((label, tuple(points)) for label, points in curves), tuple(marks))
        if new != (self.curves, self.marks):
            self.curves, self.marks = new
            self._draw()

    def _draw_curves(self) -> None:
        plt = self.plt
        if self.kind == "k_curve":
            plt.title("tok/s against k per sweep · context · concurrency (◆ = best k)")
            plt.xlabel("k (num_speculative_tokens)")
        else:
            plt.title("total tok/s against tok/s per user, across concurrency (◆ = Pareto frontier)")
            plt.xlabel("tok/s per user (total / concurrency)")
        for label, points in self.curves:
            if points:
                plt.plot([x for x, _ in points], [y for _, y in points], label=label, marker="braille")
        if self.marks:
            plt.scatter([x for x, _ in self.marks], [y for _, y in self.marks], marker="◆", color="red")
        if self.kind == "k_curve" and self.curves:
            plt.xticks(sorted({x for _, points in self.curves for x, _ in points}))

    def _draw(self) -> None:
        plt = self.plt
        plt.clear_figure()
        if self.kind in ("k_curve", "pareto"):
            self._draw_curves()
        elif self.kind == "tok_s":
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
