"""What an experiment needs from the network, fetching it ahead of time, and whether runs may go offline.

`specdeck prepare` downloads every hub model and drafter, every lm-eval dataset, the nltk data a task loads and
the data of inspect_evals tasks, so that no GPU-hour waits on a download. When everything is local it writes a
record (`~/.cache/specdeck/prepared/<fingerprint>.json`, keyed by what the experiment needs). A run then sets
HF_HUB_OFFLINE / HF_DATASETS_OFFLINE for its eval frameworks only when `--offline` is given, when the experiment
needs nothing from the hub, or when such a record says everything is local; otherwise the frameworks may
download what they miss (and a failure names `specdeck prepare`).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from console.experiment.cells import Cell
from console.experiment.loader import LoadedExperiment
from console.hub import Hub, is_hub_id
from console.serve.argv import resolve_model_path


def prepared_dir() -> Path:
    """Where prepare records live (SPECDECK_PREPARED_DIR overrides)."""
    env = os.environ.get("SPECDECK_PREPARED_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "specdeck" / "prepared"


@dataclass(frozen=True)
class Needs:
    """Everything an experiment's cells and benchmarks would fetch from the network."""

    models: tuple[str, ...] = ()
    """Hub repo ids of targets and drafters."""
    datasets: tuple[tuple[str, str | None], ...] = ()
    """(dataset path, config name) of every lm-eval leaf task."""
    nltk: tuple[str, ...] = ()
    inspect_tasks: tuple[str, ...] = ()
    """inspect_evals/… tasks: they fetch their own data on first use."""

    @property
    def empty(self) -> bool:
        return not (self.models or self.datasets or self.nltk or self.inspect_tasks)

    def fingerprint(self) -> str:
        blob = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def describe(self) -> str:
        parts = [f"{len(self.models)} model repo(s)" if self.models else "",
                 f"{len({d[0] for d in self.datasets})} dataset(s)" if self.datasets else "",
                 f"nltk {', '.join(self.nltk)}" if self.nltk else "",
                 f"{len(self.inspect_tasks)} inspect_evals task(s)" if self.inspect_tasks else ""]
        return ", ".join(p for p in parts if p) or "nothing"


def needs_of(exp: LoadedExperiment, cells: list[Cell] | None = None, models_dir: Path | None = None) -> Needs:
    """The network needs of these cells (default all) and of the experiment's benchmarks."""
    from console.evals.lmeval import is_local_task
    from console.preflight import lmeval_tasks as lt

    models: list[str] = []
    for cell in cells if cells is not None else exp.cells:
        if cell.model.attach is not None:
            continue
        for ref in (cell.model.path, cell.drafter):
            if ref:
                path = resolve_model_path(ref, exp.base_dir, models_dir)
                if is_hub_id(path) and path not in models:
                    models.append(path)
    datasets: set[tuple[str, str | None]] = set()
    nltk: set[str] = set()
    inspect_tasks: list[str] = []
    for bench in exp.spec.benchmarks:
        if bench.framework == "lm-eval" and not is_local_task(bench.task) and not bench.task.endswith(".jsonl"):
            include = bench.include_path and str(Path(bench.include_path) if Path(bench.include_path).is_absolute()
                                                 else exp.base_dir / bench.include_path)
            info = lt.find_task(bench.task, include or None)
            datasets |= set(info.datasets)
            for leaf in info.leaves[:60]:
                nltk |= set(lt.task_needs(leaf).nltk_data)
        elif bench.framework == "inspect" and bench.task.startswith("inspect_evals/"):
            inspect_tasks.append(bench.task)
    return Needs(tuple(models), tuple(sorted(datasets, key=lambda d: (d[0], d[1] or ""))), tuple(sorted(nltk)),
                 tuple(inspect_tasks))


@dataclass
class Item:
    """One thing prepare fetched (or could not), with the error and its fix."""

    kind: str
    name: str
    ok: bool = False
    detail: str = ""
    fix: str = ""


@dataclass
class PrepareResult:
    needs: Needs
    items: list[Item] = field(default_factory=list)

    @property
    def all_local(self) -> bool:
        return all(i.ok for i in self.items)


def is_local(needs: Needs, hub: Hub) -> list[str]:
    """What of `needs` is NOT on this machine (empty: a run can go offline)."""
    from console.preflight.benchmarks import nltk_present

    missing = [m for m in needs.models if not hub.cached_model(m).complete]
    missing += [f"dataset {p}" + (f" [{n}]" if n else "") for p, n in needs.datasets if hub.cached_dataset(p, n) is None]
    missing += [f"nltk {r}" for r in needs.nltk if not nltk_present(r)]
    return missing


def record_path(needs: Needs) -> Path:
    return prepared_dir() / f"{needs.fingerprint()}.json"


def write_record(exp: LoadedExperiment, result: PrepareResult) -> Path:
    path = record_path(result.needs)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"experiment": exp.spec.experiment.name, "file": str(exp.path), "ts": time.time(),
            "all_local": result.all_local, "needs": asdict(result.needs),
            "items": [asdict(i) for i in result.items]}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(path)
    return path


def offline_decision(exp: LoadedExperiment, flag: bool, cells: list[Cell] | None = None,
                     models_dir: Path | None = None) -> tuple[bool, str]:
    """Whether this run's eval frameworks get HF_HUB_OFFLINE=1 / HF_DATASETS_OFFLINE=1, and why."""
    if flag:
        return True, "evals run offline (--offline): a dataset that is not cached fails; `specdeck prepare` fetches it"
    needs = needs_of(exp, cells, models_dir)
    if needs.empty:
        return True, "evals run offline: nothing this experiment needs comes from the hub"
    path = record_path(needs)
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        record = None
    if record and record.get("all_local"):
        return True, f"evals run offline: `specdeck prepare` recorded everything local ({path})"
    return False, (f"evals may download what is not cached ({needs.describe()}): `specdeck prepare "
                   f"{exp.path}` fetches it ahead and lets runs go offline")


# --- fetching ---------------------------------------------------------------------------------------------
Say = Callable[[str], None]


def prepare(exp: LoadedExperiment, hub: Hub, *, cells: list[Cell] | None = None, models_dir: Path | None = None,
            say: Say = print, load_dataset: Callable[..., Any] | None = None,
            nltk_download: Callable[[str], bool] | None = None,
            run_inspect: Callable[[str], tuple[int, str]] | None = None) -> PrepareResult:
    """Fetch every need not yet local (huggingface_hub and datasets draw their own progress bars), then
    write the record. Every failure is an Item with its reason and fix; nothing is skipped silently."""
    needs = needs_of(exp, cells, models_dir)
    result = PrepareResult(needs)
    if needs.empty:
        say("nothing to download: every model is a local folder and every benchmark reads local files")
        write_record(exp, result)
        return result
    say(f"{exp.spec.experiment.name}: {needs.describe()}")
    total = len(needs.models) + len({p for p, _ in needs.datasets}) + len(needs.nltk) + len(needs.inspect_tasks)
    step = 0

    def head(text: str) -> None:
        nonlocal step
        step += 1
        say(f"[{step}/{total}] {text}")

    for repo in needs.models:
        head(f"model {repo}")
        result.items.append(_fetch_model(hub, repo, say))
    by_path: dict[str, list[str | None]] = {}
    for path, name in needs.datasets:
        by_path.setdefault(path, []).append(name)
    for path, names in by_path.items():
        head(f"dataset {path}" + (f" ({len(names)} configs)" if len(names) > 1 else ""))
        result.items += _fetch_dataset(hub, path, names, load_dataset, say)
    for resource in needs.nltk:
        head(f"nltk {resource}")
        result.items.append(_fetch_nltk(resource, nltk_download))
    for task in needs.inspect_tasks:
        head(f"inspect {task}")
        result.items.append(_fetch_inspect(task, run_inspect))
    for item in result.items:
        if not item.ok:
            say(f"  ✗ {item.kind} {item.name}: {item.detail}" + (f"\n    fix: {item.fix}" if item.fix else ""))
    write_record(exp, result)
    return result


def _fetch_model(hub: Hub, repo: str, say: Say) -> Item:
    cached = hub.cached_model(repo)
    if cached.complete:
        return Item("model", repo, True, "already in the hub cache")
    try:
        folder = hub.fetch(repo)
    except Exception as exc:  # noqa: BLE001 - reported with its fix
        return Item("model", repo, False, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                    _fix_for(exc, repo))
    done = hub.cached_model(repo)
    if not done.complete:
        return Item("model", repo, False, f"downloaded to {folder} but {', '.join(done.missing[:3])} missing",
                    "run `specdeck prepare` again (an interrupted download resumes)")
    say(f"  ✓ {repo}: {done.size_bytes / 1024**3:.1f} GiB in {done.snapshot}")
    return Item("model", repo, True, str(done.snapshot))


def _fetch_dataset(hub: Hub, path: str, names: list[str | None], load_dataset: Callable[..., Any] | None,
                   say: Say) -> list[Item]:
    if load_dataset is None:
        from datasets import load_dataset as load_dataset_real

        load_dataset = load_dataset_real
    items = []
    for name in names:
        label = path + (f" [{name}]" if name else "")
        if hub.cached_dataset(path, name) is not None:
            items.append(Item("dataset", label, True, "already in the datasets cache"))
            continue
        try:
            load_dataset(path, name) if name else load_dataset(path)
        except Exception as exc:  # noqa: BLE001
            items.append(Item("dataset", label, False, f"{type(exc).__name__}: {_one_line(exc)}", _fix_for(exc, path, True)))
            continue
        ok = hub.cached_dataset(path, name) is not None
        items.append(Item("dataset", label, ok, "prepared" if ok else "loaded but not found in the datasets cache",
                          "" if ok else "check HF_DATASETS_CACHE: runs look for it there"))
    say(f"  {'✓' if all(i.ok for i in items) else '✗'} {path}")
    return items


def _fetch_nltk(resource: str, download: Callable[[str], bool] | None) -> Item:
    from console.preflight.benchmarks import nltk_present

    if nltk_present(resource):
        return Item("nltk", resource, True, "present")
    if download is None:
        import nltk

        def download(r: str) -> bool:
            return bool(nltk.download(r, quiet=False, raise_on_error=False))
    ok = download(resource) and nltk_present(resource)
    return Item("nltk", resource, ok, "downloaded" if ok else "nltk could not download it",
                "" if ok else f"python -m nltk.downloader {resource} (where the network is reachable)")


def _fetch_inspect(task: str, run_inspect: Callable[[str], tuple[int, str]] | None) -> Item:
    """inspect_evals tasks download their data when the task is built: run it once on inspect's mock model."""
    if run_inspect is None:
        run_inspect = _mock_inspect_run
    code, tail = run_inspect(task)
    ok = code == 0
    return Item("inspect", task, ok, "data fetched (one sample on mockllm/model)" if ok else f"exit {code}: {tail}",
                "" if ok else "pip install inspect-evals; check the task name and the network")


def _mock_inspect_run(task: str) -> tuple[int, str]:
    with tempfile.TemporaryDirectory() as log_dir:
        proc = subprocess.run([sys.executable, "-m", "inspect_ai", "eval", task, "--model", "mockllm/model",
                               "--limit", "1", "--log-dir", log_dir, "--display", "plain"],
                              capture_output=True, text=True, check=False)
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    return proc.returncode, lines[-1] if lines else ""


def _one_line(exc: BaseException) -> str:
    text = " ".join(s.strip() for s in str(exc).splitlines() if s.strip())
    return text[:300]


def _fix_for(exc: BaseException, repo: str, dataset: bool = False) -> str:
    name = type(exc).__name__
    page = f"https://huggingface.co/{'datasets/' if dataset else ''}{repo}"
    if name == "GatedRepoError" or "gated" in str(exc).lower():
        return f"request access at {page}, then `hf auth login` (or set HF_TOKEN)"
    if name in ("RepositoryNotFoundError", "DatasetNotFoundError") or "not found" in str(exc).lower():
        return f"no {repo!r} on the hub (or it is private): check the spelling, or `hf auth login`"
    return "check the network (HF_ENDPOINT, proxy) and run `specdeck prepare` again: finished files are kept"
