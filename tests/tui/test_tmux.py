"""End to end in a real terminal: `specdeck tui RUN_DIR` in tmux (send-keys / capture-pane) on a run owned by a
separate runner process in its own session; the console is killed mid-run (an SSH drop) and reattached.

The runner is the real `Runner` with stand-in phases (tests/tui/fakecore.py, run as a script) so the test
needs no vLLM; the console is the installed `specdeck` command. Needs tmux (CI: `apt-get install -y tmux`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from console.run.store import Store
from tests.tiny_experiment import tiny_experiment_toml
from tests.tui.fakecore import write_experiment

ROOT = Path(__file__).resolve().parents[2]
TMUX = shutil.which("tmux")
pytestmark = pytest.mark.skipif(TMUX is None, reason="tmux is not installed: apt-get install -y tmux")
DRAFT1 = "tiny.bf16.draft-k4.short.c1"
ARTIFACTS = Path(os.environ.get("SPECDECK_TMUX_ARTIFACTS", "")) if os.environ.get("SPECDECK_TMUX_ARTIFACTS") else None


def specdeck() -> str:
    script = Path(sys.executable).parent / "specdeck"
    return str(script) if script.exists() else f"{sys.executable} -m console.cli"


class Tmux:
    """One private tmux server (its own socket), so nothing else the machine runs is touched."""

    def __init__(self) -> None:
        self.socket = f"specdeck-test-{os.getpid()}"

    def run(self, *args: str) -> str:
        out = subprocess.run([TMUX or "tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=30)
        return out.stdout

    def start(self, name: str, command: str) -> None:
        self.run("new-session", "-d", "-s", name, "-x", "100", "-y", "30", command)

    def keys(self, name: str, *keys: str) -> None:
        for k in keys:
            self.run("send-keys", "-t", name, k)
            time.sleep(0.15)

    def screen(self, name: str) -> str:
        return self.run("capture-pane", "-p", "-t", name)

    def wait(self, name: str, text: str | Callable[[str], bool], timeout: float = 60.0) -> str:
        """Capture until `text` is on screen (or the predicate holds); fail with the last capture."""
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen(name)
            if (text in screen) if isinstance(text, str) else text(screen):
                return screen
            time.sleep(0.3)
        raise AssertionError(f"{text!r} never appeared in the pane; last capture:\n{screen}")

    def kill_server(self) -> None:
        self.run("kill-server")


def row_is(technique: str, state: str) -> Callable[[str], bool]:
    """The matrix row of `technique` at short context, c=1, shows `state`."""
    return lambda screen: any(technique in line and "short   1 " in line and f" {state} " in line
                              for line in screen.splitlines())


def save(name: str, text: str) -> None:
    if ARTIFACTS:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / f"{name}.txt").write_text(text)


def test_tui_in_tmux_survives_a_dropped_session_and_approves(tmp_path) -> None:
    exp = write_experiment(tmp_path / "experiments")
    run_dir = tmp_path / "runs" / "20260101-000000-tuidemo"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "SPECDECK_RUNS_DIR": str(tmp_path / "runs")}
    with (tmp_path / "runner.log").open("w") as log:  # a runner in its own session, like `run --detach`
        runner = subprocess.Popen([sys.executable, "-m", "tests.tui.fakecore", str(exp), str(run_dir), "--delay",
                                   "0.25", "--wait", "--cells", "tiny.bf16.*.short.c1"], cwd=ROOT, env=env,
                                  stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  start_new_session=True)
    tmux = Tmux()
    try:
        deadline = time.monotonic() + 30
        while not (run_dir / "state.sqlite").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        # COLUMNS/LINES may be exported by an imported library: the pane must size the console itself
        command = f"cd {ROOT} && exec env -u COLUMNS -u LINES TZ=UTC {specdeck()} tui {run_dir}"
        tmux.start("tui1", command)
        tmux.wait("tui1", "runner pid")
        matrix = tmux.wait("tui1", "approve?", timeout=90)  # states change live: smoke passed, awaiting approval
        save("matrix", matrix + "\n" + tmux.run("list-windows", "-F", "#{window_width}x#{window_height}"))
        assert "draft-k4" in matrix and "2.10×" in tmux.wait("tui1", "2.10×")
        tmux.keys("tui1", "Down", "Down", "Enter")
        cell = tmux.wait("tui1", "server.log")
        cell = tmux.wait("tui1", "lines · following")
        save("cell_view", cell)
        assert DRAFT1 in cell

        tmux.run("kill-session", "-t", "tui1")  # the SSH connection drops: the console dies with a SIGHUP
        time.sleep(1.0)
        assert runner.poll() is None, "the runner must outlive the console"

        tmux.start("tui2", command)  # attach again: the same run, the same state
        again = tmux.wait("tui2", "approve?")
        assert "runner pid" in again
        tmux.keys("tui2", "Down", "Down", "y")
        tmux.wait("tui2", "Review: full run of")
        tmux.keys("tui2", "y")
        tmux.wait("tui2", "step 2 of 2 · confirm")
        tmux.keys("tui2", "y")
        done = tmux.wait("tui2", row_is("draft-k4", "done"), timeout=90)  # the runner ran the approved full run
        save("after_approval", done)
        store = Store(run_dir / "state.sqlite")
        assert store.cell(DRAFT1).state.value == "done"
        assert store.decisions()[0].action == "approve"
        store.close()
        tmux.keys("tui2", "q")
        time.sleep(0.5)
        assert runner.poll() is None  # quitting the console does not stop the run either
    finally:
        tmux.kill_server()
        if runner.poll() is None:
            os.killpg(runner.pid, signal.SIGTERM)  # our runner, by its own process group id
            runner.wait(10)


ENGINE_EXP = tiny_experiment_toml(
    "tmuxe2e", "The console's path on real vLLM (#13): two cells of two serving configs, a small workload, a short full run.",
    ngram=True)
AR1, NGRAM1 = "tiny.bf16.ar.short.c1", "tiny.bf16.ngram-k4.short.c1"


def row_has(technique: str, state: str) -> Callable[[str], bool]:
    """A matrix row of `technique` (short context, c=1) shows `state`, whatever the column widths."""
    def check(screen: str) -> bool:
        for line in screen.splitlines():
            words = line.split()
            if technique in words and "short" in words and state in words:
                i = words.index("short")
                return words[i + 1:i + 2] == ["1"]
        return False
    return check


def header_line(screen: str) -> str:
    """The run line (it may wrap onto a second line)."""
    lines = screen.splitlines()
    return " ".join(x.strip() for x in lines[:3])


@pytest.mark.engine
@pytest.mark.skipif(importlib.util.find_spec("vllm") is None and not os.environ.get("SPECDECK_REQUIRE_ENGINE"),
                    reason="vLLM not installed: bash setup.sh --cpu")
def test_console_path_on_real_vllm_one_start_per_config(tmp_path) -> None:
    """#13 end to end in a real terminal on real vLLM: select two cells of two serving configs and start them
    from the console (the real detached runner), approve the first by the dialog inside its approval window,
    watch the second config run by itself; the header is truthful at each step and each config's server
    starts once."""
    from console.models import build_models, default_models_dir
    from console.run.eventlog import read_events
    from console.run.liveness import pid_alive

    build_models(default_models_dir())
    exp = tmp_path / "experiments" / "tmuxe2e.toml"
    exp.parent.mkdir(parents=True)
    exp.write_text(ENGINE_EXP)
    runs = tmp_path / "runs"
    tmux = Tmux()
    command = (f"cd {ROOT} && exec env -u COLUMNS -u LINES TZ=UTC SPECDECK_RUNS_DIR={runs} "
               f"{specdeck()} tui {exp}")
    try:
        tmux.run("new-session", "-d", "-s", "e2e", "-x", "140", "-y", "32", command)
        tmux.wait("e2e", "no run yet")
        tmux.keys("e2e", "Space", "Space", "s")  # ar c1 (the cursor moves on), ngram c1, start
        started = tmux.wait("e2e", lambda s: "runner starting" in s or "runner pid" in s, timeout=60)
        save("e2e_1_started", started)
        assert "mid-phase but no runner" not in header_line(started)
        held = tmux.wait("e2e", "server warm for your approval", timeout=900)  # speed + smoke of AR
        save("e2e_2_held_for_approval", held)
        assert row_has("ar", "approve?")(held) and not row_has("ngram-k4", "done")(held)
        run_dir = next(runs.iterdir())
        tmux.keys("e2e", "Up", "Up", "y")  # the cursor back to the AR cell; open the dialog
        save("e2e_3_review", tmux.wait("e2e", "step 1 of 2 · review"))
        tmux.keys("e2e", "y")
        save("e2e_4_confirm", tmux.wait("e2e", "step 2 of 2 · confirm"))
        tmux.keys("e2e", "y")
        second = tmux.wait("e2e", lambda s: f"working: {NGRAM1}" in header_line(s), timeout=900)
        save("e2e_5_second_group_by_itself", second)
        assert row_has("ar", "done")(second)
        held2 = tmux.wait("e2e", lambda s: row_has("ngram-k4", "approve?")(s) and "warm for your approval" in s,
                          timeout=900)
        save("e2e_6_second_held", held2)
        tmux.keys("e2e", "Down", "y", "y", "y")
        done = tmux.wait("e2e", lambda s: row_has("ngram-k4", "done")(s) and "no runner active" in header_line(s),
                         timeout=900)
        save("e2e_7_done_no_runner", done)
        assert "2 done" in header_line(done) and "1.0 start(s)/config" in header_line(done)
        events, _ = read_events(run_dir / "events.jsonl")
        starts: dict[str, int] = {}
        for e in events:
            if e.kind == "server_starting":
                starts[e.serving_key] = starts.get(e.serving_key, 0) + 1
        assert sorted(starts.values()) == [1, 1], starts  # one server start per serving config
        store = Store(run_dir / "state.sqlite")
        assert {c.cell_id: c.state.value for c in store.cells()} == {AR1: "done", NGRAM1: "done"}
        runner = store.runner()
        assert runner is None or not pid_alive(int(runner["pid"]))
        store.close()
    finally:
        tmux.kill_server()
        for run_dir in runs.glob("*"):  # a runner left by a failure: SIGINT lets it stop its server
            store = Store(run_dir / "state.sqlite")
            row = store.runner()
            store.close()
            if row:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(int(row["pid"]), signal.SIGINT)
