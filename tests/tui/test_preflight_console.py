"""The console shows `specdeck preflight` problems per cell: in the matrix (cells not yet run) and the picker."""

from __future__ import annotations

from console.app.app import SpecdeckApp
from console.app.matrix import MatrixScreen, to_row
from console.app.picker import experiment_entries, with_preflight
from console.app.runview import CellInfo, CellStatus
from console.run.states import CellState
from tests.tui.conftest import wait_for
from tests.tui.fakecore import InProcessLauncher, write_experiment
from tests.tui.screen_text import screen_text
from widgets.cell_matrix import state_text

AR1 = "tiny.bf16.ar.short.c1"


def status(in_run: bool) -> CellStatus:
    info = CellInfo(cell_id=AR1, model="tiny", precision="bf16", technique="ar", method="ar", context="short",
                    concurrency=1)
    return CellStatus(info=info, state=CellState.PLANNED, in_run=in_run)


def test_a_failed_preflight_marks_a_cell_that_has_not_run():
    lines = ("✗ model: /x: no such directory", "? cost: speed: 1 run(s)")
    row = to_row(status(False), lines)
    assert row.preflight == "fail" and str(state_text(row)) == "✗ preflight"
    assert to_row(status(False), ("? cost: not priced",)).preflight == ""  # unconfirmed is not a failure
    assert str(state_text(to_row(status(True), lines))) == "planned"  # once it runs, its state shows


async def test_matrix_shows_preflight_problems_of_the_open_experiment(tmp_path):
    exp = write_experiment(tmp_path / "experiments")  # models "x" and "y": no such folders
    app = SpecdeckApp(exp, experiments_dir=exp.parent, runs_root=tmp_path / "runs", launcher=InProcessLauncher())
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MatrixScreen), what="the matrix")
        await wait_for(pilot, lambda: "✗ preflight" in screen_text(app), timeout=120, what="preflight marks")
        assert app.snapshot is not None and app.snapshot.preflight[AR1][0].startswith("✗")
        assert "preflight: ✗" in screen_text(app)  # the cursor's cell line names the problem


def test_picker_appends_the_preflight_verdict(tmp_path):
    exp = write_experiment(tmp_path / "experiments")
    entry, = experiment_entries(exp.parent)
    checked = with_preflight(entry)
    assert "preflight:" in checked.detail and "✗" in checked.detail and "specdeck preflight tuidemo.toml" in checked.detail
    assert checked.problems == ()  # preflight problems never block opening the experiment
