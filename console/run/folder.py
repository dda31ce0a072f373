"""A run folder as one object: where its files are, its store (writer or reader), its runner, and finding runs.

    runs/<run>/
      state.sqlite               the store (console/run/store.py)
      events.jsonl               the event stream (console/run/eventlog.py)
      experiment.toml            the experiment as given (frozen at the start)
      experiment.resolved.toml   every cell with its exact serving settings (console/run/resolved.py)
      results_consolidated.csv   the run's master rows (console/results/consolidate.py)
      runner.log                 a detached runner's output
      api_key                    the run's key to its vLLM servers (0600: the owner only)
      cells/<cell>/              per-cell files (server.log link, eval outputs, result exports: speed.json …)
      servers/                   server logs, one per serving config

Every module that needs one of these paths asks a `RunFolder` for it, so the layout is spelled here once.
"""

from __future__ import annotations

import os
from pathlib import Path

from console.errors import SpecdeckError
from console.run.liveness import RunnerLiveness, judge
from console.run.paths import runs_root
from console.run.store import Store

STORE = "state.sqlite"
EVENTS = "events.jsonl"
EXPERIMENT_COPY = "experiment.toml"
RESOLVED = "experiment.resolved.toml"
CONSOLIDATED = "results_consolidated.csv"
CELLS = "cells"
RUNNER_LOG = "runner.log"
API_KEY = "api_key"
SERVERS = "servers"


class RunNotFound(SpecdeckError, FileNotFoundError):
    """No such run; the message lists what there is."""

    fix = "`ls runs/` lists the runs; `specdeck run EXPERIMENT` starts one"


class RunFolder:
    """One run on disk. Cheap to make (nothing is opened until asked); `path` need not exist yet."""

    __slots__ = ("path",)

    def __init__(self, path: Path | str | RunFolder) -> None:
        self.path = Path(path.path if isinstance(path, RunFolder) else path)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunFolder) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    # --- where things are -------------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.path.name

    @property
    def store_path(self) -> Path:
        return self.path / STORE

    @property
    def events_path(self) -> Path:
        return self.path / EVENTS

    @property
    def experiment_copy(self) -> Path:
        return self.path / EXPERIMENT_COPY

    @property
    def resolved_path(self) -> Path:
        return self.path / RESOLVED

    @property
    def consolidated_csv(self) -> Path:
        return self.path / CONSOLIDATED

    @property
    def runner_log(self) -> Path:
        """A detached runner's stdout and stderr."""
        return self.path / RUNNER_LOG

    @property
    def cells_dir(self) -> Path:
        return self.path / CELLS

    def cell_dir(self, cell_id: str) -> Path:
        return self.path / CELLS / cell_id

    @property
    def servers_dir(self) -> Path:
        return self.path / SERVERS

    @property
    def api_key_path(self) -> Path:
        return self.path / API_KEY

    def api_key(self) -> str:
        """The run's key to its vLLM servers, made once and kept in a file only the owner can read (0600), so a
        resumed runner can still talk to a server it adopts; never in the store, events or logs."""
        from console.serve.server import new_api_key

        self.path.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.api_key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            key = self.api_key_path.read_text(encoding="utf-8").strip()
            if key:
                return key
            fd = os.open(self.api_key_path, os.O_WRONLY | os.O_TRUNC)  # empty: a crash between create and write
        key = new_api_key()
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(key + "\n")
        return key

    def is_run(self) -> bool:
        """A run folder: it has a store (a run that got as far as opening one)."""
        return self.store_path.exists()

    # --- the store ----------------------------------------------------------------------------------------------
    def open_store(self) -> Store:
        """The writer's store (the runner, and the CLI/console recording a decision): created if missing."""
        return Store(self.store_path)

    def read_store(self) -> Store:
        """A reader's store: read-only (sqlite `mode=ro`), never creates or changes a file."""
        return Store(self.store_path, readonly=True)

    # --- the runner ---------------------------------------------------------------------------------------------
    def runner(self, store: Store | None = None) -> RunnerLiveness | None:
        """Who runs this run and whether it is alive (console/run/liveness.py: heartbeat AND pid); None when
        no runner holds it. Reads through `store` when given, else opens a reader for the look."""
        if store is not None:
            return judge(store.runner())
        s = self.read_store()
        try:
            return judge(s.runner())
        finally:
            s.close()

    def __str__(self) -> str:
        return str(self.path)

    def __fspath__(self) -> str:
        return str(self.path)


def list_runs(root: Path | None = None) -> list[RunFolder]:
    """The runs under `root` (default: `runs_root()`), oldest first (run ids sort by their start time)."""
    base = Path(root) if root is not None else runs_root()
    return sorted((RunFolder(d) for d in base.glob("*") if (d / STORE).exists()), key=lambda r: r.name)


def find_run(name: str | Path, root: Path | None = None) -> RunFolder:
    """A run from what a person types: a run folder's path, a run id (or a unique prefix of one) under `root`,
    or `latest`."""
    direct = RunFolder(name)
    if direct.is_run():
        return direct
    base = Path(root) if root is not None else runs_root()
    runs = list_runs(base)
    if str(name) == "latest" and runs:
        return runs[-1]
    under = RunFolder(base / str(name))
    if under.is_run():
        return under
    matches = [r for r in runs if r.name.startswith(str(name))]
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(r.name for r in runs[-5:]) or "none yet"
    raise RunNotFound(f"no run {str(name)!r} (a folder with {STORE}, a run id under {base}/, or "
                      f"'latest'); recent runs: {known}")
