"""Shared test helpers. Engine fixtures (real vLLM servers) live in tests/engine/conftest.py."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def write_toml(tmp_path: Path):
    """Write TOML text to a file in tmp_path and return its path."""

    def _write(text: str, name: str = "exp.toml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return _write


def make_punkt_tab_stub(root: Path) -> Path:
    """An nltk data folder with an EMPTY English punkt_tab model (no abbreviations, collocations or sentence
    starters): nltk loads it and tokenizes words and sentences, less cleverly than the real model. IFEval's
    checkers need punkt_tab and nothing here can download it, so tests that run the real task use this."""
    english = root / "tokenizers" / "punkt_tab" / "english"
    english.mkdir(parents=True, exist_ok=True)
    for name in ("collocations.tab", "sent_starters.txt", "abbrev_types.txt", "ortho_context.tab"):
        (english / name).touch()
    return root


@pytest.fixture
def punkt_tab_stub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """NLTK_DATA (for subprocesses) and nltk.data.path (for this process) point at an empty punkt_tab."""
    import nltk

    root = make_punkt_tab_stub(tmp_path / "nltk_data")
    monkeypatch.setenv("NLTK_DATA", str(root))
    monkeypatch.setattr(nltk.data, "path", [str(root), *nltk.data.path])
    return root
