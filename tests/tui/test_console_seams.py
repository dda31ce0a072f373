"""The console's seams: screens and the app talk by messages only; states are `CellState`s."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from console.app.matrix import to_row
from console.app.runview import CellInfo, CellStatus
from console.run.states import STARTABLE, TERMINAL, CellState

ROOT = Path(__file__).resolve().parents[2]
SCREENS = ["picker.py", "matrix.py", "cellview.py", "results.py", "help.py"]
APP_STATE = {"session", "launcher", "close_session", "watcher", "snapshot", "open_experiment", "open_run",
             "watch_cell", "started_run", "experiments_dir", "runs_root", "live", "max_lines"}


def app_attributes(path: Path) -> list[str]:
    """Every `self.app.X` (and `app.X`) a module reads, and every `getattr(...)` it calls."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute):
            base = node.value
            if (isinstance(base, ast.Attribute) and base.attr == "app") or (
                    isinstance(base, ast.Name) and base.id == "app"):
                found.append(node.attr)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr":
            found.append("getattr")
        if isinstance(node, ast.ImportFrom) and node.module == "console.app.app":
            found += [f"import {a.name}" for a in node.names if a.name != "SpecdeckApp"]
    return found


@pytest.mark.parametrize("name", SCREENS)
def test_screens_do_not_reach_into_the_app(name) -> None:
    """A screen posts what the operator asked for and renders what it is sent; the app's session, launcher,
    watcher and snapshot are the app's (it may read `self.app.settings` and use Textual's own API)."""
    used = set(app_attributes(ROOT / "console" / "app" / name))
    assert not used & (APP_STATE | {"getattr"}), f"{name} reaches into the app: {sorted(used & APP_STATE)}"
    assert not [u for u in used if u.startswith("import ")], f"{name} imports from app.py at run time"


def test_the_app_sends_screens_messages_not_method_calls() -> None:
    used = app_attributes(ROOT / "console" / "app" / "app.py")
    src = (ROOT / "console" / "app" / "app.py").read_text()
    assert "getattr" not in used and "show_snapshot" not in src and "show_log" not in src


def test_screen_messages_reach_the_app_by_bubbling() -> None:
    """The requests screens post bubble to the app; what the app sends a screen stays with that screen."""
    from console.app import messages as m

    for cls in (m.OpenExperiment, m.OpenRun, m.WatchCell, m.StartCells, m.ReviewCell,
                m.CancelCell, m.RerunSmoke, m.CloseRun):
        assert cls.bubble, cls
    for cls in (m.LogShown, m.CellsStarted):
        assert not cls.bubble, cls


def test_cell_states_are_typed_and_the_sets_live_in_one_place() -> None:
    info = CellInfo("m.p.t.short.c1", "m", "p", "t", "ar", "short", 1)
    c = CellStatus(info, state=CellState.AWAITING_APPROVAL, in_run=True, pending="approve")
    assert isinstance(c.state, CellState) and f"{c.state}" == "awaiting_approval" and str(c.state) == c.state.value
    assert to_row(c).state == "approved" and isinstance(to_row(c).state, str)
    done = CellStatus(info, state=CellState.DONE, in_run=True, pending="approve")
    assert to_row(done).state == "done"  # a decision on a terminal cell is not "queued"
    assert TERMINAL == {CellState.DONE, CellState.FAILED, CellState.SKIPPED, CellState.CANCELLED}
    assert CellState.AWAITING_APPROVAL not in STARTABLE and CellState.SMOKE_PASSED in STARTABLE
    for mod in ("matrix.py", "session.py", "actions.py"):
        tree = ast.parse((ROOT / "console" / "app" / mod).read_text())
        names = {t.id for n in ast.walk(tree) if isinstance(n, ast.Assign) for t in n.targets
                 if isinstance(t, ast.Name)}
        assert not names & {"TERMINAL", "STARTABLE"}, f"{mod} keeps its own copy of a state set"
