"""A stage's benchmarks side by side (console.run.side_by_side), the harness subprocesses a stop takes down
(console.evals.lmeval.stop_harnesses), and what the console and the GPU-busy figure make of overlapping phases."""

from __future__ import annotations

import _thread
import sys
import threading
import time
from pathlib import Path

import pytest

from console.app.runview import summed_progress
from console.evals import lmeval
from console.events import ServerBusy, ServerReady, ServerStarting, ServerStopped
from console.run.gpu_busy import gpu_busy
from console.run.side_by_side import side_by_side


def test_jobs_run_at_once_and_keep_their_order() -> None:
    meet = threading.Barrier(3, timeout=10)  # only passes when all three jobs are running at the same time

    def job(i: int):
        def run() -> int:
            meet.wait()
            if i == 1:
                raise ValueError("bench 1 broke")
            return i * 10
        return run

    out = side_by_side([job(0), job(1), job(2)])
    assert out[0] == 0 and out[2] == 20
    assert isinstance(out[1], ValueError) and str(out[1]) == "bench 1 broke"


def test_one_job_runs_in_the_callers_thread() -> None:
    assert side_by_side([threading.get_ident]) == [threading.get_ident()]


def test_a_stop_calls_on_abort_and_is_raised_again() -> None:
    aborted = threading.Event()

    def stopper() -> None:
        _thread.interrupt_main()  # what Ctrl-C / SIGTERM (console.commands.run.stop_like_ctrl_c) does
        aborted.wait(10)

    with pytest.raises(KeyboardInterrupt):
        side_by_side([stopper, lambda: aborted.wait(10)], on_abort=aborted.set)
    assert aborted.is_set()


def test_a_stop_inside_a_job_stops_the_stage() -> None:
    called = []

    def crash() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        side_by_side([crash, lambda: 1], on_abort=lambda: called.append(1))
    assert called == [1]


def test_stop_harnesses_ends_a_running_framework(tmp_path: Path) -> None:
    got: list[tuple[int, float, float]] = []
    t = threading.Thread(target=lambda: got.append(lmeval.run_logged(
        [sys.executable, "-c", "import time; time.sleep(60)"], {}, tmp_path, tmp_path / "log")))
    t.start()
    deadline = time.monotonic() + 10
    while not lmeval._LIVE and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lmeval.stop_harnesses() == 1
    t.join(10)
    assert got and got[0][0] < 0 and got[0][2] < 30  # terminated, not slept out
    assert not lmeval._LIVE and lmeval.stop_harnesses() == 0


def test_overlapping_busy_spans_count_once() -> None:
    events = [ServerStarting(serving_key="k", ts=0.0), ServerReady(serving_key="k", ts=10.0),
              ServerBusy(serving_key="k", phase="smoke:a", started=20.0, seconds=10.0, ts=30.0),
              ServerBusy(serving_key="k", phase="smoke:b", started=25.0, seconds=10.0, ts=35.0),
              ServerBusy(serving_key="k", phase="full:a", started=50.0, seconds=5.0, ts=55.0),
              ServerStopped(serving_key="k", ts=110.0)]
    fig = gpu_busy(events)
    assert fig.busy_s == pytest.approx(20.0)  # 20–35 and 50–55, not 10 + 10 + 5
    assert fig.up_s == pytest.approx(100.0)


def test_progress_of_side_by_side_phases_is_summed() -> None:
    assert summed_progress({}) is None
    assert summed_progress({"smoke:toy-mcq": (3, 5)}) == ("smoke:toy-mcq", 3, 5)
    assert summed_progress({"smoke:toy-mcq": (3, 5), "smoke:toy-mcq-lm": (0, 5)}) == ("smoke (2 benchmarks)", 3, 10)


def test_a_phase_under_way_counts_as_busy() -> None:
    """The console's header said "GPU busy 0% of 30 s up" through a whole speed phase: a phase's span is recorded
    when it ends. A cell in speed, smoke or full counts from its state change; the span, once recorded, replaces
    it (no double count), and a server that stops closes it."""
    from console.events import CellStateChanged

    cell = "m.fp32.ar.short.c1"
    events = [ServerStarting(serving_key="k", cell_id=cell, ts=0.0),
              ServerReady(serving_key="k", cell_id=cell, ts=10.0),
              CellStateChanged(cell_id="m.fp32.ar.short.c8", old="planned", new="speed", ts=12.0)]  # same config
    assert gpu_busy(events, now=13.0).busy_s == pytest.approx(1.0)  # under way, through its config's server
    events += [ServerBusy(serving_key="k", phase="speed", started=12.0, seconds=2.0, ts=14.0),
               CellStateChanged(cell_id="m.fp32.ar.short.c8", old="speed", new="done", ts=14.0)]
    assert gpu_busy(events, now=18.0).busy_s == pytest.approx(2.0)
    events.append(CellStateChanged(cell_id=cell, old="serving", new="speed", ts=20.0))
    fig = gpu_busy(events, now=30.0)
    assert fig.busy_s == pytest.approx(2.0 + 10.0) and fig.open_busy == 1
    assert fig.at(40.0).busy_s == pytest.approx(2.0 + 20.0)  # carried forward while nothing is logged
    events += [ServerBusy(serving_key="k", phase="speed", started=20.0, seconds=25.0, ts=45.0),
               CellStateChanged(cell_id=cell, old="speed", new="smoke_passed", ts=45.0)]
    assert gpu_busy(events, now=60.0).busy_s == pytest.approx(2.0 + 25.0)
    events += [CellStateChanged(cell_id=cell, old="smoke_passed", new="full", ts=60.0),
               ServerStopped(serving_key="k", ts=70.0)]
    assert gpu_busy(events, now=90.0).busy_s == pytest.approx(2.0 + 25.0 + 10.0)
