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


async def test_the_picker_checks_experiments_only_when_shown_and_once(tmp_path, monkeypatch):
    """Opened on an experiment, the console pushes the matrix over the picker at once: the picker must not run
    `specdeck preflight` on every experiment underneath (it used to, twice, competing with everything else
    for the CPU: the Pilot tests' time-outs on a loaded box). Shown, it checks each experiment once."""
    import inspect

    import console.preflight.run as run

    real, by_picker = run.preflight, []

    def counted(*a, **k):  # noqa: ANN002, ANN003, ANN202
        if any(f.filename.endswith("picker.py") for f in inspect.stack()):
            by_picker.append(a[0].spec.experiment.name)
        return real(*a, **k)

    monkeypatch.setattr(run, "preflight", counted)
    exp = write_experiment(tmp_path / "experiments")
    app = SpecdeckApp(exp, experiments_dir=exp.parent, runs_root=tmp_path / "runs", launcher=InProcessLauncher())
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: "✗ preflight" in screen_text(app), what="the open experiment's preflight")
        await pilot.pause(0.5)
        assert by_picker == []  # hidden under the matrix: nothing checked
        await pilot.press("escape")  # back to the picker
        await wait_for(pilot, lambda: "preflight: " in screen_text(app), what="the picker's verdict")
        await pilot.pause(0.5)
        assert by_picker == ["tuidemo"]
