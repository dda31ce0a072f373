"""Snapshots of the main screens at 80×24 and 120×40 (the extra tabs at 80×24 only) (pytest-textual-snapshot; `--snapshot-update` to accept).

Deterministic by construction: run folders made by the real core with stand-in phases and fixed numbers,
event timestamps rewritten to fixed values, UTC, no live watcher thread (`live=False`: one synchronous
look), no clocks on screen.
"""

from __future__ import annotations

import pytest

from console.app.app import SpecdeckApp
from console.app.cellview import CellScreen

SIZES = [(80, 24), (120, 40)]
DRAFT1 = "tiny.bf16.draft-k4.short.c1"


@pytest.fixture
def make_app(tmp_path, built_runs):
    def make(stage: str, target: str | None = "run") -> SpecdeckApp:
        exp, run_dir = built_runs(stage, tmp_path)
        return SpecdeckApp(run_dir if target == "run" else None, experiments_dir=exp.parent,
                           runs_root=run_dir.parent, live=False)
    return make


def open_cell(tab: str):
    async def run_before(pilot) -> None:
        pilot.app.push_screen(CellScreen(DRAFT1))
        await pilot.pause()
        await pilot.press(tab)
        await pilot.pause(0.2)
    return run_before


async def _cursor_to_draft(pilot) -> None:
    await pilot.press("down", "down")
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_picker(snap_compare, make_app, size) -> None:
    assert snap_compare(make_app("smoke", target=None), terminal_size=size)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_matrix(snap_compare, make_app, size) -> None:
    assert snap_compare(make_app("smoke"), terminal_size=size, run_before=_cursor_to_draft)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_cell_view_log(snap_compare, make_app, size) -> None:
    assert snap_compare(make_app("smoke"), terminal_size=size, run_before=open_cell("1"))


@pytest.mark.parametrize("size", SIZES[:1], ids=lambda s: f"{s[0]}x{s[1]}")
def test_cell_view_acceptance(snap_compare, make_app, size) -> None:
    assert snap_compare(make_app("smoke"), terminal_size=size, run_before=open_cell("2"))


@pytest.mark.parametrize("size", SIZES[:1], ids=lambda s: f"{s[0]}x{s[1]}")
def test_cell_view_smoke(snap_compare, make_app, size) -> None:
    assert snap_compare(make_app("smoke"), terminal_size=size, run_before=open_cell("4"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_approval_dialog(snap_compare, make_app, size) -> None:
    async def run_before(pilot) -> None:
        await _cursor_to_draft(pilot)
        await pilot.press("y", "y")  # step 2 of 2: the confirmation that names the cost
        await pilot.pause()
    assert snap_compare(make_app("smoke"), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize(("size", "tab"), [((80, 24), "1"), ((120, 40), "1"), ((80, 24), "2")],
                         ids=["speed-80x24", "speed-120x40", "accuracy-80x24"])
def test_results(snap_compare, make_app, size, tab) -> None:
    async def run_before(pilot) -> None:
        await pilot.press("R", tab)
        await pilot.pause(0.2)
    assert snap_compare(make_app("full"), terminal_size=size, run_before=run_before)
