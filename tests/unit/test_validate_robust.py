"""#16 item 13: `validate` and `tui FILE` give every file its own clear verdict, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.cli import main
from console.experiment import loader
from tests.unit.test_spec import BASE, ROOT

DEMO = ROOT / "experiments" / "demo.toml"

BAD_BYTES = [
    ("binary", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "is not a text file (NUL byte at offset 8)", 3),
    ("latin1", BASE.replace('name = "t"', 'name = "t"\ndescription = "café"').encode("latin-1"),
     "is not UTF-8 (byte 0xe9)", 3),
    ("utf16-bom", BASE.encode("utf-16"), "is UTF-16 text", 1),
    ("utf16-le", BASE.encode("utf-16-le"), "looks like UTF-16 text", 1),
    ("deep-array", b"[experiment]\nname = \"t\"\nx = " + b"[" * 5000 + b"]" * 5000 + b"\n",
     "nested more than 100 arrays or tables deep", 3),
    ("deep-table", b"x = " + b"{a=" * 3000 + b"1" + b"}" * 3000 + b"\n", "nested more than 100", 1),
]


@pytest.mark.parametrize("name,data,fragment,line", BAD_BYTES, ids=[b[0] for b in BAD_BYTES])
def test_unreadable_content_is_a_clear_problem(tmp_path, capsys, name, data, fragment, line) -> None:
    bad = tmp_path / f"{name}.toml"
    bad.write_bytes(data)
    code = main(["validate", "-q", str(bad), str(DEMO)])
    out, err = capsys.readouterr()
    assert code == 1
    assert f"{bad}:{line}: {fragment}" in err, err
    assert "Traceback" not in err and f"{bad}: INVALID (1 problem(s))" in err
    assert f"{DEMO}: valid" in out  # the next file still gets its verdict


def test_utf8_with_bom_is_read(tmp_path, capsys) -> None:
    f = tmp_path / "bom.toml"
    f.write_bytes(b"\xef\xbb\xbf" + BASE.encode())
    assert main(["validate", "-q", str(f)]) == 0


def test_permission_denied_and_directory(tmp_path, capsys, monkeypatch) -> None:
    locked = tmp_path / "locked.toml"
    locked.write_text(BASE)
    real = Path.read_bytes

    def deny(self: Path) -> bytes:
        if self.name == "locked.toml":
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", deny)
    folder = tmp_path / "folder.toml"
    folder.mkdir()
    code = main(["validate", "-q", str(locked), str(folder), str(DEMO)])
    out, err = capsys.readouterr()
    assert code == 1 and "Traceback" not in err
    assert f"{locked}: permission denied: make it readable" in err
    assert f"{folder}: is a directory" in err
    assert f"{DEMO}: valid" in out


def test_a_bug_on_one_file_does_not_stop_the_others(tmp_path, capsys, monkeypatch) -> None:
    real = loader.expand_cells
    first = tmp_path / "first.toml"
    first.write_text(BASE)

    def explode(spec):
        if spec.experiment.name == "t":
            raise RuntimeError("boom")
        return real(spec)

    monkeypatch.setattr(loader, "expand_cells", explode)
    code = main(["validate", "-q", str(first), str(DEMO)])
    out, err = capsys.readouterr()
    assert code == 1
    assert f"{first}: INVALID: specdeck could not check it (RuntimeError: boom)" in err
    assert f"{DEMO}: valid" in out


def test_tui_with_a_binary_file_says_why(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"\x00\x01\x02")
    assert main(["tui", str(bad)]) == 1
    assert "is not a text file" in capsys.readouterr().err
