"""The approval dialog: smoke results, their reasons and the full run's cost, then an explicit decision.

Approving takes two presses of `y` (the second names the GPU-hours it spends); rejecting needs a reason,
kept with the run. The dialog only returns the decision (`ApprovalResult`); the app writes it to the store.
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


class ApprovalDialog(ModalScreen[ApprovalResult | None]):
    """Approve (y, then y again) or reject (r, then a reason) a cell's full accuracy run."""

    DEFAULT_CSS = """
    ApprovalDialog { align: center middle; }
    ApprovalDialog > Vertical {
        width: 90%; max-width: 110; height: auto; max-height: 90%;
        border: thick $warning; background: $surface; padding: 0 1;
    }
    ApprovalDialog #ad-smoke { height: auto; max-height: 14; }
    ApprovalDialog #ad-cost { text-style: bold; margin-top: 1; }
    ApprovalDialog #ad-prompt { margin-top: 1; }
    ApprovalDialog Input { display: none; }
    ApprovalDialog.-reason Input { display: block; }
    ApprovalDialog #ad-keys { color: $text-muted; }
    """
    BINDINGS = [
        Binding("y", "approve", "Approve"),
        Binding("r", "reject", "Reject"),
        Binding("escape", "back", "Close"),
    ]

    def __init__(self, request: ApprovalRequest) -> None:
        super().__init__()
        self.request = request
        self.stage = "review"

    def compose(self) -> ComposeResult:
        req = self.request
        with Vertical() as box:
            box.border_title = f"Full run of {req.cell_id}?"
            with VerticalScroll(id="ad-smoke"):
                yield Static("smoke results:\n" + ("\n".join(req.smoke_lines) or "  (none)"), markup=False)
            yield Static(cost_line(req), id="ad-cost", markup=False)
            yield Static(self._prompt(), id="ad-prompt")
            yield Input(placeholder="why reject? (kept with the run; enter to send, esc to go back)")
            yield Static("y approve · r reject · esc close", id="ad-keys")

    def _prompt(self) -> str:
        req = self.request
        if not req.can_approve:
            return f"[b red]cannot approve now:[/] {req.why_not}"
        if self.stage == "confirm":
            spend = f"≈ {gpu_hours(req.gpu_hours)}" if req.gpu_hours is not None else "an unknown amount of GPU time"
            return f"[b yellow]Start the full run and spend {spend}? press y again to confirm, esc to go back[/]"
        if self.stage == "reason":
            return "Reject: type the reason below and press enter."
        return "Approve the full run (y), or reject it with a reason (r)."

    def _show(self) -> None:
        self.query_one("#ad-prompt", Static).update(self._prompt())

    def action_approve(self) -> None:
        if not self.request.can_approve:
            self.notify(self.request.why_not, severity="warning")
            return
        if self.stage == "confirm":
            self.dismiss(ApprovalResult("approve"))
            return
        self.stage = "confirm"
        self._show()

    def action_reject(self) -> None:
        self.stage = "reason"
        self.add_class("-reason")
        self.query_one(Input).focus()
        self._show()

    def action_back(self) -> None:
        if self.stage == "review":
            self.dismiss(None)
            return
        self.stage = "review"
        self.remove_class("-reason")
        self.set_focus(None)
        self._show()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        reason = event.value.strip()
        if not reason:
            self.notify("say why you reject it: the reason is kept with the run", severity="warning")
            return
        self.dismiss(ApprovalResult("reject", reason))
