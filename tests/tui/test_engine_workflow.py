"""The console against the real core and real vLLM, end to end: select the demo model's AR cell, start it
(the real detached runner: `specdeck run … --detach`), watch its live vLLM log and smoke, approve, let the
second runner do the full run, read the results tables. Slow (two server starts on CPU): marked `engine`.

Skips without vLLM unless SPECDECK_REQUIRE_ENGINE=1 (CI), like tests/engine.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import time

import pytest

from console.app.app import SpecdeckApp
from console.app.cellview import CellScreen
from console.app.launch import DetachedLauncher
from console.app.matrix import MatrixScreen
from console.app.results import ResultsScreen
from console.run.store import Store
from tests.tiny_experiment import tiny_experiment_toml
from tests.tui.conftest import state_of, wait_for
from tests.tui.screen_text import screen_text
from widgets.approval_dialog import ApprovalDialog
from widgets.log_pane import LogPane

HAVE_VLLM = importlib.util.find_spec("vllm") is not None
pytestmark = [
    pytest.mark.engine,
    pytest.mark.skipif(not HAVE_VLLM and not os.environ.get("SPECDECK_REQUIRE_ENGINE"),
                       reason="vLLM not installed: bash setup.sh --cpu"),
]
CELL = "tiny.bf16.ar.short.c1"
EXP = tiny_experiment_toml(
    "tuie2e", "The console's end-to-end test: the demo's AR cell on real vLLM, a small workload, a short full run.")


async def test_real_vllm_from_selection_to_results(tmp_path) -> None:
    from console.models import build_models, default_models_dir

    build_models(default_models_dir())
    exp = tmp_path / "tuie2e.toml"
    exp.write_text(EXP)
    launcher = DetachedLauncher()
    app = SpecdeckApp(exp, runs_root=tmp_path / "runs", launcher=launcher)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, MatrixScreen), what="the matrix")
            await pilot.press("space", "s")
            await wait_for(pilot, lambda: bool(launcher.pids), what="the detached runner")
            await pilot.press("enter")
            assert isinstance(app.screen, CellScreen)
            pane = app.screen.query_one(LogPane)
            await wait_for(pilot, lambda: any("vllm" in line.lower() for line in pane.view.lines), timeout=300,
                           what="the live vLLM log")
            await wait_for(pilot, lambda: state_of(app, CELL) in ("awaiting_approval", "smoke_failed", "failed"),
                           timeout=1200, what="speed and smoke on real vLLM")
            cell = app.snapshot.cell(CELL) if app.snapshot else None
            assert cell is not None and cell.state != "failed", cell and cell.reason
            assert cell.tok_s and cell.verdicts
            await pilot.press("3")
            await wait_for(pilot, lambda: "measured (speed phase)" in screen_text(app), timeout=10,
                           what="the throughput tab")
            await pilot.press("4")
            await pilot.press("y")
            assert isinstance(app.screen, ApprovalDialog)
            # The trained toy passes its smoke (tests/engine/test_evals_engine.py); a failure here is a bug.
            assert cell.state == "awaiting_approval", (cell.state, cell.reason)
            await pilot.press("y", "y")
            await wait_for(pilot, lambda: state_of(app, CELL) == "done", timeout=600, what="the full run")
            await pilot.press("R")
            assert isinstance(app.screen, ResultsScreen)
            short = CELL.split(".", 2)[2]  # the tables group cells by model.precision: "ar.short.c1"
            await wait_for(pilot, lambda: short in screen_text(app), timeout=60, what="the throughput table")
            await pilot.press("2")
            await wait_for(pilot, lambda: "toy-mcq" in screen_text(app), timeout=60, what="the accuracy table")
            run_dir = app.session.run_dir if app.session else None
            assert run_dir is not None
        store = Store(run_dir / "state.sqlite")
        assert len(store.items(CELL, "toy-mcq", "full")) == 8
        assert [d.action for d in store.decisions()] == ["approve"]
    finally:
        deadline = time.monotonic() + 120  # a --no-wait runner leaves by itself once nothing is left to do
        while launcher.alive() and time.monotonic() < deadline:
            time.sleep(0.5)
        for pid in list(launcher.pids):  # one left over by a failure: SIGINT lets it stop its server
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGINT)
