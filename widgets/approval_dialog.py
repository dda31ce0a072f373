"""The approval dialog: each benchmark's smoke result and full-run cost, a decision per benchmark, then an
explicit confirmation — with the approval window's countdown live on screen.

Two clear steps: 1 review (a row per benchmark: ↑/↓ picks one, `a` marks it approved, `x` rejected; `y`
approves every undecided benchmark at once, `r` rejects them all) and 2 confirm (what will be approved and
rejected, the GPU-hours named again; `y` or `enter` approves; a rejection needs a reason, typed there). A
benchmark left unmarked stays undecided: the cell waits for it. `esc` closes the dialog from any step, deciding
nothing; the footer says which step it is in. The dialog only returns the decisions (`ApprovalResult`); the app
records them (the same store call as `specdeck approve RUN CELL [--bench B]`).

While it is open the dialog ticks once a second: how long the runner still keeps the server warm for this
decision, and what happens at 0:00 (`WindowClock`, asked of the app through `clock`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Static


@dataclass(frozen=True)
class BenchChoice:
    """One benchmark of the cell: its smoke verdict and what its full run costs."""

    bench_id: str
    passed: bool
    score: float | None = None
    threshold: float | None = None
    smoke_items: int | None = None
    full_items: int | None = None
    wall_s: float | None = None
    gpu_hours: float | None = None
    reasons: tuple[str, ...] = ()
    decided: str = ""
    """How an earlier decision settled it ('already approved by ana at …'): shown, not decidable again."""
    earlier: str = ""
    """That earlier decision's action: approve | reject | cancel."""


@dataclass(frozen=True)
class ApprovalRequest:
    """What the operator decides on."""

    cell_id: str
    benches: Sequence[BenchChoice]
    can_approve: bool = True
    why_not: str = ""

    @property
    def open(self) -> list[BenchChoice]:
        return [b for b in self.benches if not b.decided]


@dataclass(frozen=True)
class ApprovalResult:
    """The decisions: (benchmark, `approve` | `reject`) pairs — benchmark None means every undecided one (what
    `specdeck approve` does without `--bench`) — and the reason for the rejections."""

    decisions: tuple[tuple[str | None, str], ...]
    reason: str | None = None

    @property
    def action(self) -> str:
        """`approve` or `reject` when every decision is the same, else `mixed`."""
        actions = {a for _, a in self.decisions}
        return actions.pop() if len(actions) == 1 else "mixed"


@dataclass(frozen=True)
class WindowClock:
    """The approval window as the run shows it now."""

    seconds_left: float | None
    """Time the server is still kept warm for this cell; None: no server is held for it."""
    server: str = ""
    runner_alive: bool = True
    restart_s: float | None = None
    """What a new server start has cost in this run (mean), to say what missing the window costs."""


def human_seconds(s: float | None) -> str:
    """'42 s', '12.5 min', '3.2 h' — the same wording as console.units (widgets do not import the core)."""
    if s is None:
        return "unknown"
    if s < 90:
        return f"{s:.0f} s" if s >= 10 else f"{s:.1f} s"
    if s < 5400:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def gpu_hours(h: float) -> str:
    if h >= 0.1:
        return f"{h:.2f} GPU-h"
    return f"{h:.2g} GPU-h" if h >= 0.01 else "< 0.01 GPU-h"


def clock(seconds: float) -> str:
    """'4:12' (minutes:seconds) for a countdown; the header and the dialog both read it."""
    m, s = divmod(int(seconds + 0.999), 60)  # rounded up: '0:01' until the last second has passed
    return f"{m}:{s:02d}"


def cost_text(hours: float | None, wall_s: float | None) -> str:
    if hours is None:
        return "cost unknown (no speed measured)"
    h = gpu_hours(hours)
    return f"{'' if h.startswith('<') else '≈ '}{h}, ≈ {human_seconds(wall_s)}"


def total_cost(benches: Sequence[BenchChoice]) -> str:
    if not benches:
        return "nothing"
    if any(b.gpu_hours is None for b in benches):
        return "an unknown amount of GPU time (a benchmark has no speed measured)"
    walls = [b.wall_s for b in benches if b.wall_s]
    return cost_text(sum(b.gpu_hours or 0.0 for b in benches), sum(walls) if walls else None)


def window_text(w: WindowClock | None) -> str:
    """The countdown line, and what happens when it reaches 0:00."""
    restart = f" (a new start-up: ≈ {human_seconds(w.restart_s)} in this run)" if w and w.restart_s else \
        " (a new start-up)"
    if w is None or not w.runner_alive:
        return ("no runner is active: approving starts one (from this console), which starts the server again"
                + restart)
    if w.seconds_left is None:
        return "no server is kept warm for this cell: approving has the runner start it again" + restart
    if w.seconds_left <= 0:
        return (f"[b red]0:00 — the approval window closed:[/] the runner stopped the {escape(w.server)} server "
                f"(unless other cells needed it); approving still works and starts it again{restart}")
    return (f"[b yellow]{clock(w.seconds_left)} left[/]: the runner keeps the {escape(w.server)} server warm for "
            f"this decision. At 0:00 it stops the server (unless other cells need it); approving after that "
            f"still works and starts it again{restart}")


STEPS = {
    "review": "step 1 of 2 · review: ↑↓ pick · a approve it · x reject it · enter confirm marks · "
              "y approve all… · r reject all · esc close",
    "confirm": "step 2 of 2 · confirm: y or enter records it · esc close, nothing decided",
    "reason": "reject: type why, enter sends · esc close, nothing decided",
}
MARKS = {"approve": "[b green]✓ approve  [/]", "reject": "[b red]✗ reject   [/]", "": "[dim]· undecided[/]",
         "approved": "[green]✓ approved [/]", "rejected": "[red]✗ rejected [/]", "cancelled": "[red]✗ cancelled[/]"}
PAST = {"approve": "approved", "reject": "rejected", "cancel": "cancelled"}


class ApprovalDialog(ModalScreen[ApprovalResult | None]):
    """Review a cell's benchmarks and decide each (a / x, then enter), or all at once (y / r); confirm; esc
    closes."""

    DEFAULT_CSS = """
    ApprovalDialog { align: center middle; }
    ApprovalDialog > Vertical {
        width: 90%; max-width: 120; height: auto; max-height: 95%;
        border: thick $warning; background: $surface; padding: 0 1;
    }
    ApprovalDialog.-confirm > Vertical { border: thick $success; }
    ApprovalDialog.-reason > Vertical { border: thick $error; }
    ApprovalDialog #ad-benches { height: auto; max-height: 16; }
    ApprovalDialog #ad-cost { text-style: bold; margin-top: 1; }
    ApprovalDialog #ad-window { margin-top: 1; }
    ApprovalDialog #ad-prompt { margin-top: 1; }
    ApprovalDialog Input { display: none; }
    ApprovalDialog.-reason Input { display: block; }
    ApprovalDialog #ad-keys { color: $text; background: $boost; margin-top: 1; }
    """
    BINDINGS = [
        Binding("y", "approve", "Approve"),
        Binding("enter", "confirm", "Confirm", show=False),
        Binding("r", "reject", "Reject"),
        Binding("a", "mark('approve')", "Approve one", show=False),
        Binding("x", "mark('reject')", "Reject one", show=False),
        Binding("up,k", "move(-1)", "Up", show=False),
        Binding("down,j", "move(1)", "Down", show=False),
        Binding("escape", "close", "Close"),
    ]

    def __init__(self, request: ApprovalRequest, clock: Callable[[], WindowClock | None] | None = None) -> None:
        super().__init__()
        self.request = request
        self.clock = clock
        self.stage = "review"
        self.cursor = next((i for i, b in enumerate(request.benches) if not b.decided), 0)
        """The picked benchmark (first the first undecided one)."""
        self.marks: dict[str, str] = {}
        """bench_id → approve | reject, for the undecided benchmarks the operator marked."""
        self.all_at_once: str | None = None
        """`approve` / `reject` when y / r decided every undecided benchmark in one go."""

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = self._title()
            with VerticalScroll(id="ad-benches"):
                yield Static(self._bench_lines(), id="ad-table")
            yield Static(self._cost(), id="ad-cost")
            yield Static(self._window(), id="ad-window")
            yield Static(self._prompt(), id="ad-prompt")
            yield Input(placeholder="why reject? (kept with the run; enter to send, esc to close)")
            yield Static(STEPS[self.stage], id="ad-keys", markup=False)

    def on_mount(self) -> None:
        if self.clock is not None:
            self.set_interval(1.0, self.tick)

    def tick(self) -> None:
        """Once a second: the countdown moves while the dialog is open."""
        self.query_one("#ad-window", Static).update(self._window())

    # --- what is shown ----------------------------------------------------------------------------------
    def _title(self) -> str:
        cell = self.request.cell_id
        if self.stage == "reason" and self.all_at_once == "reject":
            return f"Reject the full run of {cell}"
        return f"1/2 Review: full run of {cell}?" if self.stage == "review" else f"2/2 Confirm: full run of {cell}"

    def _mark(self, bench: BenchChoice) -> str:
        if bench.decided:
            return MARKS.get(PAST.get(bench.earlier, ""), MARKS["approved"])
        if self.all_at_once:
            return MARKS[self.all_at_once]
        return MARKS[self.marks.get(bench.bench_id, "")]

    def _bench_lines(self) -> str:
        lines = ["[b]smoke results and full-run cost, per benchmark:[/]"]
        for i, b in enumerate(self.request.benches):
            pointer = "▶" if i == self.cursor and self.stage == "review" else " "
            score = f"{b.score:.3f}" if b.score is not None else "-"
            threshold = f" (≥ {b.threshold:.3f})" if b.threshold is not None else ""
            verdict = "[green]passed[/]" if b.passed else "[b red]FAILED[/]"
            smoke = f"{b.smoke_items} items" if b.smoke_items is not None else "? items"
            full = f"{b.full_items} items" if b.full_items is not None else "? items"
            lines.append(f"{pointer} {self._mark(b)}  [b]{escape(b.bench_id)}[/]: smoke {verdict} {score}{threshold} "
                         f"on {smoke}")
            lines.append(f"      full run: {full}, {cost_text(b.gpu_hours, b.wall_s)}")
            lines += [f"      - {escape(r)}" for r in b.reasons]
            if b.decided:
                lines.append(f"      [dim]{escape(b.decided)}[/]")
        if not self.request.benches:
            lines.append("  (no smoke verdict recorded)")
        return "\n".join(lines)

    def chosen(self, action: str) -> list[BenchChoice]:
        if self.all_at_once:
            return self.request.open if self.all_at_once == action else []
        return [b for b in self.request.open if self.marks.get(b.bench_id) == action]

    def _cost(self) -> str:
        approved = self.chosen("approve")
        if self.stage == "review" and not (self.marks or self.all_at_once):
            return f"cost of every undecided benchmark: {escape(total_cost(self.request.open))}"
        return f"cost of what you approve: {escape(total_cost(approved))}"

    def _window(self) -> str:
        return window_text(self.clock()) if self.clock is not None else ""

    def _prompt(self) -> str:
        req = self.request
        if not req.can_approve:
            return f"[b red]cannot decide now:[/] {escape(req.why_not)}"
        if self.stage == "review":
            return ("Mark each benchmark (a approve, x reject; enter confirms the marks) or decide them all at "
                    "once (y approve all, r reject all).")
        approve = ", ".join(b.bench_id for b in self.chosen("approve"))
        reject = ", ".join(b.bench_id for b in self.chosen("reject"))
        left = ", ".join(b.bench_id for b in self.request.open if not self.all_at_once and b.bench_id not in self.marks)
        parts = []
        if approve:
            parts.append(f"[b green]approve {escape(approve)}: spend {escape(total_cost(self.chosen('approve')))}[/]")
        if reject:
            parts.append(f"[b red]reject {escape(reject)}[/]")
        if left:
            parts.append(f"{escape(left)} stays undecided (the cell waits for it)")
        text = "; ".join(parts) + "?"
        if self.stage == "reason":
            text += "\nType the reason for rejecting below and press enter."
        return text

    def _show(self) -> None:
        for stage in STEPS:
            self.set_class(stage == self.stage, f"-{stage}")
        self.query_one(Vertical).border_title = self._title()
        self.query_one("#ad-table", Static).update(self._bench_lines())
        self.query_one("#ad-cost", Static).update(self._cost())
        self.query_one("#ad-prompt", Static).update(self._prompt())
        self.query_one("#ad-keys", Static).update(STEPS[self.stage])

    # --- keys -------------------------------------------------------------------------------------------
    def _refused(self) -> bool:
        if not self.request.can_approve:
            self.notify(self.request.why_not, severity="warning")
            return True
        return False

    def action_move(self, step: int) -> None:
        if self.stage == "review" and self.request.benches:
            self.cursor = (self.cursor + step) % len(self.request.benches)
            self._show()

    def action_mark(self, action: str) -> None:
        if self.stage != "review" or self._refused() or not self.request.benches:
            return
        bench = self.request.benches[self.cursor]
        if bench.decided:
            self.notify(f"{bench.bench_id}: {bench.decided}", severity="warning")
            return
        self.all_at_once = None
        if self.marks.get(bench.bench_id) == action:
            del self.marks[bench.bench_id]  # pressed again: unmarked
        else:
            self.marks[bench.bench_id] = action
        self._show()

    def action_approve(self) -> None:
        if self._refused():
            return
        if self.stage == "confirm":
            self._finish(None)
            return
        if self.stage == "review":
            self.all_at_once = "approve"
            self.stage = "confirm"
            self._show()

    def action_confirm(self) -> None:
        if self.stage == "confirm":
            self.action_approve()
        elif self.stage == "review" and not self._refused():
            if not self.marks:
                self.notify("mark a benchmark first (a approve, x reject), or y approves them all",
                            severity="warning")
                return
            self.stage = "reason" if self.chosen("reject") else "confirm"
            self._show()
            if self.stage == "reason":
                self.query_one(Input).focus()

    def action_reject(self) -> None:
        if self.stage != "review" or self._refused():
            return
        self.all_at_once = "reject"
        self.stage = "reason"
        self._show()
        self.query_one(Input).focus()

    def action_close(self) -> None:
        """Close from any step; nothing is decided."""
        self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        reason = event.value.strip()
        if not reason:
            self.notify("say why you reject it: the reason is kept with the run", severity="warning")
            return
        self._finish(reason)

    def _finish(self, reason: str | None) -> None:
        if self.all_at_once:
            self.dismiss(ApprovalResult(((None, self.all_at_once),), reason))
            return
        decisions = tuple((b.bench_id, self.marks[b.bench_id]) for b in self.request.open if b.bench_id in self.marks)
        self.dismiss(ApprovalResult(decisions, reason if any(a == "reject" for _, a in decisions) else None))
