"""A run's facts have one write path, read from the source (nothing imported, so nothing skipped): outside
console/run/sink.py (and the SQL it uses, console/run/facts.py, and the store's own direct-write helpers) no
module calls the store's fact writers, imports console.run.facts, or holds SQL that writes a fact table."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WRITERS = {"set_meta", "add_cells", "set_state", "put_measurement", "put_item", "put_eval_result", "put_verdict",
           "clear_stage", "put_result"}
"""The fact writers of console/run/facts.py and the store's helpers of the same names."""
ALLOWED = {"console/run/sink.py", "console/run/facts.py", "console/run/store.py"}
FACT_SQL = re.compile(r"\b(INSERT|UPDATE|DELETE|REPLACE)\b[^;]*\b(meta|cells|transitions|measurements|results|items|"
                      r"eval_results|verdicts|events)\b", re.IGNORECASE | re.DOTALL)


def breaches(path: Path, rel: str) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in WRITERS:
            out.append(f"{rel}:{node.lineno} calls .{node.func.attr}()")
        elif isinstance(node, ast.ImportFrom) and (node.module == "console.run.facts" or (
                node.module == "console.run" and any(a.name == "facts" for a in node.names))):
            out.append(f"{rel}:{node.lineno} imports console.run.facts")
        elif isinstance(node, ast.Import) and any(a.name == "console.run.facts" for a in node.names):
            out.append(f"{rel}:{node.lineno} imports console.run.facts")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and FACT_SQL.search(node.value):
            out.append(f"{rel}:{node.lineno} writes a fact table in SQL")
    return out


def scanned() -> list[tuple[Path, str]]:
    files = [p for top in ("console", "widgets", "benchmarks") for p in sorted((ROOT / top).rglob("*.py"))]
    return [(p, p.relative_to(ROOT).as_posix()) for p in files]


def test_only_the_sink_writes_a_runs_facts() -> None:
    files = scanned()
    assert len(files) > 100
    found = [b for path, rel in files if rel not in ALLOWED for b in breaches(path, rel)]
    assert not found, "facts written outside the run's sink (emit an event instead):\n" + "\n".join(found)


def test_the_check_catches_a_planted_write(tmp_path: Path) -> None:
    planted = tmp_path / "planted.py"
    planted.write_text("from console.run import facts\n"
                       "def f(store):\n"
                       "    store.put_measurement('c', 'speed', 'summary', {})\n"
                       "    store.db.execute('INSERT OR REPLACE INTO verdicts VALUES (?)', (1,))\n")
    found = breaches(planted, "planted.py")
    assert [f.split(" ", 1)[1] for f in found] == ["imports console.run.facts", "calls .put_measurement()",
                                                    "writes a fact table in SQL"]
