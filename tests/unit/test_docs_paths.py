"""The maintainer docs name files that exist, and nothing cites the design by a file the repository lacks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ["docs/design.md", "docs/architecture.md"]
PATH = re.compile(r"`([\w./-]+\.(?:py|md|toml|jsonl|csv|tcss))`|`((?:console|widgets|tests|benchmarks)/[\w./-]+)`")


def named_paths(text: str) -> set[str]:
    return {a or b for a, b in PATH.findall(text)}


@pytest.mark.parametrize("doc", DOCS)
def test_every_file_a_maintainer_doc_names_exists(doc) -> None:
    names = named_paths((ROOT / doc).read_text(encoding="utf-8"))
    assert len(names) > 10, names  # the pattern still finds what the doc names
    run_files = {"experiment.toml", "experiment.resolved.toml", "speed.json", "acceptance.json", "determinism.json",
                 "niah.json", "results_consolidated.csv", "events.jsonl", "server.log", "DESIGN.md"}
    missing = []
    for name in sorted(names):
        if Path(name).name in run_files or "<" in name:
            continue
        candidates = [ROOT / name, ROOT / "console" / name, ROOT / "docs" / name]
        if not any(c.exists() for c in candidates):
            missing.append(name)
    assert not missing, f"{doc} names files that do not exist: {missing}"


def test_nothing_cites_a_design_file_the_repository_lacks() -> None:
    cites = [f"{p.relative_to(ROOT)}" for top in ("console", "widgets", "docs", "tests")
             for p in (ROOT / top).rglob("*.*") if p.suffix in (".py", ".md")
             and "DESIGN.md" in p.read_text(encoding="utf-8", errors="replace")
             and p.name not in ("design.md", "test_docs_paths.py")]
    cites += ["README.md"] if "DESIGN.md" in (ROOT / "README.md").read_text(encoding="utf-8") else []
    assert not cites, f"cite docs/design.md instead: {cites}"
