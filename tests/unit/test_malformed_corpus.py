"""#16 items 13 and 14: `specdeck validate` on each file of the malformed corpus prints a clear
`file:line: key: message`, never a traceback (tests/fixtures/malformed/make_malformed.py writes the corpus)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from console.cli import main

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "fixtures" / "malformed"
EXPECTED = [line.split("\t") for line in (CORPUS / "expected.tsv").read_text(encoding="utf-8").splitlines()]


def test_the_corpus_is_big_enough() -> None:
    assert len(EXPECTED) >= 40 and all((CORPUS / name).is_file() for name, _, _ in EXPECTED)


@pytest.mark.parametrize("name,line,fragment", EXPECTED, ids=[e[0] for e in EXPECTED])
def test_each_malformed_file_names_line_key_and_fix(capsys, name, line, fragment) -> None:
    path = CORPUS / name
    code = main(["validate", "-q", str(path)])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    problems = err.splitlines()[:-1]
    assert problems and all(p.startswith(f"{path}:") and p.split(":")[1].isdigit() for p in problems), err
    assert any(p.startswith(f"{path}:{line}: {fragment}") or (p.startswith(f"{path}:{line}: ") and fragment in p)
               for p in problems), err


def test_the_whole_corpus_in_one_validate_run() -> None:
    """One process, every file: each gets its own verdict, none stops the others."""
    files = [str(CORPUS / name) for name, _, _ in EXPECTED]
    done = subprocess.run([sys.executable, "-m", "console.cli", "validate", "-q", *files], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.count(": INVALID (") == len(files), done.stderr[-2000:]
