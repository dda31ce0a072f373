"""Operator decisions are never lost and never recorded twice (#16 items 1-3): one transaction checks and
inserts, a repeat or a contradiction is answered at once with who decided and what became of it."""

from __future__ import annotations

import multiprocessing as mp
import threading
from pathlib import Path

import pytest

from console.run.states import CellState
from console.run.store import DecisionConflict, Store

CELL = "m.bf16.ar.short.c1"


def awaiting(tmp_path: Path, benches: tuple[str, ...] = ("mcq",)) -> Store:
    s = Store(tmp_path / "state.sqlite")
    s.add_cells([(CELL, "k1", {})])
    s.set_meta("benchmarks", [{"id": b} for b in benches])
    for new in ("serving", "speed", "smoke", "smoke_passed", "awaiting_approval"):
        s.set_state(CELL, CellState(new))
    return s


def _approve(path: str, who: str, barrier) -> str:  # noqa: ANN001 - a process target
    store = Store(Path(path))
    barrier.wait()
    try:
        store.decide(CELL, "approve", who)
        return "recorded"
    except DecisionConflict as exc:
        return str(exc)
    finally:
        store.close()


def test_five_parallel_approves_from_threads_record_one_row(tmp_path) -> None:
    awaiting(tmp_path).close()
    barrier = threading.Barrier(5)
    answers: list[str] = []
    threads = [threading.Thread(target=lambda i=i: answers.append(
        _approve(str(tmp_path / "state.sqlite"), f"op{i}", barrier))) for i in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert answers.count("recorded") == 1
    assert all("already approved by op" in a and "the full run is queued" in a for a in answers if a != "recorded")
    assert len(Store(tmp_path / "state.sqlite").decisions()) == 1


def test_five_parallel_approves_from_processes_record_one_row(tmp_path) -> None:
    awaiting(tmp_path).close()
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(5)
        with ctx.Pool(5) as pool:
            answers = pool.starmap(_approve, [(str(tmp_path / "state.sqlite"), f"op{i}", barrier) for i in range(5)])
    assert answers.count("recorded") == 1, answers
    assert len(Store(tmp_path / "state.sqlite").decisions()) == 1


def test_approve_then_reject_is_answered_with_the_first_decision(tmp_path) -> None:
    s = awaiting(tmp_path)
    s.decide(CELL, "approve", "ana")
    with pytest.raises(DecisionConflict) as err:
        s.decide(CELL, "reject", "bo", reason="too slow")
    assert "already approved by ana at " in str(err.value) and "the full run is queued" in str(err.value)
    assert not err.value.repeat
    assert s.conflict(CELL, "approve") is not None and s.conflict(CELL, "approve").repeat
    s.consume(s.decisions()[0].id)
    s.set_state(CELL, CellState.FULL)
    assert "the full run is running" in str(s.conflict(CELL, "reject"))
    assert [d.action for d in s.decisions()] == ["approve"]


def test_per_benchmark_decisions_and_cancel_is_final(tmp_path) -> None:
    s = awaiting(tmp_path, ("a", "b"))
    s.decide(CELL, "approve", "ana", bench_id="a")
    s.decide(CELL, "approve", "ana", bench_id="b")  # another benchmark: recorded
    assert "(a): already approved" in str(s.conflict(CELL, "reject", "a"))
    assert s.conflict(CELL, "approve") is not None  # no benchmark left to decide
    s2 = awaiting(tmp_path / "two", ("a", "b"))
    s2.decide(CELL, "reject", "bo", bench_id="a", reason="slow")
    s2.decide(CELL, "approve", "ana")  # without --bench: the benchmarks not decided yet (b)
    s2.decide(CELL, "cancel", "cy")
    with pytest.raises(DecisionConflict, match="already cancelled by cy"):
        s2.decide(CELL, "cancel", "dee")


def test_a_repeated_start_is_one_row(tmp_path) -> None:
    s = awaiting(tmp_path)
    first = s.decide("x.y", "start", "ana")
    assert s.decide("x.y", "start", "bo") == first
    assert len(s.decisions()) == 1


def test_a_pending_start_keeps_a_leaving_runner(tmp_path) -> None:
    s = awaiting(tmp_path)
    s.claim_runner()
    s.decide("other.cell", "start", "ana")
    assert not s.release_runner(unless_pending_for={CELL})  # a newly selected cell: stay and take it
    s.consume(s.decisions()[0].id)
    assert s.release_runner(unless_pending_for={CELL})


def _run_with_awaiting_cell(write_toml, tmp_path):  # noqa: ANN001, ANN202
    from console.experiment.loader import load_experiment
    from tests.unit.test_runner import EXP, FakeAdapter, run

    exp = load_experiment(write_toml(EXP))
    run(exp, tmp_path, FakeAdapter("right"), wait_for_approval=False, cells=CELL)
    return tmp_path / "run"


def test_cli_answers_a_repeat_and_refuses_a_contradiction(write_toml, tmp_path, capsys) -> None:
    from console.cli import main

    run_dir = _run_with_awaiting_cell(write_toml, tmp_path)
    assert main(["approve", str(run_dir), CELL, "--yes"]) == 0
    assert main(["approve", str(run_dir), CELL, "--yes"]) == 0  # a repeat: answered, not recorded again
    out = capsys.readouterr()
    assert "already approved by" in out.out and "the full run is queued" in out.out
    assert main(["reject", str(run_dir), CELL, "--reason", "x"]) == 2
    assert "already approved by" in capsys.readouterr().err
    assert [d.action for d in Store(run_dir / "state.sqlite").decisions()] == ["approve"]


def test_status_shows_pending_decisions_and_stops_suggesting_approve(write_toml, tmp_path, capsys) -> None:
    from console.cli import main

    run_dir = _run_with_awaiting_cell(write_toml, tmp_path)
    assert main(["status", str(run_dir)]) == 0
    assert f"specdeck approve {run_dir} {CELL}" in capsys.readouterr().out
    Store(run_dir / "state.sqlite").decide(CELL, "approve", "ana")
    assert main(["status", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert f"{CELL}: approve by ana at" in out and "no runner is active" in out
    assert f"specdeck approve {run_dir} {CELL}" not in out
    assert "GPU busy" in out
