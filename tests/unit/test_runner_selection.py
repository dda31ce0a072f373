"""One runner per run: decisions per benchmark (#16.1), a resume keeps its selection (#16.16), newly selected
cells arrive through the store, and a config waiting for approval keeps its server for the approval window
(#13.4: one start per serving config when the operator answers in time)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from console.experiment.loader import load_experiment
from console.run.runner import Runner, RunOptions
from console.run.states import CellState
from console.run.store import Store
from tests.experiment_text import benchmark
from tests.unit.test_runner import EXP, FakeAdapter, FakePhases, FakePool

AR1, AR4, DM1, DM4 = "m.bf16.ar.short.c1", "m.bf16.ar.short.c4", "m.bf16.dm.short.c1", "m.bf16.dm.short.c4"
TWO_BENCH = EXP + "\n" + benchmark("mcq2", task="toy", smoke_items=5, full_items=8, expected_output_tokens=100)


class CountingPool(FakePool):
    """Starts counted per serving config; one server at a time, like one GPU."""

    max_live = 1

    def __init__(self) -> None:
        super().__init__()
        self.per_key: dict[str, int] = {}

    def acquire(self, cell):
        if cell.serving_key not in self.live:
            for key in list(self.live):
                self.release(key)
            self.per_key[cell.serving_key] = self.per_key.get(cell.serving_key, 0) + 1
        return super().acquire(cell)


def runner(exp, run_dir: Path, pool=None, **opts) -> Runner:
    opts.setdefault("approval_window_s", 0.0)
    return Runner(exp, run_dir, FakePhases(FakeAdapter("right")), RunOptions(poll_s=0.02, **opts),
                  pool=pool or FakePool())


def in_thread(r: Runner) -> tuple[threading.Thread, dict]:
    out: dict = {}
    t = threading.Thread(target=lambda: out.update(r.run()), daemon=True)
    t.start()
    return t, out


def wait_state(store: Store, cell: str, state: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(c.cell_id == cell and c.state.value == state for c in store.cells()):
            return
        time.sleep(0.02)
    raise AssertionError(f"{cell} never reached {state}: {[(c.cell_id, c.state.value) for c in store.cells()]}")


def smoked_two_benchmarks(write_toml, tmp_path: Path):
    """AR1 of TWO_BENCH run through its smoke tests, both benchmarks awaiting a decision: (exp, run_dir, store)."""
    exp = load_experiment(write_toml(TWO_BENCH))
    run_dir = tmp_path / "run"
    runner(exp, run_dir, cells=AR1, wait_for_approval=False).run()
    return exp, run_dir, Store(run_dir / "state.sqlite")


def test_approving_one_benchmark_then_the_other_runs_both(write_toml, tmp_path) -> None:
    exp, run_dir, store = smoked_two_benchmarks(write_toml, tmp_path)
    store.decide(AR1, "approve", "ana", bench_id="mcq")
    states = runner(exp, run_dir, wait_for_approval=False).run()
    assert states[AR1] == "awaiting_approval"  # mcq2 is not decided yet: the cell is not done
    assert len(store.items(AR1, "mcq", "full")) == 12 and not store.items(AR1, "mcq2", "full")
    store.decide(AR1, "approve", "bo", bench_id="mcq2")
    states = runner(exp, run_dir, wait_for_approval=False).run()
    assert states[AR1] == "done"
    assert len(store.items(AR1, "mcq2", "full")) == 8


def test_a_rejected_benchmark_after_another_ran_leaves_the_cell_done(write_toml, tmp_path) -> None:
    exp, run_dir, store = smoked_two_benchmarks(write_toml, tmp_path)
    store.decide(AR1, "approve", "ana", bench_id="mcq2")
    store.decide(AR1, "reject", "bo", bench_id="mcq", reason="enough")
    assert runner(exp, run_dir, wait_for_approval=False).run()[AR1] == "done"
    assert "mcq rejected by bo: enough" in (store.cell(AR1).reason or "")
    assert not store.items(AR1, "mcq", "full") and len(store.items(AR1, "mcq2", "full")) == 8


def test_resume_continues_the_runs_own_selection_and_until(write_toml, tmp_path) -> None:
    exp = load_experiment(write_toml(EXP))
    run_dir = tmp_path / "run"
    runner(exp, run_dir, cells=AR1, until="speed").run()
    again = runner(exp, run_dir, wait_for_approval=False)  # `specdeck resume RUN`: no --cells
    assert [c.id for c in again.cells] == [AR1]
    assert again.run() == {AR1: "awaiting_approval"}  # not the 3 other cells of the experiment
    wider = runner(exp, run_dir, cells="m.bf16.ar.*", until="speed")  # more cells when the operator asks
    assert [c.id for c in wider.cells] == [AR1, AR4]


def test_resume_keeps_until_from_the_store(write_toml, tmp_path) -> None:
    import argparse

    from console.commands import run as run_cmd

    exp_path = write_toml(EXP)
    exp = load_experiment(exp_path)
    run_dir = tmp_path / "run"
    runner(exp, run_dir, cells=AR1, until="speed").run()
    seen: dict = {}

    class Probe(Runner):
        def run(self):  # noqa: ANN201 - what a resume would do, without doing it
            seen.update(cells=[c.id for c in self.cells], until=self.opt.until)
            return {}

    args = argparse.Namespace(until=None, cells=None, yes_after_smoke=False, no_wait=True, approval_window=None,
                              models_dir=None, retry_failed=False, detach=False)
    import console.run.runner as runner_mod

    orig = runner_mod.Runner
    runner_mod.Runner = Probe
    try:
        run_cmd.execute(None, args, run_dir, [])
    finally:
        runner_mod.Runner = orig
    assert seen == {"cells": [AR1], "until": "speed"}


def test_a_cell_selected_while_the_runner_works_is_taken_by_it(write_toml, tmp_path) -> None:
    exp = load_experiment(write_toml(EXP))
    run_dir = tmp_path / "run"
    r = runner(exp, run_dir, cells=AR1, wait_for_approval=True)
    t, out = in_thread(r)
    store = Store(run_dir / "state.sqlite")
    wait_state(store, AR1, "awaiting_approval")
    store.decide(DM1, "start", "ana")  # the console's `s` while a runner works
    wait_state(store, DM1, "awaiting_approval")
    store.decide(AR1, "reject", "ana", reason="x")
    store.decide(DM1, "reject", "ana", reason="x")
    t.join(20)
    assert not t.is_alive() and out[DM1] == "cancelled"
    assert '"kind":"cells_selected"' in (run_dir / "events.jsonl").read_text()


def test_one_server_start_per_config_when_approved_inside_the_window(write_toml, tmp_path) -> None:
    exp = load_experiment(write_toml(EXP))
    run_dir = tmp_path / "run"
    pool = CountingPool()
    r = runner(exp, run_dir, pool=pool, cells=f"{AR1},{DM1}", wait_for_approval=False, approval_window_s=60)
    t, out = in_thread(r)
    store = Store(run_dir / "state.sqlite")
    wait_state(store, AR1, "awaiting_approval")
    time.sleep(0.3)
    assert store.cell(DM1).state is CellState.PLANNED  # held: the only server waits for AR's approval
    assert list(pool.live) == [r.cells[0].serving_key]
    store.decide(AR1, "approve", "ana")
    wait_state(store, DM1, "awaiting_approval")  # then the second config runs by itself
    store.decide(DM1, "approve", "ana")
    t.join(20)
    assert not t.is_alive() and out == {AR1: "done", DM1: "done"}
    assert sorted(pool.per_key.values()) == [1, 1]
    assert '"kind":"approval_window"' in (run_dir / "events.jsonl").read_text()


def test_after_the_window_the_server_stops_and_the_next_config_runs(write_toml, tmp_path) -> None:
    exp = load_experiment(write_toml(EXP))
    run_dir = tmp_path / "run"
    pool = CountingPool()
    out = runner(exp, run_dir, pool=pool, cells=f"{AR1},{DM1}", wait_for_approval=False,
                 approval_window_s=0.3).run()
    assert out == {AR1: "awaiting_approval", DM1: "awaiting_approval"}  # both windows closed: it left
    assert pool.per_key == {k: 1 for k in pool.per_key} and not pool.live
    store = Store(run_dir / "state.sqlite")
    store.decide(AR1, "approve", "ana")  # late: the full run is queued and needs a new start
    out = runner(exp, run_dir, pool=pool, wait_for_approval=False).run()
    assert out[AR1] == "done" and max(pool.per_key.values()) == 2


def test_the_configs_other_cells_use_the_warm_server_while_it_waits(write_toml, tmp_path) -> None:
    exp = load_experiment(write_toml(EXP))
    run_dir = tmp_path / "run"
    pool = CountingPool()
    r = runner(exp, run_dir, pool=pool, cells="m.bf16.ar.*", wait_for_approval=False, approval_window_s=60)
    t, out = in_thread(r)
    store = Store(run_dir / "state.sqlite")
    wait_state(store, AR4, "done")  # measured while AR1 waits for its approval, on the same server
    assert store.cell(AR1).state is CellState.AWAITING_APPROVAL
    store.decide(AR1, "approve", "ana")
    t.join(20)
    assert out == {AR1: "done", AR4: "done"} and pool.per_key == {r.cells[0].serving_key: 1}


@pytest.mark.parametrize("device, expected", [("cpu", 300.0), ("H100 SXM", 900.0), (None, 900.0)])
def test_default_window_by_device(write_toml, device, expected) -> None:
    from console.run.runner import default_window

    text = EXP.replace('name = "t"', f'name = "t"\ndevice = "{device}"') if device else EXP
    assert default_window(load_experiment(write_toml(text))) == expected
