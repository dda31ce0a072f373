"""The approval dialog decides per benchmark (as the core does: `specdeck approve RUN CELL --bench B`) and its
countdown moves while it is open."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from console.app.app import SpecdeckApp
from console.app.matrix import MatrixScreen
from console.run.store import Store
from tests.tui.conftest import state_of, wait_for
from tests.tui.fakecore import EXP, InProcessLauncher, build_run
from tests.tui.screen_text import screen_text
from tests.tui.test_pilot import AR1, goto
from widgets.approval_dialog import ApprovalDialog

SECOND_BENCH = """
[[benchmarks]]
id = "toy-b"
framework = "builtin"
task = "toy-mcq"
options = 4
smoke_items = 5
full_items = 7
expected_output_tokens = 24
"""


def two_bench_run(tmp_path):  # noqa: ANN001, ANN201
    """A run whose AR c1 cell waits for a decision on two benchmarks (toy-mcq: 12 full items, toy-b: 7)."""
    exp, run_dir = build_run(tmp_path, "smoke", cells="tiny.bf16.ar.*", exp_text=EXP + SECOND_BENCH)
    return exp, run_dir


@asynccontextmanager
async def on_the_waiting_cell(tmp_path: Path) -> AsyncIterator[tuple[Any, Any, InProcessLauncher, Path]]:
    """(app, pilot, launcher, run folder): the console open on `two_bench_run`, the cursor on the waiting cell."""
    _, run_dir = two_bench_run(tmp_path)
    launcher = InProcessLauncher()
    app = SpecdeckApp(run_dir, runs_root=run_dir.parent, launcher=launcher)
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_for(pilot, lambda: state_of(app, AR1) == "awaiting_approval", what="the run")
        await goto(pilot, AR1)
        yield app, pilot, launcher, run_dir


def decisions(run_dir):  # noqa: ANN001, ANN201
    return [(d.cell_id, d.bench_id, d.action, d.reason) for d in Store(run_dir / "state.sqlite").decisions()]


async def test_approve_one_benchmark_reject_the_other(tmp_path) -> None:
    async with on_the_waiting_cell(tmp_path) as (app, pilot, launcher, run_dir):
        await pilot.press("y")
        assert isinstance(app.screen, ApprovalDialog)
        text = screen_text(app)
        # one row per benchmark: its smoke score, its items and its own estimate
        assert "· undecided  toy-mcq: smoke passed 1.000 (≥ 0.250) on 5 items" in text, text
        assert "· undecided  toy-b: smoke passed 1.000 (≥ 0.250) on 5 items" in text
        assert re.search(r"full run: 12 items, < 0\.01 GPU-h, ≈ \d", text) and "full run: 7 items" in text
        await pilot.press("a", "down", "x", "enter")  # approve toy-mcq, reject toy-b: a reason is asked
        assert "approve toy-mcq" in screen_text(app) and "reject toy-b" in screen_text(app)
        await pilot.press("enter")  # an empty reason is refused
        assert isinstance(app.screen, ApprovalDialog)
        await pilot.press(*"second set not needed", "enter")
        assert isinstance(app.screen, MatrixScreen)
        await wait_for(pilot, lambda: state_of(app, AR1) == "done", what="toy-mcq's full run")
        launcher.join()
    assert decisions(run_dir) == [(AR1, "toy-mcq", "approve", None), (AR1, "toy-b", "reject", "second set not needed")]
    store = Store(run_dir / "state.sqlite")
    assert len(store.items(AR1, "toy-mcq", "full")) == 12 and store.items(AR1, "toy-b", "full") == []
    assert "toy-b rejected by" in (store.cell(AR1).reason or "")


async def test_one_benchmark_now_the_rest_later_and_approve_all_is_one_key(tmp_path) -> None:
    async with on_the_waiting_cell(tmp_path) as (app, pilot, launcher, run_dir):
        await pilot.press("y", "down", "a", "enter")  # toy-b only: toy-mcq stays undecided
        assert "toy-mcq stays undecided" in screen_text(app)
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(Store(run_dir / "state.sqlite").items(AR1, "toy-b", "full")) == 7,
                       what="toy-b's full run")
        launcher.join()
        await wait_for(pilot, lambda: state_of(app, AR1) == "awaiting_approval", what="the cell waiting for toy-mcq")
        await pilot.press("y")
        assert "✓ approved   toy-b" in screen_text(app) and "already approved by" in screen_text(app)
        assert "▶ · undecided  toy-mcq" in screen_text(app)  # the cursor starts on what is left to decide
        await pilot.press("y", "y")  # approve all (what is left), confirm
        await wait_for(pilot, lambda: state_of(app, AR1) == "done", what="toy-mcq's full run")
        launcher.join()
    assert decisions(run_dir) == [(AR1, "toy-b", "approve", None), (AR1, None, "approve", None)]


async def test_the_countdown_ticks_while_the_dialog_is_open(tmp_path) -> None:
    from tests.tui.fakecore import write_experiment

    exp = write_experiment(tmp_path / "experiments")
    launcher = InProcessLauncher(delay=0.01, window=30.0)
    app = SpecdeckApp(exp, runs_root=tmp_path / "runs", launcher=launcher)
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MatrixScreen), what="the matrix")
        await pilot.press("space", "s")
        await wait_for(pilot, lambda: bool(app.snapshot and app.snapshot.windows), what="the approval window")
        await goto(pilot, AR1)
        await pilot.press("y")
        assert isinstance(app.screen, ApprovalDialog)
        window = str(app.screen.query_one("#ad-window").render())
        first = re.search(r"(\d+):(\d\d) left", window)
        assert first and "At 0:00 it stops the server" in window, window
        assert "keeps the tiny.bf16.ar server warm" in window  # the config by name, not its serving-key hash
        await wait_for(pilot, lambda: re.search(r"(\d+):(\d\d) left", str(app.screen.query_one("#ad-window").render()))
                       .group(0) != first.group(0), timeout=10, what="the countdown to move")
        await pilot.press("escape")
        await goto(pilot, AR1)
        await pilot.press("x", "y")  # cancel the cell: the runner lets its server go and leaves
        launcher.join()


def test_what_the_window_line_says_at_each_moment() -> None:
    from widgets.approval_dialog import WindowClock, window_text

    assert "4:10 left" in window_text(WindowClock(249.2, "tiny.bf16.ar"))
    assert "0:01 left" in window_text(WindowClock(0.4, "tiny.bf16.ar"))  # rounded up, never 0:00 while open
    closed = window_text(WindowClock(0.0, "tiny.bf16.ar", restart_s=120.0))
    assert "0:00" in closed and "approving still works and starts it again" in closed and "2.0 min" in closed
    assert "no server is kept warm" in window_text(WindowClock(None))
    assert "no runner is active" in window_text(WindowClock(300.0, "k", runner_alive=False))


async def test_y_on_a_cell_with_nothing_to_decide_reviews_the_one_that_waits(tmp_path) -> None:
    """The header says "1 awaiting approval (y)"; with the cursor on another cell (a done one, or the first
    row), `y` opened that cell's dialog: the demo in tmux kept reviewing AR's finished run while draft-exact
    waited. It now reviews the waiting cell and moves the cursor to it."""
    _, run_dir = two_bench_run(tmp_path)
    app = SpecdeckApp(run_dir, runs_root=run_dir.parent, launcher=InProcessLauncher())
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_for(pilot, lambda: state_of(app, AR1) == "awaiting_approval", what="the run")
        other = next(c for c in app.screen.matrix.visible_ids if c != AR1)
        await goto(pilot, other)
        assert app.screen.matrix.current_cell_id == other
        await pilot.press("y")
        assert isinstance(app.screen, ApprovalDialog)
        assert f"full run of {AR1}" in screen_text(app)
        await pilot.press("escape")
        assert app.screen.matrix.current_cell_id == AR1
