"""Start-up cost of looking up lm-eval tasks, without and with the on-disk registry cache, side by side.

Each measurement is a NEW Python process, as a run start is (a runner, `specdeck preflight`, the console):
  - lookups: `find_task` for every lm-eval benchmark of the experiment (what preflight, `prepare` and the
    runner's smoke — `group_leaves`, `missing_nltk_data` — call), timed inside the process;
  - preflight: the whole `specdeck preflight EXPERIMENT --no-network` (process start included).
"before" = an empty cache folder (what every process paid before the cache: the text pass over lm-eval's
13,986 task YAMLs, importing lm_eval.tasks, parsing the folders); "after" = the cache filled by a previous
process. The modes alternate in one loop (cold, warm, cold, warm …) so both see the same load.

    .venv/bin/python benchmarks/preflight_tasks.py                     # experiments/study-h100.toml, 3 rounds
    .venv/bin/python benchmarks/preflight_tasks.py --rounds 5 --experiment experiments/study-full.toml

Writes benchmarks/results/preflight_tasks.json. The box is shared (2 cores): the figures carry the 1-minute
load at each round; compare the two modes within a round.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

LOOKUPS = r"""
import sys, time
t0 = time.perf_counter()
from pathlib import Path
from console.experiment.loader import load_experiment
from console.preflight.lmeval_tasks import find_task
tasks = sorted({b.task for b in load_experiment(Path(sys.argv[1])).spec.benchmarks if b.framework == "lm-eval"})
t1 = time.perf_counter()
kinds = [find_task(t).kind for t in tasks]
print(time.perf_counter() - t1, ",".join(f"{t}={k}" for t, k in zip(tasks, kinds)))
"""


def load() -> float:
    return os.getloadavg()[0]


def lookups(exp: Path, cache: Path) -> tuple[float, str]:
    env = {**os.environ, "SPECDECK_CACHE_DIR": str(cache), "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", LOOKUPS, str(exp)], env=env, capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout.split()
    return float(out[0]), out[1] if len(out) > 1 else ""


def preflight(exp: Path, cache: Path) -> float:
    env = {**os.environ, "SPECDECK_CACHE_DIR": str(cache), "PYTHONPATH": str(ROOT)}
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "console.cli", "preflight", str(exp), "--no-network"], env=env,
                   capture_output=True, text=True, cwd=ROOT)  # exit 1 (not ready) is expected here
    return time.perf_counter() - t


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--experiment", type=Path, default=ROOT / "experiments" / "study-h100.toml")
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        warm = Path(tmp) / "warm"
        lookups(a.experiment, warm)  # fills the cache the "after" mode reads
        for i in range(a.rounds):
            cold = Path(tmp) / f"cold{i}"
            row: dict = {"load_1min": round(load(), 2)}
            row["lookups_before_s"], tasks = lookups(a.experiment, cold)
            row["lookups_after_s"], _ = lookups(a.experiment, warm)
            row["preflight_before_s"] = preflight(a.experiment, Path(tmp) / f"cold-pf{i}")
            row["preflight_after_s"] = preflight(a.experiment, warm)
            row["load_1min_end"] = round(load(), 2)
            rounds.append(row)
            print(json.dumps(row), flush=True)
    summary = {k: round(statistics.median(r[k] for r in rounds), 2) for k in rounds[0] if k.endswith("_s")}
    result = {"experiment": str(a.experiment.relative_to(ROOT)) if a.experiment.is_relative_to(ROOT) else
              str(a.experiment), "tasks": tasks, "rounds": rounds, "median": summary,
              "lookups_speedup": round(summary["lookups_before_s"] / max(summary["lookups_after_s"], 1e-6), 1)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "preflight_tasks.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"median": summary, "lookups_speedup": result["lookups_speedup"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
