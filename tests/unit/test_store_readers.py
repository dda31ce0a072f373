"""Readers never write, never shrink results, and name a damaged store once (issue #16 items 4, 5, 6)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from console.cli import main
from console.run.store import Store
from tests.tui.fakecore import build_run

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A run folder at the end of a run (stand-in phases): AR and draft approved and done, ngram rejected."""
    _, run_dir = build_run(tmp_path_factory.mktemp("built"), "full")
    _checkpoint(run_dir)
    return run_dir


def _checkpoint(run_dir: Path) -> None:
    """Fold the -wal into state.sqlite, as a runner's last close does, so the file alone is the store."""
    db = sqlite3.connect(run_dir / "state.sqlite")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def _copy(run_dir: Path, to: Path, with_wal: bool = True) -> Path:
    dest = to / run_dir.name
    ignore = None if with_wal else shutil.ignore_patterns("state.sqlite-wal", "state.sqlite-shm")
    shutil.copytree(run_dir, dest, ignore=ignore)
    return dest


def _fingerprint(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


# --- 4. readers open read-only ------------------------------------------------------------------------------------
def test_status_and_report_leave_the_store_as_it_was(finished_run, tmp_path, capsys) -> None:
    run = _copy(finished_run, tmp_path)
    before = {p.name: _fingerprint(p) for p in (run / "state.sqlite", run / "events.jsonl")}
    assert main(["status", str(run)]) == 0
    assert main(["report", str(run)]) == 0
    assert {p.name: _fingerprint(p) for p in (run / "state.sqlite", run / "events.jsonl")} == before
    reader = Store(run / "state.sqlite", readonly=True)
    assert len(reader.cells()) == 6
    from console.run.store import ReadOnlyStore

    with pytest.raises(ReadOnlyStore):
        reader.decide("tiny.bf16.ar.short.c1", "approve", "x")
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        reader.db.execute("INSERT INTO meta VALUES ('x', '1')")  # the connection itself cannot write


def _without_write_rights(argv: list[str]) -> subprocess.CompletedProcess:
    """`python -m console.cli ARGV` as a process that file modes bind: as root (which ignores them), without
    the capabilities to override them (CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH), like any other user."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: file modes cannot be enforced here")
        prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLCONFIGDIR": tempfile.mkdtemp()}
    return subprocess.run([*prefix, sys.executable, "-m", "console.cli", *argv], capture_output=True, text=True,
                          env=env, timeout=120)


@pytest.mark.parametrize("with_wal", [True, False], ids=["with -wal and -shm", "store file only"])
def test_status_and_report_work_on_another_users_read_only_run(finished_run, with_wal) -> None:
    """chmod a-w on the folder and its files (an archived run, or someone else's): both commands read it."""
    base = Path(tempfile.mkdtemp(prefix="specdeck-ro-"))
    try:
        run = _copy(finished_run, base, with_wal=with_wal)
        files = sorted(p.name for p in run.iterdir())
        csv_before = (run / "results_consolidated.csv").read_bytes()
        for p in [run, *run.rglob("*")]:
            if not p.is_symlink():
                p.chmod(0o555 if p.is_dir() else 0o444)
        status = _without_write_rights(["status", str(run)])
        assert status.returncode == 0, status.stderr
        assert "tiny.bf16.draft-k4.short.c1" in status.stdout and "Traceback" not in status.stderr
        report = _without_write_rights(["report", str(run)])
        assert report.returncode == 0, report.stderr
        assert "tiny" in report.stdout and "Traceback" not in report.stderr
        assert (run / "results_consolidated.csv").read_bytes() == csv_before
        assert sorted(p.name for p in run.iterdir()) == files
    finally:
        for p in [base, *base.rglob("*")]:
            if not p.is_symlink():
                p.chmod(0o755)
        shutil.rmtree(base)


def test_a_read_only_folder_whose_writes_sit_in_a_wal_without_shm_is_an_error_not_stale(tmp_path) -> None:
    """sqlite cannot read the -wal there (no -shm, cannot create one): saying so beats showing older results."""
    base = Path(tempfile.mkdtemp(prefix="specdeck-ro-"))
    try:
        run = base / "run"
        store = Store(run / "state.sqlite")
        store.add_cells([("a", "k", {})])
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        store.db.execute("PRAGMA wal_autocheckpoint=0")
        store.add_cells([("b", "k", {})])  # only in the -wal
        copy = base / "copy"
        copy.mkdir()
        for name in ("state.sqlite", "state.sqlite-wal"):
            shutil.copyfile(run / name, copy / name)
        store.close()
        for p in [copy, *copy.iterdir()]:
            p.chmod(0o555 if p.is_dir() else 0o444)
        status = _without_write_rights(["status", str(copy)])
        assert status.returncode == 2 and "state.sqlite-wal" in status.stderr and "cp -r" in status.stderr
        assert "Traceback" not in status.stderr
    finally:
        for p in [base, *base.rglob("*")]:
            p.chmod(0o755)
        shutil.rmtree(base)


WATCH = """
import sys
from pathlib import Path
from console.app.runview import RunModel
from console.app.watcher import RunWatcher
run = Path(sys.argv[1])
watcher = RunWatcher(run, RunModel([], "x", run))
snap, _ = watcher.poll(force=True)
print(watcher.take_problem(), sorted({c.state for c in snap.cells}))
"""


def test_the_consoles_watcher_reads_a_read_only_run(finished_run) -> None:
    base = Path(tempfile.mkdtemp(prefix="specdeck-ro-"))
    try:
        run = _copy(finished_run, base, with_wal=False)
        for p in [run, *run.rglob("*")]:
            if not p.is_symlink():
                p.chmod(0o555 if p.is_dir() else 0o444)
        prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"] if os.geteuid() == 0 else []
        if prefix and shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: file modes cannot be enforced here")
        out = subprocess.run([*prefix, sys.executable, "-c", WATCH, str(run)], capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
        assert out.returncode == 0, out.stderr
        assert out.stdout.startswith("None [") and "done" in out.stdout  # no problem; the cells as stored
    finally:
        for p in [base, *base.rglob("*")]:
            if not p.is_symlink():
                p.chmod(0o755)
        shutil.rmtree(base)


def test_a_reader_does_not_wait_behind_a_writer(finished_run, tmp_path, capsys) -> None:
    """The runner holds a write transaction; status answers at once with the last committed state."""
    run = _copy(finished_run, tmp_path)
    writer = sqlite3.connect(run / "state.sqlite", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE cells SET reason = 'uncommitted' WHERE cell_id = 'tiny.bf16.ar.short.c1'")
    try:
        t = time.monotonic()
        assert main(["status", str(run)]) == 0
        assert time.monotonic() - t < 5
        assert "uncommitted" not in capsys.readouterr().out
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_a_reader_blocked_by_a_lock_gives_up_quickly_and_says_why(tmp_path) -> None:
    """A store in rollback-journal mode whose writer holds an exclusive lock (WAL readers never wait)."""
    from console.run.store import StoreBusy

    path = tmp_path / "state.sqlite"
    Store(path).close()
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode=DELETE")
    writer.execute("BEGIN EXCLUSIVE")
    try:
        t = time.monotonic()
        with pytest.raises(StoreBusy, match="runner is writing.*Try again"):
            Store(path, readonly=True).cells()
        assert time.monotonic() - t < 10
    finally:
        writer.execute("ROLLBACK")
        writer.close()


# --- 5. report never shrinks results silently ---------------------------------------------------------------------
def test_report_refuses_to_shrink_the_results_from_a_store_copied_without_its_wal(finished_run, tmp_path,
                                                                                    capsys) -> None:
    # The runner still writing: the last results sit in state.sqlite-wal (no checkpoint yet) …
    live = _copy(finished_run, tmp_path / "live")
    holder = sqlite3.connect(live / "state.sqlite", isolation_level=None)
    holder.execute("PRAGMA wal_autocheckpoint=0")
    holder.execute("DELETE FROM eval_results")  # … here: older results, committed to the file itself
    holder.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    holder.close()
    older = live / "state.sqlite"
    copied = _copy(finished_run, tmp_path / "copied", with_wal=True)
    shutil.copyfile(older, copied / "state.sqlite")  # state.sqlite from before the last writes, no -wal
    for name in ("state.sqlite-wal", "state.sqlite-shm"):
        (copied / name).unlink(missing_ok=True)
    csv = copied / "results_consolidated.csv"
    before = csv.read_bytes()
    rows = before.count(b"\n") - 1
    assert main(["report", str(copied)]) == 2
    err = capsys.readouterr().err
    assert f"holds {rows} rows" in err and "state.sqlite-wal" in err and "--force" in err
    assert csv.read_bytes() == before  # kept, not silently shrunk
    assert main(["report", str(copied), "--force"]) == 0  # the operator's choice, said out loud
    assert csv.read_bytes().count(b"\n") - 1 < rows


def test_report_on_an_empty_store_is_an_error_and_keeps_the_results(finished_run, tmp_path, capsys) -> None:
    run = _copy(finished_run, tmp_path)
    (run / "state.sqlite").write_bytes(b"")
    csv = run / "results_consolidated.csv"
    before = csv.read_bytes()
    assert main(["report", str(run)]) == 2
    err = capsys.readouterr().err
    assert "state.sqlite: holds no specdeck store" in err and ".recover" in err
    assert csv.read_bytes() == before


# --- 6. damaged stores: one clear error -----------------------------------------------------------------------------
def _corrupt_page(p: Path) -> None:
    data = bytearray(p.read_bytes())
    for page in range(1, len(data) // 4096):  # page 1 (the schema) stays: the damage is found while reading
        data[page * 4096: page * 4096 + 64] = b"\xa5" * 64
    p.write_bytes(bytes(data))


def _truncate(p: Path) -> None:
    with p.open("r+b") as f:
        f.truncate(1000)


def _directory(p: Path) -> None:
    p.unlink()
    p.mkdir()


def _sql(stmt: str):
    def damage(p: Path) -> None:
        db = sqlite3.connect(p, isolation_level=None)
        db.execute(stmt)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
    return damage


DAMAGES = {
    "corrupt page": (_corrupt_page, "is damaged"),
    "truncated": (_truncate, "is damaged"),
    "a directory": (_directory, "is a directory"),
    "newer state": (_sql("UPDATE cells SET state = 'paused' WHERE position = 0"), "newer specdeck"),
    "bad JSON": (_sql("UPDATE cells SET info = '{oops' WHERE position = 0"), "not JSON"),
    "newer schema": (_sql("UPDATE meta SET value = '7' WHERE key = 'schema_version'"), "newer specdeck"),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_store_is_one_clear_error_in_status_and_report(damage, finished_run, tmp_path, capsys) -> None:
    run = _copy(finished_run, tmp_path)
    hurt, says = DAMAGES[damage]
    hurt(run / "state.sqlite")
    for argv in (["status", str(run)], ["report", str(run)]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith(f"specdeck {argv[0]}: {run / 'state.sqlite'}: ") and says in err, err
        assert "pip install -U specdeck" in err or ".recover" in err or "Move it" in err


def test_the_console_names_a_damaged_store_once(finished_run, tmp_path, monkeypatch) -> None:
    from console.app.runview import RunModel
    from console.app.watcher import RunWatcher
    from console.run.folder import RunFolder

    run = _copy(finished_run, tmp_path)
    watcher = RunWatcher(run, RunModel([], "x", run), store_every=0.0)
    assert watcher.poll(force=True)[0] is not None and watcher.take_problem() is None
    _sql("UPDATE cells SET state = 'paused' WHERE position = 0")(run / "state.sqlite")
    reads = []
    real = RunFolder.read_store
    monkeypatch.setattr(RunFolder, "read_store", lambda self: reads.append(1) or real(self))
    problems = []
    for _ in range(40):  # 40 looks in 2 s: the damage is reported once, and re-read only as the back-off allows
        watcher.poll()
        problems.append(watcher.take_problem())
        time.sleep(0.05)
    said = [p for p in problems if p]
    assert len(said) == 1 and "newer specdeck" in said[0]
    assert len(reads) <= 3


async def test_opening_a_damaged_run_in_the_console_says_so_and_stays_up(finished_run, tmp_path) -> None:
    from console.app.app import SpecdeckApp
    from tests.tui.fakecore import InProcessLauncher

    run = _copy(finished_run, tmp_path)
    _truncate(run / "state.sqlite")
    app = SpecdeckApp(None, runs_root=run.parent, launcher=InProcessLauncher())
    shown: list[str] = []
    async with app.run_test(size=(100, 30)) as pilot:
        app.notify = lambda msg, **kw: shown.append(str(msg))  # type: ignore[method-assign]
        assert app.open_run(run) is False
        await pilot.pause()
    assert len(shown) == 1 and "state.sqlite: is damaged" in shown[0]


# --- 6. events.jsonl: readers survive odd lines; a resume never loses its first event -------------------------------
def test_events_readers_skip_json_that_is_not_an_event(tmp_path) -> None:
    from console.events import RunStarted
    from console.run.eventlog import EventLog, read_events

    log = EventLog(tmp_path / "events.jsonl")
    log.append(RunStarted(run_id="r", experiment="x"))
    with log.path.open("a", encoding="utf-8") as f:
        f.write('"just a string"\n42\n[1, 2]\nnull\n\xff\n')
    log.append(RunStarted(run_id="r", experiment="y", resumed=True))
    events, offset = read_events(log.path)
    assert [e.experiment for e in events] == ["x", "y"] and offset == log.path.stat().st_size


def test_a_torn_last_line_does_not_swallow_the_resumed_runs_first_event(tmp_path) -> None:
    from console.events import RunStarted
    from console.run.eventlog import EventLog, read_events

    path = tmp_path / "events.jsonl"
    EventLog(path).append(RunStarted(run_id="r", experiment="first"))
    with path.open("a", encoding="utf-8") as f:
        f.write('{"kind":"cell_state","run_id":"r","cell_')  # the runner was killed mid-line
    EventLog(path).append(RunStarted(run_id="r", experiment="resumed", resumed=True))  # specdeck resume
    events, _ = read_events(path)
    assert [e.experiment for e in events] == ["first", "resumed"]


def test_a_reader_thread_and_the_runner_agree_while_it_writes(finished_run, tmp_path) -> None:
    """A read-only reader polling while a writer commits sees every commit and never errors."""
    run = _copy(finished_run, tmp_path)
    reader = Store(run / "state.sqlite", readonly=True)
    writer = Store(run / "state.sqlite")
    seen: list[int] = []
    errors: list[BaseException] = []

    def poll() -> None:
        try:
            for _ in range(200):
                seen.append(len(reader.measurements(kind="probe")))
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    t = threading.Thread(target=poll)
    t.start()
    for i in range(50):
        writer.put_measurement("tiny.bf16.ar.short.c1", "probe", str(i), {"i": i})
    t.join()
    assert not errors and seen == sorted(seen) and len(reader.measurements(kind="probe")) == 50
