"""Run folders for the console's tests, made by the real core: `Store`, `EventLog` and the real `Runner`
(state machine, decisions, smoke gate, estimates) with stand-in phases and servers (no vLLM), writing a real
vLLM log fixture as each cell's server.log. Deterministic: fixed numbers, timestamps rewritten on request.

Also runnable as a script — a detached stand-in runner for the tmux test:
    python -m tests.tui.fakecore EXP RUN_DIR --delay 0.3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
LOGS = ROOT / "tests" / "fixtures" / "logs"
sys.path.insert(0, str(ROOT))

from console.evals.base import EvalItem, EvalResult  # noqa: E402
from console.events import (  # noqa: E402
    AcceptanceMeasured,
    PhaseProgress,  # noqa: E402
    ResultRecorded,
    SpeedMeasured,
)
from console.experiment.loader import load_experiment  # noqa: E402
from console.run.runner import Runner, RunOptions  # noqa: E402

EXP = """\
[experiment]
name = "tuidemo"
description = "stand-in phases for the console tests"
[serving]
max_model_len = 4096
[[models]]
id = "tiny"
path = "x"
total_params_b = 0.00157
bytes_per_param = 2
precision = "bf16"
toy = true
[[techniques]]
id = "ar"
method = "ar"
[[techniques]]
id = "draft-k4"
method = "draft_model"
k = 4
draft_model = "y"
[[techniques]]
id = "ngram-k4"
method = "ngram"
k = 4
config = { prompt_lookup_max = 4, prompt_lookup_min = 2 }
[workload]
contexts = [{ label = "short", tokens = 128 }]
concurrency = [1, 16]
[generation]
temperature = 0.0   # greedy, like the demo: no engine caveat, so screens look the same with or without vLLM
[[benchmarks]]
id = "toy-mcq"
framework = "builtin"
task = "toy-mcq"
options = 4
smoke_items = 5
full_items = 12
expected_output_tokens = 24
"""
TOK_S = {"ar": 100.0, "draft_model": 210.0, "ngram": 130.0}
ACCEPT = {"draft_model": (2.31, (0.62, 0.41, 0.25, 0.13), 0.3525), "ngram": (1.42, (0.21, 0.11, 0.06, 0.04), 0.105)}


class FakeServer:
    api_key = "k"
    attached = False
    log_path = None

    def __init__(self, method: str) -> None:
        self.base_url = f"http://fake/{method}"


class FakePool:
    """Servers that need no process; one per serving config, like the real pool."""

    def __init__(self) -> None:
        self.live: dict[str, FakeServer] = {}

    def acquire(self, cell: Any) -> FakeServer:
        if cell.serving_key not in self.live:
            self.live[cell.serving_key] = FakeServer(cell.method)
        return self.live[cell.serving_key]

    def release(self, key: str) -> None:
        self.live.pop(key, None)

    def close(self) -> None:
        self.live.clear()


class FakeAdapter:
    """ngram answers a wrong option (its smoke fails: not above chance); the others answer right."""

    framework = "builtin"

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay

    def run(self, bench, target, *, stage, limit, generation, out_dir, skip_ids, on_item):  # noqa: ANN001
        wrong = target.base_url.endswith("ngram")
        items = []
        for i in range(limit or 12):
            iid = f"q{i}"
            if iid in skip_ids:
                continue
            time.sleep(self.delay)
            right = "ABCD"[i % 4]
            got = "ABCD"[(i + 1) % 4] if wrong else right
            item = EvalItem(iid, f"Answer: ({got})", got, got == right, right, "stop", 5)
            on_item(item)
            items.append(item)
        return EvalResult.from_items(bench.id, "builtin", stage, items)


class FakePhases:
    """Speed: writes a real vLLM log as server.log, emits progress, speed and acceptance events."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self._adapter = FakeAdapter(delay)

    def speed(self, rc, cell, server) -> None:  # noqa: ANN001
        log = rc.cell_dir(cell) / "server.log"
        fixture = LOGS / ("cpu_ar_healthy.log" if cell.method == "ar" else
                          "cpu_spec_ngram.log" if cell.method == "ngram" else "cpu_spec_draft_model.log")
        if not log.exists():
            shutil.copyfile(fixture, log)
        total = 4
        for done in range(1, total + 1):
            time.sleep(self.delay)
            rc.emit(PhaseProgress(cell_id=cell.id, phase="speed", done=done, total=total))
        tok = TOK_S.get(cell.method, 100.0) * (1 + 0.5 * (cell.concurrency > 1))
        mal, pos, rate = ACCEPT.get(cell.method, (None, (), None))
        rc.emit(SpeedMeasured(cell_id=cell.id, context_tokens=cell.context.tokens, concurrency=cell.concurrency,
                              tok_s_median=tok, tok_s_min=tok * 0.97, tok_s_max=tok * 1.02, requests=12,
                              repeats=3, mean_acceptance_length=mal))
        if cell.method in ACCEPT:
            rc.emit(AcceptanceMeasured(cell_id=cell.id, scope="point", source="metrics", num_drafts=1000,
                                       mean_acceptance_length=mal, draft_acceptance_rate=rate,
                                       per_position_rates=pos))
            rc.emit(ResultRecorded(cell_id=cell.id, doc="acceptance", parts={"total": {
                "mean_acceptance_length": mal, "per_position_rates": list(pos), "draft_acceptance_rate": rate}}))

    def adapter(self, bench) -> FakeAdapter:  # noqa: ANN001
        return self._adapter

    def full_items(self, bench) -> int:  # noqa: ANN001
        return bench.full_items or 12


def write_experiment(folder: Path, text: str = EXP) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tuidemo.toml"
    path.write_text(text, encoding="utf-8")
    return path


def make_runner(exp_path: Path, run_dir: Path, *, cells: str | None = None, delay: float = 0.0,
                wait: bool = False, window: float = 0.0) -> Runner:
    opts = RunOptions(cells=cells, wait_for_approval=wait, poll_s=0.05, who="tester", approval_window_s=window)
    return Runner(load_experiment(exp_path), run_dir, FakePhases(delay), opts, pool=FakePool())  # type: ignore[arg-type]


def fix_timestamps(run_dir: Path, start: float = 1767225600.0) -> None:
    """Rewrite events.jsonl with fixed timestamps (1 s apart) so screens render the same every time. Events
    that only record facts for the store (the run's identity, its cells, result documents) share the next
    event's second: the screens' clocks do not depend on how many of those a run writes."""
    path = run_dir / "events.jsonl"
    lines = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    i = 0
    for d in lines:
        d["ts"] = start + i
        i += d.get("kind") not in ("run_frozen", "cells_registered", "result_recorded")
        if d.get("kind") == "run_started":
            d["pid"] = 4242
    path.write_text("".join(json.dumps(d, separators=(",", ":")) + "\n" for d in lines), encoding="utf-8")


def build_run(root: Path, stage: str = "smoke", name: str = "20260101-000000-tuidemo",
              cells: str | None = None, exp_text: str = EXP) -> tuple[Path, Path]:
    """An experiment file and a run folder at `stage`: `smoke` (c1 cells awaiting approval or smoke failed,
    c16 cells done) or `full` (AR and draft approved and done, ngram rejected)."""
    exp = write_experiment(root / "experiments", exp_text)
    run_dir = root / "runs" / name
    make_runner(exp, run_dir, cells=cells).run()
    if stage == "full":
        from console.run.store import Store

        store = Store(run_dir / "state.sqlite")
        store.decide("tiny.bf16.ar.short.c1", "approve", "tester", estimate={"gpu_hours": 0.0})
        store.decide("tiny.bf16.draft-k4.short.c1", "approve", "tester", estimate={"gpu_hours": 0.0})
        store.close()
        make_runner(exp, run_dir).run()
    fix_timestamps(run_dir)
    return exp, run_dir


class InProcessLauncher:
    """The console's Launcher, running the real Runner (stand-in phases) in a thread instead of a detached
    process: what `specdeck run … --detach` does, minus the process."""

    def __init__(self, delay: float = 0.0, wait: bool = False, window: float = 0.0) -> None:
        self.delay = delay
        self.wait = wait
        self.window = window
        self.threads: list[threading.Thread] = []
        self.calls: list[list[str]] = []
        self.errors: list[BaseException] = []
        self._reported = 0

    def launch(self, argv: list[str], run_dir: Path):  # noqa: ANN201
        from console.app.launch import Launched

        self.calls.append(list(argv))
        cells = argv[argv.index("--cells") + 1]
        exp_path = Path(argv[1]) if argv[0] == "run" else run_dir / "experiment.toml"

        def go() -> None:
            try:
                make_runner(exp_path, run_dir, cells=cells, delay=self.delay, wait=self.wait,
                            window=self.window).run()
            except BaseException as exc:  # noqa: BLE001 - surfaced by the test
                self.errors.append(exc)

        t = threading.Thread(target=go, daemon=True)
        t.start()
        self.threads.append(t)
        return Launched(None, tuple(argv), "")

    def alive(self) -> bool:
        return any(t.is_alive() for t in self.threads)

    def take_failures(self) -> list[str]:
        out = [f"{type(e).__name__}: {e}" for e in self.errors[self._reported:]]
        self._reported = len(self.errors)
        return out

    def join(self, timeout: float = 20.0) -> None:
        for t in self.threads:
            t.join(timeout)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("experiment", type=Path)
    p.add_argument("run_dir", type=Path)
    p.add_argument("--delay", type=float, default=0.3)
    p.add_argument("--cells")
    p.add_argument("--wait", action="store_true")
    p.add_argument("--window", type=float, default=0.0, help="approval window (s)")
    a = p.parse_args()
    print(f"fake runner pid {os.getpid()}", flush=True)
    make_runner(a.experiment, a.run_dir, cells=a.cells, delay=a.delay, wait=a.wait, window=a.window).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
