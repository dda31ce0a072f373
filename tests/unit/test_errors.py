"""One error base (console/errors.py), caught once in `cli.main`; a reader that leaves the pipe is no bug."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from console import cli
from console.errors import SpecdeckError

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "experiments" / "demo.toml"


def test_a_reader_that_leaves_the_pipe_ends_the_command_quietly_with_sigpipes_code() -> None:
    """`specdeck validate … | head -1` printed "INVALID: … BrokenPipeError … a bug in specdeck" and exited 1.
    Many copies of the file make the output larger than a pipe's buffer, so the write after we close is certain."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "console.cli", "validate", *[str(DEMO)] * 120],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()  # what `head -1` does after its line
    err = proc.stderr.read().decode()
    code = proc.wait(timeout=120)
    assert b"valid" in first
    assert code == cli.SIGPIPE_EXIT == 141, err
    assert "bug" not in err and "Traceback" not in err and "Exception ignored" not in err, err


def test_main_prints_message_and_fix_once_and_exits_with_the_errors_code(capsys: pytest.CaptureFixture[str],
                                                                        tmp_path: Path) -> None:
    code = cli.main(["approve", str(tmp_path / "no-such-run"), "some.cell", "--yes"])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.splitlines()
    assert lines[0].startswith("specdeck approve: no run ") and "no-such-run" in lines[0], err
    assert lines[-1].startswith("fix: ") and len(lines[-1]) > len("fix: "), err


class _Custom(SpecdeckError):
    """A subclass with its own signature, like StoreError(path, message, fix)."""

    exit_code = 3

    def __init__(self, path: str, message: str, fix: str) -> None:
        super().__init__(f"{path}: {message}", fix)
        self.path = path


def test_the_base_formats_pickles_and_keeps_subclass_fields() -> None:
    exc = _Custom("runs/x/state.sqlite", "is damaged", "copy it again")
    assert str(exc) == "runs/x/state.sqlite: is damaged — fix: copy it again"
    assert exc.report("specdeck status") == "specdeck status: runs/x/state.sqlite: is damaged\nfix: copy it again"
    back = pickle.loads(pickle.dumps(exc))  # a Ray worker or a subprocess ships it
    assert (type(back), back.path, back.message, back.fix, back.exit_code, str(back)) == (
        _Custom, exc.path, exc.message, exc.fix, 3, str(exc))
    assert SpecdeckError("no fix known").report() == "specdeck: no fix known"
    assert SpecdeckError("m", "f", exit_code=5).exit_code == 5
