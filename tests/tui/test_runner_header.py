"""The console on a newcomer's path (#13): the approval dialog's two steps and `esc`, one runner taking a
selection of two serving configs, a header that says only what is true, the approval window's countdown."""

from __future__ import annotations

from console.app.app import SpecdeckApp
from console.app.matrix import MatrixScreen
from console.run.store import Store
from tests.tui.conftest import state_of, wait_for
from tests.tui.fakecore import InProcessLauncher, write_experiment
from tests.tui.screen_text import screen_text
from tests.tui.test_pilot import AR1, DRAFT1, goto
from widgets.approval_dialog import ApprovalDialog


def header(app) -> str:  # noqa: ANN001
    return str(app.screen.query_one("#run-line").render())


async def test_dialog_review_then_confirm_and_esc_closes_from_any_step(smoke_run) -> None:
    _, run_dir = smoke_run
    app = SpecdeckApp(run_dir, runs_root=run_dir.parent, launcher=InProcessLauncher(), live=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: state_of(app, DRAFT1) == "awaiting_approval", what="the run")
        await goto(pilot, DRAFT1)
        for keys in ((), ("y",), ("r",)):  # review, confirm, reason: esc closes each, nothing decided
            await pilot.press("y", *keys)
            assert isinstance(app.screen, ApprovalDialog)
            step = {(): "step 1 of 2 · review", ("y",): "step 2 of 2 · confirm", ("r",): "reject: type why"}[keys]
            assert step in screen_text(app)
            await pilot.press("escape")
            assert isinstance(app.screen, MatrixScreen), keys
        await pilot.press("y", "y", "enter")  # review → confirm → enter approves
        assert isinstance(app.screen, MatrixScreen)
    assert [(d.cell_id, d.action) for d in Store(run_dir / "state.sqlite").decisions()] == [(DRAFT1, "approve")]


class LingeringLauncher(InProcessLauncher):
    """A runner process that stays alive after its runner released the run (it is still writing its
    results file, or exiting): the header must not call it `starting`."""

    def __init__(self) -> None:
        super().__init__(delay=0.3)
        self.linger = True

    def alive(self) -> bool:
        return self.linger or super().alive()


async def test_header_never_says_starting_for_a_runner_that_already_left(tmp_path) -> None:
    exp = write_experiment(tmp_path / "experiments")
    launcher = LingeringLauncher()
    app = SpecdeckApp(exp, runs_root=tmp_path / "runs", launcher=launcher)
    async with app.run_test(size=(160, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MatrixScreen), what="the matrix")
        await pilot.press("space", "s")
        await wait_for(pilot, lambda: "working" in header(app), what="the runner in the header")
        await wait_for(pilot, lambda: state_of(app, AR1) == "awaiting_approval", what="speed and smoke")
        launcher.join()
        assert launcher.alive()  # the process lingers …
        await wait_for(pilot, lambda: "no runner active" in header(app), what="the header after the runner left")
        await pilot.pause(1.2)  # … and the once-a-second refresh keeps saying so
        assert "runner starting" not in header(app) and "no runner active" in header(app)


async def test_one_runner_takes_two_configs_and_holds_the_first_server_for_its_approval(tmp_path) -> None:
    exp = write_experiment(tmp_path / "experiments")
    launcher = InProcessLauncher(delay=0.01, window=60.0)
    app = SpecdeckApp(exp, runs_root=tmp_path / "runs", launcher=launcher)
    async with app.run_test(size=(200, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MatrixScreen), what="the matrix")
        await pilot.press("space", "down", "space", "s")
        await wait_for(pilot, lambda: state_of(app, AR1) == "awaiting_approval", what="AR's smoke")
        await wait_for(pilot, lambda: "server warm for your approval" in header(app), what="the countdown")
        assert "left" in header(app) and state_of(app, DRAFT1) == "planned"  # held: one server at a time
        await goto(pilot, AR1)
        await pilot.press("y", "y", "y")
        await wait_for(pilot, lambda: state_of(app, DRAFT1) == "awaiting_approval", timeout=60,
                       what="the second config, by itself")
        assert state_of(app, AR1) == "done" and len(launcher.calls) == 1
        await goto(pilot, DRAFT1)
        await pilot.press("y", "y", "y")
        await wait_for(pilot, lambda: state_of(app, DRAFT1) == "done", what="the second full run")
        launcher.join()
        await wait_for(pilot, lambda: "no runner active" in header(app), what="the header at the end")
        assert not launcher.errors


async def test_a_start_no_runner_took_gets_one(smoke_run) -> None:
    _, run_dir = smoke_run
    Store(run_dir / "state.sqlite").decide("tiny.bf16.ngram-k4.short.c16", "start", "ops")  # the runner left
    launcher = InProcessLauncher()
    app = SpecdeckApp(run_dir, runs_root=run_dir.parent, launcher=launcher)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: len(launcher.calls) == 1, what="a runner for the orphaned start")
        assert launcher.calls[0][:4] == ["resume", str(run_dir), "--cells", "tiny.bf16.ngram-k4.short.c16"]
        launcher.join()
        await wait_for(pilot, lambda: state_of(app, "tiny.bf16.ngram-k4.short.c16") == "done", what="its cell")


async def test_a_reattached_console_shows_the_window_and_its_approval_reaches_the_running_runner(tmp_path) -> None:
    """The runner outlives the console that started it: a console opened on the run later shows the same
    countdown, and its approval is taken by that runner on its warm server (no second runner, no restart)."""
    import threading

    from tests.tui.fakecore import make_runner

    exp = write_experiment(tmp_path / "experiments")
    run_dir = tmp_path / "runs" / "20260101-000000-tuidemo"
    runner = make_runner(exp, run_dir, cells=f"{AR1},{DRAFT1}", delay=0.01, window=60.0)
    t = threading.Thread(target=runner.run, daemon=True)
    t.start()
    launcher = InProcessLauncher()
    app = SpecdeckApp(run_dir, runs_root=run_dir.parent, launcher=launcher)
    async with app.run_test(size=(200, 30)) as pilot:
        await wait_for(pilot, lambda: "server warm for your approval" in header(app), what="the countdown")
        await goto(pilot, AR1)
        await pilot.press("y", "y", "y")
        await wait_for(pilot, lambda: state_of(app, DRAFT1) == "awaiting_approval", timeout=60,
                       what="the second config after the approval")
        assert state_of(app, AR1) == "done" and not launcher.calls
        await goto(pilot, DRAFT1)
        await pilot.press("y", "y", "y")
        await wait_for(pilot, lambda: state_of(app, DRAFT1) == "done", what="the second full run")
    t.join(20)
    assert not t.is_alive() and not launcher.calls
