"""Look up an lm-eval task in the installed registry without building the whole index.

lm-eval 0.4.13's `TaskManager()` parses all ~14,000 task YAMLs (38 s on a loaded 2-core box). Here one quick
text pass maps each `task:` / `group:` / `tag:` name to the files that define it, then lm-eval's own
`lm_eval.tasks._index.TaskIndex.build` parses only those files' folders (includes resolved, `Kind.TASK` /
`GROUP` / `TAG` as lm-eval decides). A group's members (its `task:` list) and a tag's members are followed down
to the leaf tasks, whose `output_type` and `dataset_path` / `dataset_name` are what preflight checks.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

DEF = re.compile(r"^(task|group|tag)\s*:\s*['\"]?([\w.\-]+)['\"]?\s*(#.*)?$")
LIST_START = re.compile(r"^tag\s*:\s*(#.*)?$")
LIST_ITEM = re.compile(r"^\s+-\s*['\"]?([\w.\-]+)['\"]?\s*$")
NLTK_DATA = re.compile(r"nltk\.(?:data\.find|download)\(\s*['\"](?:tokenizers/)?([\w/]+)['\"]")


@dataclass(frozen=True)
class LeafTask:
    """A runnable lm-eval task: how it is scored and which dataset it reads."""

    name: str
    output_type: str | None
    dataset_path: str | None
    dataset_name: str | None
    yaml_path: Path | None


@dataclass(frozen=True)
class TaskInfo:
    """A task, group or tag name as the installed lm-eval knows it, with its leaf tasks."""

    name: str
    kind: str
    """task | group | tag | missing"""
    leaves: tuple[LeafTask, ...] = ()

    @property
    def output_types(self) -> set[str]:
        return {leaf.output_type or "?" for leaf in self.leaves}

    @property
    def datasets(self) -> list[tuple[str, str | None]]:
        return sorted({(leaf.dataset_path, leaf.dataset_name) for leaf in self.leaves if leaf.dataset_path},
                      key=lambda d: (d[0], d[1] or ""))


def tasks_root() -> Path | None:
    spec = importlib.util.find_spec("lm_eval")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "tasks"


@lru_cache(maxsize=8)
def definitions(root: Path) -> dict[str, tuple[Path, ...]]:
    """name → YAML files whose top-level `task:`, `group:` or `tag:` names it (a text pass, no YAML parse)."""
    out: dict[str, set[Path]] = {}
    for path in root.glob("**/*.yaml"):
        if "__pycache__" in path.parts:
            continue
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
        in_tags = False
        for line in lines:
            if in_tags:
                m = LIST_ITEM.match(line)
                if m:
                    out.setdefault(m.group(1), set()).add(path)
                    continue
                in_tags = False
            if LIST_START.match(line):
                in_tags = True
                continue
            m = DEF.match(line)
            if m:
                out.setdefault(m.group(2), set()).add(path)
    return {k: tuple(sorted(v)) for k, v in out.items()}


def _index(dirs: tuple[Path, ...]) -> dict[str, Any]:
    from lm_eval.tasks._index import TaskIndex

    return TaskIndex.build(list(dirs))


def find_task(name: str, include_path: str | Path | None = None, depth: int = 0) -> TaskInfo:
    """The installed lm-eval's view of `name` (plus an --include_path folder, which wins, as in lm-eval)."""
    roots = [r for r in (tasks_root(), Path(include_path) if include_path else None) if r is not None and r.is_dir()]
    files: list[Path] = []
    for root in roots:
        files += definitions(root).get(name, ())
    if not files or depth > 4:
        return TaskInfo(name, "missing")
    index = _index(tuple(sorted({f.parent for f in files})))
    entry = index.get(name)
    if entry is None:
        return TaskInfo(name, "missing")
    kind = entry.kind.name.lower()
    if kind in ("task", "py_task"):
        cfg = entry.cfg or {}
        return TaskInfo(name, "task", (LeafTask(name, cfg.get("output_type"), cfg.get("dataset_path"),
                                                cfg.get("dataset_name"), entry.yaml_path),))
    if kind == "group":
        members = (entry.cfg or {}).get("task") or []
        names = [m if isinstance(m, str) else m.get("task") for m in members]
    else:  # a tag: every task that carries it
        names = [n for n, e in index.items() if name in (e.tags or set())]
    leaves: list[LeafTask] = []
    for member in names:
        if isinstance(member, str) and member != name:
            leaves += find_task(member, include_path, depth + 1).leaves
    return TaskInfo(name, "group" if kind == "group" else "tag", tuple(leaves))


@dataclass(frozen=True)
class TaskNeeds:
    """What a task's Python helpers import and which nltk data they load (read from the source)."""

    modules: tuple[str, ...]
    nltk_data: tuple[str, ...]


def task_needs(leaf: LeafTask) -> TaskNeeds:
    """Third-party modules imported by the .py files beside the task's YAML, and nltk resources they ask for
    (lm-eval's ifeval: langdetect, immutabledict, nltk; `nltk.data.find("tokenizers/punkt_tab")`)."""
    if leaf.yaml_path is None:
        return TaskNeeds((), ())
    modules: set[str] = set()
    data: set[str] = set()
    for py in leaf.yaml_path.parent.glob("*.py"):
        try:
            source = py.read_text(encoding="utf-8")
            tree = ast.parse(source)
        except (OSError, SyntaxError):
            continue
        data |= set(NLTK_DATA.findall(source))
        for node in tree.body:  # top level only: what importing the helper needs
            if isinstance(node, ast.Import):
                modules |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    skip = set(sys.stdlib_module_names) | {"lm_eval", "__future__"}
    return TaskNeeds(tuple(sorted(m for m in modules if m not in skip)), tuple(sorted(data)))
