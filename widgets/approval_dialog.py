"""The approval dialog: smoke results, their reasons and the full run's cost, then an explicit decision.

Two clear steps: 1 review (the smoke results and the cost; `y` goes on, `r` rejects) and 2 confirm (the
GPU-hours named again; `y` or `enter` approves). Rejecting needs a reason, kept with the run. `esc` closes the
dialog from any step, deciding nothing; the footer says which step it is in. The dialog only returns the
decision (`ApprovalResult`); the app writes it to the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Static


@dataclass(frozen=True)
class ApprovalRequest:
    """What the operator decides on."""

    cell_id: str
    smoke_lines: Sequence[str]
    """Verdict lines per benchmark with reasons and per-benchmark estimates (`decide.smoke_summary`)."""
    gpu_hours: float | None
    wall_s: float | None
    can_approve: bool = True
    why_not: str = ""


@dataclass(frozen=True)
class ApprovalResult:
    """The decision: `approve` or `reject` (with the reason)."""

    action: str
    reason: str | None = None


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


def cost_line(req: ApprovalRequest) -> str:
    if req.gpu_hours is None:
        return "cost: unknown (no speed measured for this cell) — the full run may take long"
    hours = gpu_hours(req.gpu_hours)
    return f"cost: {'' if hours.startswith('<') else '≈ '}{hours}, ≈ {human_seconds(req.wall_s)} wall clock"


STEPS = {
    "review": "step 1 of 2 · review: y approve… · r reject · esc close",
    "confirm": "step 2 of 2 · confirm: y or enter approves · esc close, nothing decided",
    "reason": "reject: type why, enter sends · esc close, nothing decided",
}


class ApprovalDialog(ModalScreen[ApprovalResult | None]):
    """Review a cell's full accuracy run, then confirm it (y, y) or reject it (r, a reason); esc closes."""

    DEFAULT_CSS = """
    ApprovalDialog { align: center middle; }
    ApprovalDialog > Vertical {
        width: 90%; max-width: 110; height: auto; max-height: 90%;
        border: thick $warning; background: $surface; padding: 0 1;
    }
    ApprovalDialog.-confirm > Vertical { border: thick $success; }
    ApprovalDialog.-reason > Vertical { border: thick $error; }
    ApprovalDialog #ad-smoke { height: auto; max-height: 14; }
    ApprovalDialog #ad-cost { text-style: bold; margin-top: 1; }
    ApprovalDialog #ad-prompt { margin-top: 1; }
    ApprovalDialog Input { display: none; }
    ApprovalDialog.-reason Input { display: block; }
    ApprovalDialog #ad-keys { color: $text; background: $boost; margin-top: 1; }
    """
    BINDINGS = [
        Binding("y", "approve", "Approve"),
        Binding("enter", "confirm", "Confirm", show=False),
        Binding("r", "reject", "Reject"),
        Binding("escape", "close", "Close"),
    ]

    def __init__(self, request: ApprovalRequest) -> None:
        super().__init__()
        self.request = request
        self.stage = "review"

    def compose(self) -> ComposeResult:
        req = self.request
        with Vertical() as box:
            box.border_title = self._title()
            with VerticalScroll(id="ad-smoke"):
                yield Static("smoke results:\n" + ("\n".join(req.smoke_lines) or "  (none)"), markup=False)
            yield Static(cost_line(req), id="ad-cost", markup=False)
            yield Static(self._prompt(), id="ad-prompt")
            yield Input(placeholder="why reject? (kept with the run; enter to send, esc to close)")
            yield Static(STEPS[self.stage], id="ad-keys", markup=False)

    def _title(self) -> str:
        cell = self.request.cell_id
        return {"review": f"1/2 Review: full run of {cell}?", "confirm": f"2/2 Confirm: full run of {cell}",
                "reason": f"Reject the full run of {cell}"}[self.stage]

    def _prompt(self) -> str:
        req = self.request
        if not req.can_approve:
            return f"[b red]cannot approve now:[/] {req.why_not}"
        if self.stage == "confirm":
            hours = gpu_hours(req.gpu_hours) if req.gpu_hours is not None else None
            spend = "an unknown amount of GPU time" if hours is None else hours if hours.startswith("<") else f"≈ {hours}"
            return f"[b green]Start the full run and spend {spend}?[/]"
        if self.stage == "reason":
            return "Reject: type the reason below and press enter."
        return "Read the smoke results and the cost, then approve (y) or reject with a reason (r)."

    def _show(self) -> None:
        for stage in STEPS:
            self.set_class(stage == self.stage, f"-{stage}")
        self.query_one(Vertical).border_title = self._title()
        self.query_one("#ad-prompt", Static).update(self._prompt())
        self.query_one("#ad-keys", Static).update(STEPS[self.stage])

    def action_approve(self) -> None:
        if not self.request.can_approve:
            self.notify(self.request.why_not, severity="warning")
            return
        if self.stage == "confirm":
            self.dismiss(ApprovalResult("approve"))
            return
        self.stage = "confirm"
        self._show()

    def action_confirm(self) -> None:
        if self.stage == "confirm":
            self.action_approve()

    def action_reject(self) -> None:
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
        self.dismiss(ApprovalResult("reject", reason))
