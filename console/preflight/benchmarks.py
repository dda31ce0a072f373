"""One table per benchmark: the task exists in the installed framework and can run against a chat endpoint,
its packages and nltk data are here, its dataset is cached, downloadable or gated."""

from __future__ import annotations

import ast
import difflib
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

from console.evals.data import load_items, resolve_dataset
from console.evals.lmeval import is_local_task
from console.experiment.schema import Benchmark
from console.hub import Hub
from console.preflight import lmeval_tasks as lt
from console.preflight.checks import FAIL, OK, UNKNOWN, Section
from console.preflight.models import gib

GENERATIVE_SUFFIXES = ("_direct", "_generative", "_gen", "_cot_zeroshot", "_cot", "_zeroshot_cot")
"""Where lm-eval keeps the generate_until twin of a loglikelihood task (kmmlu → kmmlu_direct, …)."""


@dataclass
class DatasetNeed:
    """A dataset a benchmark reads from the hub, and what preflight found about it."""

    path: str
    configs: tuple[str | None, ...]
    cached: int = 0
    to_download: float | None = 0.0
    status: str = OK
    benches: list[str] = field(default_factory=list)


def nltk_present(resource: str) -> bool:
    try:
        import nltk
    except ImportError:
        return False
    candidates = [resource] if "/" in resource else [f"{c}/{resource}" for c in ("tokenizers", "corpora", "taggers", "models")]
    for c in candidates:
        try:
            nltk.data.find(c)
            return True
        except LookupError:
            continue
    return False


def generative_alternatives(name: str) -> list[str]:
    root = lt.tasks_root()
    if root is None:
        return []
    known = lt.definitions(root)
    out = []
    for suffix in GENERATIVE_SUFFIXES:
        candidate = f"{name}{suffix}"
        if candidate in known and lt.find_task(candidate).output_types == {"generate_until"}:
            out.append(candidate)
    return out


def dataset_check(section: Section, need: DatasetNeed, hub: Hub | None, network: bool) -> None:
    label = need.path + (f" ({len(need.configs)} configs)" if len(need.configs) > 1 else
                         f" [{need.configs[0]}]" if need.configs and need.configs[0] else "")
    if hub is not None:
        need.cached = sum(1 for c in need.configs if hub.cached_dataset(need.path, c) is not None)
    if need.cached == len(need.configs):
        need.to_download = 0.0
        section.add("dataset", OK, f"{label}: in the datasets cache (runs offline)")
        return
    partly = f"{need.cached}/{len(need.configs)} configs cached; " if need.cached else ""
    if hub is None or not network:
        need.to_download, need.status = None, UNKNOWN
        section.add("dataset", UNKNOWN, f"{label}: {partly}not in the datasets cache; the hub was not asked",
                    "`specdeck prepare EXPERIMENT` downloads it")
        return
    remote = hub.remote(need.path, "dataset")
    if remote.status == "ok":
        need.to_download = float(remote.size_bytes or 0)
        section.add("dataset", OK, f"{label}: {partly}downloadable ({gib(need.to_download)})"
                    f"{'; gated, your token has access' if remote.gated else ''}",
                    "`specdeck prepare EXPERIMENT` fetches it now (then runs work offline)")
        return
    need.to_download, need.status = None, FAIL
    what = {"gated": "gated — this token may not read it", "not_found": "no such dataset on the hub",
            "unreachable": f"not cached and the hub cannot be reached ({remote.detail.split(': ', 1)[-1]})"}[remote.status]
    section.add("dataset", FAIL, f"{label}: {partly}{what}", remote.fix if remote.status != "unreachable" else
                "run `specdeck prepare EXPERIMENT` where the hub is reachable (or copy ~/.cache/huggingface)")


def lmeval_checks(section: Section, bench: Benchmark, base_dir: Path | None) -> list[DatasetNeed]:
    if is_local_task(bench.task) or bench.task.endswith(".jsonl"):
        return _local_file(section, bench, base_dir, "lm-eval custom task (YAML written per run)")
    include = None
    if bench.include_path:
        inc = Path(bench.include_path).expanduser()
        include = inc if inc.is_absolute() or base_dir is None else base_dir / inc
    info = lt.find_task(bench.task, include)
    if info.kind == "missing":
        root = lt.tasks_root()
        close = difflib.get_close_matches(bench.task, list(lt.definitions(root)) if root else [], n=3, cutoff=0.6)
        section.add("task", FAIL, f"lm-eval has no task, group or tag {bench.task!r}",
                    f"did you mean {', '.join(close)}?" if close else "`lm_eval ls tasks` lists them")
        return []
    size = f"{info.kind} of {len(info.leaves)} tasks" if info.kind != "task" else "task"
    if info.output_types - {"generate_until"}:
        others = ", ".join(sorted(info.output_types - {"generate_until"}))
        alts = generative_alternatives(bench.task)
        fix = (f"use {' or '.join(repr(a) for a in alts)} (generate_until), or " if alts else "use ") + \
            "the builtin runner on a local .jsonl of the same items (framework = \"builtin\")"
        section.add("task", FAIL, f"{bench.task} ({size}) is {others}: it scores option log-likelihoods, which a "
                    "chat-completions endpoint does not return (lm-eval's local-chat-completions supports "
                    "generate_until only)", fix)
    else:
        section.add("task", OK, f"{bench.task}: {size}, generate_until")
    modules: set[str] = set()
    data: set[str] = set()
    for leaf in info.leaves[:60]:
        needs = lt.task_needs(leaf)
        modules |= set(needs.modules)
        data |= set(needs.nltk_data)
    missing = sorted(m for m in modules if importlib.util.find_spec(m) is None)
    if missing:
        section.add("packages", FAIL, f"{bench.task} imports {', '.join(missing)}, not installed",
                    f"pip install {' '.join(missing)} (lm-eval's extra for the task, e.g. 'lm-eval[ifeval]')")
    elif modules:
        section.add("packages", OK, f"{', '.join(sorted(modules))} importable")
    for resource in sorted(data):
        if nltk_present(resource):
            section.add("nltk data", OK, f"nltk {resource} present")
        else:
            section.add("nltk data", FAIL, f"nltk data {resource!r} missing (the task downloads it at import; "
                        "offline that fails)", f"`specdeck prepare` (or python -m nltk.downloader {resource})")
    by_path: dict[str, list[str | None]] = {}
    for path, name in info.datasets:
        by_path.setdefault(path, []).append(name)
    return [DatasetNeed(p, tuple(n), benches=[bench.id]) for p, n in by_path.items()]


def _local_file(section: Section, bench: Benchmark, base_dir: Path | None, what: str) -> list[DatasetNeed]:
    try:
        path = resolve_dataset(bench.task, base_dir)
        n = len(load_items(path))
        section.add("data file", OK, f"{path.name}: {n} items ({what})")
    except FileNotFoundError as exc:
        section.add("data file", FAIL, f"{bench.task!r}: no such data file", str(exc))
    except ValueError as exc:
        section.add("data file", FAIL, str(exc), "fix the file: one JSON item a line (id, question, choices, answer)")
    return []


def inspect_checks(section: Section, bench: Benchmark, base_dir: Path | None) -> None:
    if is_local_task(bench.task) or bench.task.endswith(".jsonl"):
        _local_file(section, bench, base_dir, "console/evals/inspect_tasks.py@mcq")
        return
    if bench.task.startswith("inspect_evals/"):
        name = bench.task.split("/", 1)[1]
        spec = importlib.util.find_spec("inspect_evals")
        if spec is None:
            section.add("task", FAIL, f"{bench.task}: the inspect-evals package is not installed",
                        "pip install inspect-evals")
            return
        registry = Path(next(iter(spec.submodule_search_locations or []), "")) / "_registry.py"
        found = registry.is_file() and name in registry.read_text(encoding="utf-8", errors="replace")
        section.add("task", OK if found else FAIL, f"{bench.task}: {'registered' if found else 'not registered'} by "
                    "inspect_evals", "" if found else "check the name: `inspect list tasks` in inspect_evals")
        section.add("dataset", UNKNOWN, f"{bench.task}: inspect_evals fetches its own data on first use",
                    "`specdeck prepare` runs the task once on inspect's mockllm to cache it")
        return
    file, _, fn = bench.task.partition("@")
    path = Path(file).expanduser()
    path = path if path.is_absolute() or base_dir is None else base_dir / path
    if not path.is_file():
        section.add("task", FAIL, f"{bench.task}: no such task file {path}", "check the path (relative to the experiment)")
        return
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except SyntaxError as exc:
        section.add("task", FAIL, f"{path}: {exc}", "fix the task file")
        return
    tasks = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)
             and any(getattr(d, "id", getattr(getattr(d, "func", None), "id", None)) == "task" for d in n.decorator_list)]
    if fn and fn not in tasks:
        section.add("task", FAIL, f"{path.name} has no @task {fn!r} (has: {', '.join(tasks) or 'none'})", "")
    else:
        section.add("task", OK, f"{path.name}: @task {fn or ', '.join(tasks)}")


def benchmark_section(bench: Benchmark, cells: tuple[str, ...], base_dir: Path | None) -> tuple[Section, list[DatasetNeed]]:
    section = Section("benchmark", f"benchmark {bench.id}  ({bench.framework}: {bench.task})", cells)
    needs: list[DatasetNeed] = []
    if bench.framework == "builtin":
        _local_file(section, bench, base_dir, "built-in runner")
    elif bench.framework == "lm-eval":
        needs = lmeval_checks(section, bench, base_dir)
    elif bench.framework == "inspect":
        inspect_checks(section, bench, base_dir)
    return section, needs
