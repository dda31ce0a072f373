"""Look up an lm-eval task in the installed registry without building the whole index, and remember the answer.

lm-eval 0.4.13's `TaskManager()` (`lm_eval/tasks/__init__.py` re-exports it from `tasks/manager.py`) builds its
index in `__init__`: `self._index = index.build(all_paths)` with `all_paths = [Path(__file__).parent]` (plus any
`include_path`), and `TaskIndex.build` (`tasks/_index.py`) calls `load_yaml(yaml_path, resolve_func=False,
recursive=True)` on every `**/*.yaml` under it — 13,986 files in 0.4.13 (38 s on a loaded 2-core box). Here one
quick text pass maps each `task:` / `group:` / `tag:` name to the files that define it, then lm-eval's own
`TaskIndex.build` parses only those files' folders (includes resolved, `Kind.TASK` / `GROUP` / `TAG` as lm-eval
decides). A group's members (its `task:` list) and a tag's members are followed down to the leaf tasks, whose
`output_type` and `dataset_path` / `dataset_name` are what preflight checks.

Even that costs seconds in every new process — the text pass over the 13,986 files, importing `lm_eval.tasks`
(which imports `lm_eval.api.task` and the rest) and parsing the folders — and a runner, `specdeck preflight` and
the console each start one. So the installed registry's answers are kept on disk (`TaskCache`,
`~/.cache/specdeck/lmeval-tasks/`), keyed on lm-eval's version and the mtime of every folder under
`lm_eval/tasks`: an upgrade, a reinstall or a task file added, removed or renamed gives a new key. A folder
given as `include_path` (the operator's own tasks, edited in place) is never cached.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import sys
from dataclasses import asdict, dataclass, field
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
    """name → YAML files whose top-level `task:`, `group:` or `tag:` names it (from the on-disk cache for the
    installed registry; else a text pass, no YAML parse)."""
    cache = task_cache(root)
    if cache is not None:
        return cache.definitions()
    return scan_definitions(root)


def scan_definitions(root: Path) -> dict[str, tuple[Path, ...]]:
    """The text pass: every `**/*.yaml` under `root`, read line by line."""
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
    root = tasks_root()
    cache = task_cache(root) if root is not None and not include_path else None
    if cache is not None:
        known = cache.task(name)
        if known is not None:
            return known
    info = _find_task(name, include_path, depth)
    if cache is not None:
        cache.remember(info)
        if depth == 0:  # once per lookup, not once per group member
            cache.save()
    return info


def _find_task(name: str, include_path: str | Path | None, depth: int) -> TaskInfo:
    roots = [r for r in (tasks_root(), Path(include_path) if include_path else None) if r is not None and r.is_dir()]
    files: list[Path] = []
    for root in roots:
        files += definitions(root).get(name, ())
    if not files or depth > 4:
        return TaskInfo(name, "missing")
    # the installed folders first, then the include_path's: in TaskIndex.build a later path overrides an
    # earlier one (lm-eval 0.4.13 tasks/_index.py), as TaskManager orders them (defaults, then include_path)
    index = _index(tuple(dict.fromkeys(f.parent for f in files)))
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


# --- the on-disk cache of the installed registry ---------------------------------------------------------------
CACHE_FORMAT = 2
"""Bump when what is stored (or how it is read) changes: older files are then ignored. 2: task files are kept
relative to the tasks folder (1 kept them absolute as first seen: a venv reached through another path, e.g. a
removed symlink, left paths that no longer exist, and ifeval's punkt_tab check then found no helper to read)."""
IGNORED_DIRS = {"__pycache__", ".ipynb_checkpoints"}


def cache_root() -> Path:
    """`$SPECDECK_CACHE_DIR`, else `~/.cache/specdeck`."""
    env = os.environ.get("SPECDECK_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "specdeck"


def lmeval_version() -> str | None:
    try:
        return importlib.metadata.version("lm_eval")
    except importlib.metadata.PackageNotFoundError:
        return None


def fingerprint(root: Path, version: str | None) -> str:
    """lm-eval's version, where it is installed, and the mtime of every folder under its tasks (a file added,
    removed or renamed changes its folder's mtime). 832 folders in 0.4.13: a few stat calls per folder, ~0.1 s."""
    h = hashlib.sha256(f"{CACHE_FORMAT}|{version}|{root.resolve()}".encode())
    for here, dirs, _files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in IGNORED_DIRS)
        h.update(f"{os.path.relpath(here, root)}|{os.stat(here).st_mtime_ns}\n".encode())
    return h.hexdigest()[:20]


@dataclass
class TaskCache:
    """The installed registry's names and looked-up tasks, kept in one JSON file per fingerprint. Written
    whole through a temporary file and a rename, so a reader never sees half of it; an unreadable file is
    treated as absent (and rewritten)."""

    root: Path
    path: Path
    names: dict[str, list[str]] | None = None
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)

    @staticmethod
    def load(root: Path, path: Path) -> TaskCache:
        cache = TaskCache(root, path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            cache.names, cache.tasks = data["names"], data["tasks"]
        except (OSError, ValueError, KeyError, TypeError):
            pass
        return cache

    def definitions(self) -> dict[str, tuple[Path, ...]]:
        if self.names is None:
            found = scan_definitions(self.root)
            self.names = {k: [str(p.relative_to(self.root)) for p in v] for k, v in found.items()}
            self.save()
            return found
        return {k: tuple(self.root / p for p in v) for k, v in self.names.items()}

    def task(self, name: str) -> TaskInfo | None:
        d = self.tasks.get(name)
        if d is None:
            return None
        leaves = tuple(LeafTask(leaf["name"], leaf["output_type"], leaf["dataset_path"], leaf["dataset_name"],
                                self.root / leaf["yaml_path"] if leaf["yaml_path"] else None) for leaf in d["leaves"])
        if any(leaf.yaml_path is not None and not leaf.yaml_path.is_file() for leaf in leaves):
            return None  # the files moved under the same fingerprint: look again
        return TaskInfo(name, d["kind"], leaves)

    def remember(self, info: TaskInfo) -> None:
        if any(leaf.yaml_path is not None and not leaf.yaml_path.is_relative_to(self.root) for leaf in info.leaves):
            return  # a task outside the installed registry is never kept
        leaves = [{**asdict(leaf), "yaml_path": str(leaf.yaml_path.relative_to(self.root)) if leaf.yaml_path else None}
                  for leaf in info.leaves]
        self.tasks[info.name] = {"kind": info.kind, "leaves": leaves}

    def save(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"names": self.names, "tasks": self.tasks}), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError:
            pass  # a read-only home: the answers are still kept for this process


@lru_cache(maxsize=4)
def _task_cache(root: Path, key: str) -> TaskCache:
    return TaskCache.load(root, cache_root() / "lmeval-tasks" / f"{key}.json")


def task_cache(root: Path | None) -> TaskCache | None:
    """The cache of the installed registry (None for any other folder, or when lm-eval is not installed)."""
    if root is None or root != tasks_root():
        return None
    key = cache_key(root)
    return _task_cache(root, key) if key else None


@lru_cache(maxsize=4)
def cache_key(root: Path) -> str | None:
    """`<version>-<fingerprint>`, worked out once per process (`cache_key.cache_clear()` to look again)."""
    version = lmeval_version()
    return f"{version}-{fingerprint(root, version)}" if version else None
