"""The results screen's k sweep (tab 5) and Pareto (tab 6) tabs, on a run made by the real core with stand-in
phases (fakecore.py) from an experiment that sweeps k."""

from __future__ import annotations

from console.app.app import SpecdeckApp
from console.app.results import ResultsScreen
from tests.tui.conftest import wait_for
from tests.tui.fakecore import EXP, make_runner
from tests.tui.screen_text import screen_text
from widgets.results_plots import ResultsPlot

SWEEP = EXP.replace('id = "draft-k4"\nmethod = "draft_model"\nk = 4', 'id = "draft"\nmethod = "draft_model"\nk = [2, 4]')


async def test_k_sweep_and_pareto_tabs(tmp_path) -> None:
    assert SWEEP != EXP
    exp = tmp_path / "experiments" / "sweep.toml"
    exp.parent.mkdir()
    exp.write_text(SWEEP, encoding="utf-8")
    run_dir = tmp_path / "runs" / "20260101-000000-sweep"
    make_runner(exp, run_dir).run()
    app = SpecdeckApp(run_dir, runs_root=run_dir.parent, live=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("R")
        assert isinstance(app.screen, ResultsScreen)
        await pilot.press("5")
        await wait_for(pilot, lambda: "Best k per sweep" in screen_text(app), what="the k sweep tab")
        text = screen_text(app)
        assert "draft" in text and "★" in text
        curve = app.screen.query_one("#results-k-curve", ResultsPlot)
        assert [label for label, _ in curve.curves] == ["draft short c1", "draft short c16"]
        assert [x for x, _ in curve.curves[0][1]] == [2.0, 4.0] and len(curve.marks) == 2
        await pilot.press("6")
        await wait_for(pilot, lambda: "◆ frontier" in screen_text(app), what="the Pareto tab")
        pareto = app.screen.query_one("#results-pareto", ResultsPlot)
        assert {label for label, _ in pareto.curves} >= {"ar short", "draft-k2 short", "ngram-k4 short"}
        assert pareto.marks  # the frontier points are marked
