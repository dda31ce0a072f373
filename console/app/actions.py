"""Operator decisions, carried out by the app when a screen asks (`ReviewCell`, `CancelCell`, `RerunSmoke`):
approve / reject, cancel, re-run smoke — each behind a dialog, recorded through the app's `RunSession`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from console.app.session import ApprovalInfo
from console.run.states import CAN_RERUN_SMOKE, CellState
from widgets.approval_dialog import ApprovalDialog, ApprovalRequest, ApprovalResult, BenchChoice, WindowClock
from widgets.confirm_dialog import ConfirmDialog

if TYPE_CHECKING:
    from console.app.app import SpecdeckApp


def _record(app: SpecdeckApp, cell_id: str, action: str, reason: str | None = None,
            bench_id: str | None = None) -> None:
    if app.session is None:
        return
    try:
        msg = app.session.decide(cell_id, action, app.snapshot, reason=reason, bench_id=bench_id)
    except Exception as exc:  # noqa: BLE001 - the store refused: say so, keep the console up
        app.notify(f"could not record {action} for {cell_id}: {exc}", severity="error", timeout=10)
        return
    app.notify(msg, timeout=8)


def bench_choices(info: ApprovalInfo) -> tuple[BenchChoice, ...]:
    """The dialog's rows: each benchmark's verdict, items and estimate, and an earlier decision if any."""
    out = []
    for b in info.benches:
        d, est = b.data, b.estimate
        items = est.get("items")
        out.append(BenchChoice(
            b.bench_id, b.passed, _num(d.get("score")), _num(d.get("threshold")),
            int(d["n"]) if d.get("n") is not None else None, int(items) if items is not None else None,
            _num(est.get("wall_s")), _num(est.get("gpu_hours")), tuple(str(r) for r in d.get("reasons") or ()),
            b.decided, b.earlier))
    return tuple(out)


def _num(x: object) -> float | None:
    return float(x) if isinstance(x, (int, float)) else None


def window_clock(app: SpecdeckApp, cell_id: str) -> WindowClock | None:
    """The approval window of `cell_id` as the app's latest snapshot shows it (read at every tick of the
    dialog). A window past its time reads 0:00; one gone early (its server stopped) reads as no server held."""
    snap = app.snapshot
    if snap is None:
        return None
    gpu = snap.gpu
    restart = gpu.startup_s / sum(gpu.starts.values()) if gpu is not None and gpu.starts else None
    for w in snap.windows:
        if w.cell_id == cell_id:
            return WindowClock(w.left(), w.config, snap.runner_alive, restart)
    return WindowClock(None, "", snap.runner_alive, restart)


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
    request = ApprovalRequest(target, bench_choices(info), can_approve=can, why_not=why)

    def done(result: ApprovalResult | None) -> None:
        if result is not None:
            for bench, action in result.decisions:
                _record(app, target, action, result.reason if action == "reject" else None, bench)

    app.push_screen(ApprovalDialog(request, lambda: window_clock(app, target)), done)


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
