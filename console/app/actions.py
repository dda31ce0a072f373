"""Operator decisions, carried out by the app when a screen asks (`ReviewCell`, `CancelCell`, `RerunSmoke`):
approve / reject, cancel, re-run smoke — each behind a dialog, recorded through the app's `RunSession`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from console.run.states import CAN_RERUN_SMOKE, CellState
from widgets.approval_dialog import ApprovalDialog, ApprovalRequest, ApprovalResult
from widgets.confirm_dialog import ConfirmDialog

if TYPE_CHECKING:
    from console.app.app import SpecdeckApp


def _record(app: SpecdeckApp, cell_id: str, action: str, reason: str | None = None) -> None:
    if app.session is None:
        return
    try:
        msg = app.session.decide(cell_id, action, app.snapshot, reason=reason)
    except Exception as exc:  # noqa: BLE001 - the store refused: say so, keep the console up
        app.notify(f"could not record {action} for {cell_id}: {exc}", severity="error", timeout=10)
        return
    app.notify(msg, timeout=8)


def ask_approval(app: SpecdeckApp, cell_id: str) -> None:
    """Open the approval dialog for a cell (only a cell awaiting approval can be approved)."""
    snap, session = app.snapshot, app.session
    cell = snap.cell(cell_id) if snap else None
    if session is None or cell is None or not cell.in_run or not session.has_store():
        app.notify(f"{cell_id} has not run yet: start it (s); approval comes after its smoke passes",
                   severity="warning")
        return
    target = cell_id
    if cell.state is not CellState.AWAITING_APPROVAL and cell.eval_cell and cell.eval_cell != cell_id:
        target = cell.eval_cell  # accuracy (and its approval) belongs to the cell that measures it
        cell = snap.cell(target) if snap else cell
    assert cell is not None
    info = session.approval_info(target)
    can = cell.state is CellState.AWAITING_APPROVAL
    why = "" if can else (f"{target} is {cell.state}: only a cell whose smoke passed and that awaits approval "
                          "can be approved")
    request = ApprovalRequest(target, info.lines, info.gpu_hours, info.wall_s, can_approve=can, why_not=why)

    def done(result: ApprovalResult | None) -> None:
        if result is not None:
            _record(app, target, result.action, result.reason)

    app.push_screen(ApprovalDialog(request), done)


def ask_cancel(app: SpecdeckApp, cell_id: str) -> None:
    snap = app.snapshot
    cell = snap.cell(cell_id) if snap else None
    if cell is None or not cell.in_run:
        app.notify(f"{cell_id} has not started: nothing to cancel", severity="warning")
        return
    if cell.state.terminal:
        app.notify(f"{cell_id} is {cell.state} already", severity="warning")
        return

    def done(yes: bool | None) -> None:
        if yes:
            _record(app, cell_id, "cancel", "cancelled from the console")

    app.push_screen(ConfirmDialog(f"Cancel {cell_id}?",
                                  f"{cell_id} is {cell.state}. Cancelling is final: the runner stops working on it "
                                  "(measurements so far are kept)."), done)


def ask_rerun_smoke(app: SpecdeckApp, cell_id: str) -> None:
    snap = app.snapshot
    cell = snap.cell(cell_id) if snap else None
    if cell is None or cell.state not in CAN_RERUN_SMOKE:
        app.notify("smoke can be re-run once it has run (smoke failed, passed or awaiting approval)",
                   severity="warning")
        return

    def done(yes: bool | None) -> None:
        if yes:
            _record(app, cell_id, "rerun_smoke", "re-run from the console")

    app.push_screen(ConfirmDialog(f"Re-run the smoke of {cell_id}?",
                                  "Its smoke items and verdicts are cleared and scored again (after a fix to the "
                                  "grader, the template or max_tokens)."), done)
