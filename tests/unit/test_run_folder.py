"""A run folder as one object: its paths, its store, finding runs, and the runner's liveness (one rule)."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time

import pytest

from console.run.store import Store


def _runner_row(store_path, pid: int, host: str | None = None, beat: float | None = None) -> None:
    s = Store(store_path)
    now = time.time()
    with s.tx() as c:
        c.execute("INSERT OR REPLACE INTO runner VALUES (1, ?, ?, ?, ?)",
                  (pid, host or socket.gethostname(), now, now if beat is None else beat))
    s.close()


def _status(run_dir, capsys) -> str:
    from console.commands import status

    assert status.run(argparse.Namespace(run=str(run_dir))) == 0
    return capsys.readouterr().out


def test_a_runner_killed_with_9_is_dead_at_once_in_status_and_the_picker(tmp_path, capsys) -> None:
    """Its heartbeat is still fresh (the runner beat a second ago); its pid is gone: every reader says dead."""
    from console.app.picker import run_summary

    run_dir = tmp_path / "run"
    stand_in = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _runner_row(run_dir / "state.sqlite", stand_in.pid)
        assert f"pid {stand_in.pid} on {socket.gethostname()}, alive" in _status(run_dir, capsys)
        assert "runner alive" in run_summary(run_dir)
    finally:
        stand_in.kill()
        stand_in.wait()
    out = _status(run_dir, capsys)
    assert ", alive" not in out and "dead" in out and f"specdeck resume {run_dir}" in out
    assert "runner alive" not in run_summary(run_dir)


def test_liveness_is_one_rule(tmp_path) -> None:
    from console.app.runview import RunModel
    from console.run.folder import RunFolder
    from console.run.liveness import judge

    folder = RunFolder(tmp_path / "run")
    assert folder.open_store().runner() is None and folder.runner() is None
    stand_in = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _runner_row(folder.store_path, stand_in.pid)
        assert folder.runner().alive
        model = RunModel([], "x", folder.path)
        model.apply_store([], [], [], folder.read_store().runner(), {})
        assert model.snapshot().runner_alive
    finally:
        stand_in.kill()
        stand_in.wait()
    gone = folder.runner()
    assert not gone.alive and gone.pid_gone and "dead" in gone.describe()
    model.apply_store([], [], [], folder.read_store().runner(), {})
    assert not model.snapshot().runner_alive
    # the heartbeat alone decides for a runner on another host (its pid means nothing here) …
    row = {"pid": 1, "host": "elsewhere", "started": 0.0, "heartbeat": time.time()}
    assert judge(row).alive
    assert not judge({**row, "heartbeat": time.time() - 31}).alive
    # … and a stale heartbeat is dead even if some process has that pid now
    assert not judge({**row, "pid": os.getpid(), "host": socket.gethostname(), "heartbeat": time.time() - 31}).alive
    assert judge({**row, "pid": os.getpid(), "host": socket.gethostname()}).alive


def test_the_runner_lock_uses_the_same_rule(tmp_path) -> None:
    """A runner killed with -9 a second ago does not hold the run: a resume claims it at once."""
    from console.run.folder import RunFolder

    folder = RunFolder(tmp_path / "run")
    stand_in = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    _runner_row(folder.store_path, stand_in.pid)
    stand_in.kill()
    stand_in.wait()
    store = folder.open_store()
    store.claim_runner()
    assert store.runner()["pid"] == os.getpid()


def test_paths_and_finding_runs(tmp_path, monkeypatch) -> None:
    from console.run.folder import RunFolder, RunNotFound, find_run, list_runs

    root = tmp_path / "runs"
    for name in ("20261101-000000-a", "20261102-000000-b", "20261103-000000-c"):
        RunFolder(root / name).open_store().close()
    (root / "not-a-run").mkdir()
    f = RunFolder(root / "20261101-000000-a")
    assert (f.store_path.name, f.events_path.name, f.resolved_path.name, f.experiment_copy.name) == (
        "state.sqlite", "events.jsonl", "experiment.resolved.toml", "experiment.toml")
    assert f.cell_dir("m.bf16.ar.short.c1") == f.path / "cells" / "m.bf16.ar.short.c1"
    assert f.consolidated_csv.name == "results_consolidated.csv" and f.name == "20261101-000000-a"
    assert [r.name for r in list_runs(root)] == ["20261101-000000-a", "20261102-000000-b", "20261103-000000-c"]
    assert find_run("latest", root).name == "20261103-000000-c"
    assert find_run("20261102", root).name == "20261102-000000-b"  # a unique prefix
    assert find_run(str(f.path)) == f
    with pytest.raises(RunNotFound, match="recent runs: 20261101-000000-a, 20261102"):
        find_run("2026", root)  # three match: ambiguous
    with pytest.raises(RunNotFound):
        find_run("not-a-run", root)
    monkeypatch.setenv("SPECDECK_RUNS_DIR", str(root))
    assert find_run("latest").path == root / "20261103-000000-c"  # SPECDECK_RUNS_DIR is the default root
