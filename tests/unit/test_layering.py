"""The layering as a static contract, read from the source (nothing is imported, so nothing can be skipped):

- the core — every module under console/ outside console/app/ — imports neither Textual nor widgets/ nor
  console.app, at module level or inside a function; the only exceptions are the two commands whose job is to
  open the console (`specdeck tui`, `specdeck demo`), and only lazily;
- widgets/ import nothing from console/ and nothing that spawns processes or speaks HTTP.

tests/tui/test_console_logic.py::test_only_console_app_imports_textual checks the same boundary at run time
(including what third-party imports drag in); this one cannot pass by failing to import a module.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CORE_FORBIDDEN = ("textual", "textual_plotext", "widgets", "console.app")
WIDGETS_FORBIDDEN = ("console", "subprocess", "multiprocessing", "aiohttp", "httpx", "requests", "socket",
                     "urllib.request", "http.client", "asyncio.subprocess")
LAZY_ALLOWED = {
    ("console.commands.tui", "console.app.app"): "`specdeck tui` opens the console",
    ("console.commands.demo", "console.app.app"): "`specdeck demo` opens the console on the demo",
}


@dataclass(frozen=True)
class Violation:
    module: str
    line: int
    imported: str
    lazy: bool

    def __str__(self) -> str:
        where = "inside a function" if self.lazy else "at module level"
        return f"{self.module}:{self.line} imports {self.imported} {where}"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, root: Path) -> list[tuple[str, int, bool]]:
    """(absolute module imported, line, inside a function) for every import in the file; relative imports are
    resolved; imports under `if TYPE_CHECKING:` are left out (they never run)."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for other in child.orelse:
                    visit(other, lazy)
                continue
            inner = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                out.extend((a.name, child.lineno, lazy) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    up = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    base = ".".join([*up, base] if base else up)
                out.append((base, child.lineno, lazy))
                out.extend((f"{base}.{a.name}", child.lineno, lazy) for a in child.names)
            visit(child, inner)

    visit(tree, False)
    return out


def _hits(imported: str, forbidden: tuple[str, ...]) -> bool:
    return any(imported == f or imported.startswith(f + ".") for f in forbidden)


def core_violations(root: Path) -> tuple[int, list[Violation]]:
    """(modules checked, violations) for the core under `root`/console (console/app excluded)."""
    checked, found = 0, []
    for path in sorted((root / "console").rglob("*.py")):
        if (root / "console" / "app") in path.parents:
            continue
        checked += 1
        mod = module_name(path, root)
        seen = set()
        for imported, line, lazy in imports(path, root):
            if not _hits(imported, CORE_FORBIDDEN):
                continue
            if lazy and any(_hits(imported, (allowed,)) for (m, allowed) in LAZY_ALLOWED if m == mod):
                continue
            key = (line, imported.split(".")[0])
            if key not in seen:
                seen.add(key)
                found.append(Violation(mod, line, imported, lazy))
    return checked, found


def widget_violations(root: Path) -> tuple[int, list[Violation]]:
    checked, found = 0, []
    for path in sorted((root / "widgets").rglob("*.py")):
        checked += 1
        found += [Violation(module_name(path, root), line, imported, lazy)
                  for imported, line, lazy in imports(path, root) if _hits(imported, WIDGETS_FORBIDDEN)]
    return checked, found


def test_the_core_never_imports_the_tui() -> None:
    checked, found = core_violations(ROOT)
    assert checked > 50, f"only {checked} core modules found: the walk is broken"
    assert not found, "\n".join(map(str, found))


def test_widgets_import_no_core_and_spawn_nothing() -> None:
    checked, found = widget_violations(ROOT)
    assert checked >= 10
    assert not found, "\n".join(map(str, found))


def test_the_lazy_exceptions_are_still_needed() -> None:
    """An allowance nobody uses any more is removed, so the list never grows stale."""
    for (mod, target), why in LAZY_ALLOWED.items():
        path = ROOT / (mod.replace(".", "/") + ".py")
        assert any(_hits(i, (target,)) and lazy for i, _, lazy in imports(path, ROOT)), f"{mod}: {why}"


def test_a_planted_violation_is_caught(tmp_path) -> None:
    """The checker finds each kind of breach in a copy of the tree: module level, lazy, relative, widgets."""
    tree = tmp_path / "tree"
    for top in ("console", "widgets"):
        for path in (ROOT / top).rglob("*.py"):
            dest = tree / path.relative_to(ROOT)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    assert core_violations(tree)[1] == [] and widget_violations(tree)[1] == []

    (tree / "console" / "results" / "planted.py").write_text(
        "from __future__ import annotations\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from textual.app import App  # fine: never runs\n"
        "from textual.widgets import Log\n"
        "def later():\n    import widgets.log_pane\n    from ..app import runview\n",
        encoding="utf-8")
    with (tree / "console" / "commands" / "tui.py").open("a", encoding="utf-8") as f:
        f.write("\nfrom console.app.app import SpecdeckApp as Top  # module level: not the allowed lazy import\n")
    (tree / "widgets" / "planted.py").write_text("import subprocess\nfrom console.units import human_seconds\n",
                                                 encoding="utf-8")
    checked, found = core_violations(tree)
    got = {(v.module, v.imported.split(".")[0] if not v.imported.startswith("console.app") else "console.app",
            v.lazy) for v in found}
    assert got == {("console.results.planted", "textual", False), ("console.results.planted", "widgets", True),
                   ("console.results.planted", "console.app", True), ("console.commands.tui", "console.app", False)}
    assert {v.imported.split(".")[0] for v in widget_violations(tree)[1]} == {"subprocess", "console"}
