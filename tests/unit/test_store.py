"""The durable run store: state machine, idempotent items, decisions, the one-runner lock."""

from __future__ import annotations

import multiprocessing as mp
import os

import pytest

from console.run.states import CellState, IllegalTransition
from console.run.store import RunnerBusy, Store


def make(tmp_path) -> Store:
    s = Store(tmp_path / "state.sqlite")
    s.add_cells([("a", "k1", {"model": "m"}), ("b", "k1", {})])
    return s


def test_cells_start_planned_and_follow_the_machine(tmp_path) -> None:
    s = make(tmp_path)
    assert [c.state for c in s.cells()] == [CellState.PLANNED, CellState.PLANNED]
    for new in ("serving", "speed", "smoke", "smoke_passed", "awaiting_approval", "serving", "full", "done"):
        s.set_state("a", CellState(new))
    assert s.cell("a").state is CellState.DONE
    with pytest.raises(IllegalTransition):
        s.set_state("a", CellState.FULL)
    with pytest.raises(IllegalTransition):
        s.set_state("b", CellState.FULL)  # planned → full skips the gate
    s.set_state("b", CellState.FAILED, "oom")
    assert s.cell("b").reason == "oom"
    assert s.transitions("a")[0] == ("planned", "serving", None)


def test_add_cells_again_keeps_state(tmp_path) -> None:
    s = make(tmp_path)
    s.set_state("a", CellState.SERVING)
    s.add_cells([("a", "k1", {}), ("c", "k2", {})])
    assert {c.cell_id: c.state for c in s.cells()} == {
        "a": CellState.SERVING, "b": CellState.PLANNED, "c": CellState.PLANNED}


def test_items_are_never_duplicated_and_survive_reopen(tmp_path) -> None:
    s = make(tmp_path)
    assert s.put_item("a", "mcq", "smoke", "q1", {"raw": "Answer: (B)"}, True)
    assert not s.put_item("a", "mcq", "smoke", "q1", {"raw": "again"}, False)
    s.close()
    s2 = Store(tmp_path / "state.sqlite")
    assert s2.done_items("a", "mcq", "smoke") == {"q1"}
    assert s2.items("a", "mcq", "smoke")[0]["raw"] == "Answer: (B)"


def test_decisions_are_queued_until_consumed(tmp_path) -> None:
    s = make(tmp_path)
    other = Store(tmp_path / "state.sqlite")  # e.g. the TUI's connection
    d = other.decide("a", "approve", "alice", estimate={"gpu_hours": 1.5})
    [pending] = s.decisions(pending_only=True)
    assert pending.id == d and pending.estimate == {"gpu_hours": 1.5} and pending.who == "alice"
    s.consume(d)
    assert not s.decisions(pending_only=True)
    with pytest.raises(ValueError):
        s.decide("a", "launch-missiles", "bob")


def _claim(path: str, q: mp.Queue) -> None:
    try:
        Store(path).claim_runner()
        q.put("claimed")
    except RunnerBusy as exc:
        q.put(str(exc))


def test_one_runner_per_run(tmp_path) -> None:
    s = make(tmp_path)
    s.claim_runner()
    q: mp.Queue = mp.Queue()
    p = mp.get_context("fork").Process(target=_claim, args=(str(tmp_path / "state.sqlite"), q))
    p.start()
    p.join(30)
    msg = q.get(timeout=5)
    assert f"pid {os.getpid()}" in msg
    s.release_runner()
    p = mp.get_context("fork").Process(target=_claim, args=(str(tmp_path / "state.sqlite"), q))
    p.start()
    p.join(30)
    assert q.get(timeout=5) == "claimed"


def test_release_waits_for_a_decision_on_the_runners_cells(tmp_path) -> None:
    s = make(tmp_path)
    s.claim_runner()
    d = Store(tmp_path / "state.sqlite").decide("a", "approve", "alice")
    assert not s.release_runner(unless_pending_for={"a"})  # an approval landed: the runner must stay
    assert s.runner() is not None
    assert s.release_runner(unless_pending_for={"b"})  # not its cell: another runner's business
    assert s.runner() is None
    s.claim_runner()
    s.consume(d)
    assert s.release_runner(unless_pending_for={"a"})
