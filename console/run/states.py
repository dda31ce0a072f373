"""The cell state machine (DESIGN.md "Cell state machine").

planned → serving → speed → smoke → smoke_passed | smoke_failed → awaiting_approval → full → done;
failed(reason) and skipped from anywhere; cancelled by the operator. Smoke can be re-run after a fix.
"""

from __future__ import annotations

from enum import Enum


class CellState(str, Enum):
    """Where a cell is. The value is what the store, events and the TUI show."""

    PLANNED = "planned"
    SERVING = "serving"
    SPEED = "speed"
    SMOKE = "smoke"
    SMOKE_PASSED = "smoke_passed"
    SMOKE_FAILED = "smoke_failed"
    AWAITING_APPROVAL = "awaiting_approval"
    FULL = "full"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (CellState.DONE, CellState.FAILED, CellState.SKIPPED, CellState.CANCELLED)


S = CellState
_ALLOWED: dict[CellState, set[CellState]] = {
    S.PLANNED: {S.SERVING},
    S.SERVING: {S.SPEED, S.SMOKE, S.FULL, S.PLANNED, S.DONE},
    S.SPEED: {S.SMOKE, S.SERVING, S.DONE},
    S.SMOKE: {S.SMOKE_PASSED, S.SMOKE_FAILED, S.SERVING},
    S.SMOKE_PASSED: {S.AWAITING_APPROVAL, S.DONE},
    S.SMOKE_FAILED: {S.SERVING, S.SMOKE},  # re-run smoke after a fix
    S.AWAITING_APPROVAL: {S.SERVING, S.FULL, S.SMOKE},  # approval (re)starts the server; reject → cancelled
    S.FULL: {S.DONE, S.SERVING},
    S.DONE: set(),
    S.FAILED: {S.PLANNED},  # an operator may retry a failed cell
    S.SKIPPED: set(),
    S.CANCELLED: set(),
}
ANYWHERE = {S.FAILED, S.SKIPPED, S.CANCELLED}


class IllegalTransition(ValueError):
    """A state change the machine does not allow (a bug, or a decision that arrived too late)."""


def check_transition(old: CellState, new: CellState) -> None:
    if new in ANYWHERE and not old.terminal:
        return
    if new not in _ALLOWED[old]:
        raise IllegalTransition(f"a cell cannot go from {old.value} to {new.value}")
