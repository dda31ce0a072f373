"""The smoke gate's verdicts for one cell, per benchmark, with every reason it failed and the full-run cost.

Reasons are sentences that say what to fix, so they wrap instead of being clipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.widgets import Static


@dataclass(frozen=True)
class SmokeRow:
    """One benchmark's smoke verdict."""

    bench_id: str
    passed: bool
    score: float | None
    threshold: float | None
    n: int | None
    reasons: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    estimate: str = ""
    """The full-run cost in words (`12 items × 24 tokens ÷ 310 tok/s ≈ 0.00 h wall, 0.00 GPU-h`)."""


def smoke_renderable(rows: Sequence[SmokeRow], pending: str = "") -> Group | Text:
    if not rows:
        return Text(pending or "no smoke verdict yet (smoke runs after the speed phase; 5 items per benchmark)",
                     style="dim")
    table = Table(expand=True, box=None, pad_edge=False, show_edge=False, header_style="bold")
    table.add_column("benchmark", ratio=2, overflow="fold")
    table.add_column("verdict", ratio=1)
    table.add_column("score", justify="right", ratio=1)
    table.add_column("chance", justify="right", ratio=1)
    table.add_column("n", justify="right", ratio=1)
    for r in rows:
        verdict = Text("passed", style="green") if r.passed else Text("FAILED", style="bold red")
        table.add_row(r.bench_id, verdict, "–" if r.score is None else f"{r.score:.3f}",
                      "–" if r.threshold is None else f"{r.threshold:.3f}", "–" if r.n is None else str(r.n))
    parts: list[Table | Text] = [table]
    for r in rows:
        lines = [Text(f"{r.bench_id}:", style="bold")]
        lines += [Text(f"  ✗ {reason}", style="red") for reason in r.reasons]
        lines += [Text(f"  ! {note}", style="yellow") for note in r.notes]
        if r.estimate:
            lines.append(Text(f"  full run: {r.estimate}"))
        if len(lines) > 1:
            parts.append(Text("\n").join(lines))
    if pending:
        parts.append(Text(pending, style="dim"))
    return Group(*parts)


class SmokeTable(Static):
    """Verdicts in, nothing out: the operator reads them before the approval dialog."""

    DEFAULT_CSS = "SmokeTable { height: auto; }"

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.rows: tuple[SmokeRow, ...] = ()
        self.pending = ""

    def on_mount(self) -> None:
        self.update(smoke_renderable(self.rows, self.pending))

    def set_rows(self, rows: Sequence[SmokeRow], pending: str = "") -> None:
        rows = tuple(rows)
        if rows != self.rows or pending != self.pending:
            self.rows, self.pending = rows, pending
            self.update(smoke_renderable(rows, pending))
