"""The run's one write path (console/run/sink.py): an event shipped as a dict from another box is applied exactly
as a local emit; a crash between the store's commit and events.jsonl loses and duplicates nothing."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from console.bench.orchestrate import BenchOptions, BenchRunner
from console.bench.summary import load_cell_results
from console.events import (
    CellsRegistered,
    CellStateChanged,
    EvalItemDone,
    Event,
    PhaseProgress,
    SpeedMeasured,
)
from console.experiment.loader import load_experiment
from console.run.eventlog import read_events
from console.run.runner import Runner, RunOptions
from console.run.sink import EventSink

from .test_bench_fake_vllm import FakeVllm, fake_vllm  # noqa: F401 - fixture
from .test_bench_runner import DEMO, FakePool
from .test_runner import EXP, FakeAdapter, FakePhases
from .test_runner import FakePool as FakeRunnerPool

FACT_TABLES = ("meta", "cells", "transitions", "measurements", "results", "items", "eval_results", "verdicts",
               "events")


def tables(run_dir: Path) -> dict[str, list[tuple]]:
    """Every row of the tables that hold the run's facts (not the runner's lock, decisions or servers)."""
    db = sqlite3.connect(run_dir / "state.sqlite")
    try:
        return {t: sorted(db.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in FACT_TABLES}
    finally:
        db.close()


def ship(events: list[Event], run_dir: Path) -> None:
    """What the head does with a remote worker's events: JSON dicts, rebuilt and applied by a fresh sink."""
    sink = EventSink(run_dir)
    for d in [json.loads(e.to_json()) for e in events]:
        sink.apply(Event.from_dict(d))
    sink.close()


def test_a_runs_events_shipped_as_dicts_rebuild_the_same_store(write_toml, tmp_path: Path) -> None:
    exp = load_experiment(write_toml(EXP))
    seen: list[Event] = []
    runner = Runner(exp, tmp_path / "local", FakePhases(FakeAdapter("right")),
                    RunOptions(poll_s=0.05, approval_window_s=0.0, yes_after_smoke=True), on_event=seen.append,
                    pool=FakeRunnerPool())
    states = runner.run()
    assert set(states.values()) == {"done"}  # speed, smoke, the approval and the full run all happened
    ship(seen, tmp_path / "remote")
    local, remote = tables(tmp_path / "local"), tables(tmp_path / "remote")
    assert len(local["items"]) == 2 * (5 + 12) and local["verdicts"] and local["measurements"]
    for table in FACT_TABLES:
        assert remote[table] == local[table], table
    assert (tmp_path / "remote" / "events.jsonl").read_bytes() == (tmp_path / "local" / "events.jsonl").read_bytes()


async def test_a_bench_phases_events_shipped_as_dicts_rebuild_the_same_results(fake_vllm: FakeVllm,  # noqa: F811
                                                                              tmp_path: Path) -> None:
    exp = load_experiment(DEMO)
    seen: list[Event] = []
    opts = BenchOptions(phases=("speed", "categories", "latency", "determinism", "niah"), cells="*.short.c1",
                        repeats=2, requests_per_repeat=2, warmup_requests=1, max_tokens=16, category_prompts=1,
                        latency_requests=1, log_interval_s=0.01)
    bench = BenchRunner(exp, tmp_path / "local", FakePool(fake_vllm), opts, seen.append)  # type: ignore[arg-type]
    await bench.run()
    bench.sink.close()
    ship(seen, tmp_path / "remote")
    local, remote = tables(tmp_path / "local"), tables(tmp_path / "remote")
    docs = {(row[0], row[1]) for row in local["results"]}
    assert {"speed", "acceptance", "determinism", "niah", "latency"} <= {doc for _, doc in docs}
    assert local["measurements"]  # the speed summaries
    for table in FACT_TABLES:
        assert remote[table] == local[table], table
    # The bench's tables read the store, never the exports: without cells/ they are the same, and the head's
    # folder (which only ever saw events) has the same results and exports of its own.
    data = load_cell_results(tmp_path / "local", bench.cells)
    assert data["tiny.bf16.ar.short.c1"]["speed"]["summary"]["tok_s"] > 0
    shutil.rmtree(tmp_path / "local" / "cells")
    assert load_cell_results(tmp_path / "local", bench.cells) == data
    assert load_cell_results(tmp_path / "remote", bench.cells) == data
    export = tmp_path / "remote" / "cells" / "tiny.bf16.ar.short.c1" / "speed.json"
    assert json.loads(export.read_text())["summary"] == data["tiny.bf16.ar.short.c1"]["speed"]["summary"]


def _cells(n: int) -> CellsRegistered:
    return CellsRegistered(run_id="r", cells=tuple({"cell_id": f"c{i}", "serving_key": "k", "info": {}}
                                                   for i in range(n)))


def test_an_event_applied_twice_changes_nothing_the_second_time(tmp_path: Path) -> None:
    sink = EventSink(tmp_path / "run")
    sink.apply(_cells(1))
    item = EvalItemDone(run_id="r", cell_id="c0", bench_id="mcq", stage="smoke", item_id="q1", correct=True)
    move = CellStateChanged(run_id="r", cell_id="c0", old="planned", new="serving")
    assert sink.apply(item) and sink.apply(move)
    before = tables(tmp_path / "run")
    assert sink.apply(Event.from_dict(json.loads(item.to_json()))) is None  # shipped again by a retrying worker
    assert sink.apply(move) is None  # a second `planned → serving` would be refused by the state machine
    assert tables(tmp_path / "run") == before
    events, _ = read_events(tmp_path / "run" / "events.jsonl")
    assert len(events) == 3


class Killed(BaseException):
    """kill -9 between the store's commit and the line in events.jsonl."""


def test_a_crash_between_the_store_and_events_jsonl_loses_and_duplicates_nothing(tmp_path: Path,
                                                                               monkeypatch) -> None:
    run = tmp_path / "run"
    sink = EventSink(run)
    sink.apply(_cells(2))
    sink.apply(PhaseProgress(run_id="r", phase="speed", done=1, total=2))
    real = EventSink._catch_up

    def killed(self: EventSink) -> None:
        raise Killed

    monkeypatch.setattr(EventSink, "_catch_up", killed)
    moved = CellStateChanged(run_id="r", cell_id="c1", old="planned", new="serving")
    with pytest.raises(Killed):
        sink.apply(moved)  # committed to the store, never written to events.jsonl
    monkeypatch.setattr(EventSink, "_catch_up", real)
    assert len(read_events(run / "events.jsonl")[0]) == 2
    with (run / "events.jsonl").open("a") as f:
        f.write('{"seq":9,"kind":"phase_pro')  # and a torn line from the same crash

    again = EventSink(run)  # the resumed runner opens the run
    events, _ = read_events(run / "events.jsonl")
    assert [type(e) for e in events] == [CellsRegistered, PhaseProgress, CellStateChanged]
    assert again.store.cell("c1").state.value == "serving" and len(again.store.transitions("c1")) == 1
    assert again.apply(moved) is None  # replaying what the dead runner did applies nothing twice
    again.apply(CellStateChanged(run_id="r", cell_id="c1", old="serving", new="speed"))
    lines = [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines() if x.startswith('{"seq":')
             and x.endswith("}")]
    assert [d["seq"] for d in lines] == [1, 2, 3, 4]
    assert len(again.store.transitions("c1")) == 2


def test_a_line_complete_but_for_its_newline_is_kept_once(tmp_path: Path) -> None:
    run = tmp_path / "run"
    sink = EventSink(run)
    sink.apply(_cells(1))
    sink.close()
    path = run / "events.jsonl"
    path.write_bytes(path.read_bytes().rstrip(b"\n"))  # the crash hit between the line and its newline
    EventSink(run).apply(PhaseProgress(run_id="r", phase="x"))
    assert [json.loads(x)["seq"] for x in path.read_text().splitlines()] == [1, 2]


async def test_the_runners_speed_result_is_the_speedmeasured_it_emits(fake_vllm: FakeVllm,  # noqa: F811
                                                                       tmp_path: Path) -> None:
    """run/phases.py reads nothing back: the summary the store keeps is the one its SpeedMeasured carried."""
    import asyncio

    from console.run.phases import RealPhases
    from console.run.runner import RunContext
    from console.run.sink import speed_summary
    from console.serve.server import Server

    exp = load_experiment(DEMO)
    cell = exp.cell("tiny.bf16.draft-exact-k4.short.c1")
    FakePool(fake_vllm).acquire(cell)  # a speculative fake with acceptance length 5
    sink = EventSink(tmp_path / "run", export=False)
    seen: list[Event] = []

    def emit(e: Event) -> None:
        sink.apply(e)
        seen.append(e)

    rc = RunContext(tmp_path / "run", "run", exp, sink.store, emit)
    await asyncio.to_thread(RealPhases().speed, rc, cell, Server(fake_vllm.url, None, fake_vllm.log_path))
    [point] = [e for e in seen if isinstance(e, SpeedMeasured) and e.scope == "point"]
    [(_, _, _, summary)] = sink.store.measurements(cell.id, "speed")
    assert summary == speed_summary(point)
    assert summary["tok_s"] > 0 and summary["acceptance_length"] == pytest.approx(5.0) and summary["repeats"] >= 1
    assert not (tmp_path / "run" / "cells" / cell.id / "speed.json").exists()  # no export asked for, none read
