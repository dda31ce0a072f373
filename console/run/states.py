"""The cell state machine (docs/design.md "Cell state machine").

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

    def __str__(self) -> str:  # "done", not "CellState.DONE", wherever a state is printed
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @property
    def terminal(self) -> bool:
        return self in TERMINAL

    @property
    def startable(self) -> bool:
        """A runner started for this cell has work to do (a resumed phase, or the next one)."""
        return self in STARTABLE


S = CellState
TERMINAL: frozenset[CellState] = frozenset({S.DONE, S.FAILED, S.SKIPPED, S.CANCELLED})
"""Nothing more happens to the cell (only an operator's retry takes a failed one back to planned)."""
STARTABLE: frozenset[CellState] = frozenset({S.PLANNED, S.SERVING, S.SPEED, S.SMOKE, S.FULL, S.SMOKE_PASSED})
"""States a new runner picks up: not started, mid-phase (a runner died), or between smoke and the approval
request. Not the ones that wait on a person (awaiting_approval, smoke_failed) nor terminal ones."""
CAN_RERUN_SMOKE: frozenset[CellState] = frozenset({S.SMOKE_FAILED, S.AWAITING_APPROVAL, S.SMOKE_PASSED})
"""States from which an operator may ask for the smoke to be scored again."""
_ALLOWED: dict[CellState, set[CellState]] = {
    S.PLANNED: {S.SERVING},
    S.SERVING: {S.SPEED, S.SMOKE, S.FULL, S.PLANNED, S.DONE},
    S.SPEED: {S.SMOKE, S.SERVING, S.DONE},
    S.SMOKE: {S.SMOKE_PASSED, S.SMOKE_FAILED, S.SERVING},
    S.SMOKE_PASSED: {S.AWAITING_APPROVAL, S.DONE},
    S.SMOKE_FAILED: {S.SERVING, S.SMOKE},  # re-run smoke after a fix
    # approval (re)starts the server; every benchmark rejected → cancelled, the last one rejected after others
    # ran → done
    S.AWAITING_APPROVAL: {S.SERVING, S.FULL, S.SMOKE, S.DONE},
    S.FULL: {S.DONE, S.SERVING, S.AWAITING_APPROVAL},  # back to waiting while a benchmark is undecided
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
