"""`SpecdeckApp`: the console. It opens experiments and runs, runs the watcher worker and routes what it
sees to the screens; screens render, `RunSession` acts (start runners, record decisions)."""

from __future__ import annotations

import contextlib
import gc
import time
from pathlib import Path

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.worker import get_current_worker

from console.app.launch import DetachedLauncher, Launcher
from console.app.messages import LogArrived, RunUpdated
from console.app.runview import CellInfo, RunModel, RunSnapshot
from console.app.session import RunSession
from console.app.watcher import RunWatcher

EXPERIMENTS_DIR = Path(__file__).resolve().parents[2] / "experiments"


class SpecdeckApp(App[None]):
    """Picker → cell matrix → cell view / approval / results. Closing it never stops a run."""

    CSS_PATH = "specdeck.tcss"
    TITLE = "specdeck"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, target: str | Path | None = None, *, experiments_dir: Path | None = None,
                 runs_root: Path | None = None, launcher: Launcher | None = None, live: bool = True,
                 poll_s: float = 0.05, models_dir: Path | None = None, max_lines: int = 5000) -> None:
        super().__init__()
        self.target = target
        self.experiments_dir = experiments_dir
        self.runs_root = runs_root
        self.launcher: Launcher = launcher or DetachedLauncher()
        self.live = live
        self.poll_s = poll_s
        self.models_dir = models_dir
        self.max_lines = max_lines
        self.session: RunSession | None = None
        self.watcher: RunWatcher | None = None
        self.snapshot: RunSnapshot | None = None
        self._model: RunModel | None = None

    def on_mount(self) -> None:
        from console.app.picker import PickerScreen

        self.push_screen(PickerScreen())
        if self.target is not None:
            self.open_target(self.target)
        self.call_after_refresh(self.freeze_heap)

    def freeze_heap(self) -> None:
        """Move every object alive now (the app, its screens and widgets) out of the cyclic GC's reach.

        Without it, a full (generation-2) collection walks the whole widget tree every second or so while a
        log streams in and stalls the event loop for 60–150 ms (measured: benchmarks/ui_log_ingest.py); frozen,
        collections only walk what is new. Called once the UI is built and again when a screen is opened:
        unfreezing first lets that one full collection free what was frozen and has died since (a closed
        screen), so frozen memory does not grow with every screen opened."""
        gc.unfreeze()
        gc.collect()
        gc.freeze()

    # --- opening ----------------------------------------------------------------------------------------------
    def open_target(self, target: str | Path) -> bool:
        path = Path(target)
        if path.suffix == ".toml" and path.is_file():
            return self.open_experiment(path)
        from console.run.locate import RunNotFound, find_run

        try:
            run_dir = find_run(path) if self.runs_root is None else _find_in(path, self.runs_root)
        except RunNotFound as exc:
            self.notify(str(exc), severity="error", timeout=10)
            return False
        return self.open_run(run_dir)

    def open_experiment(self, path: Path) -> bool:
        from console.spec.caveats import engine_caveats
        from console.spec.loader import SpecError, load_experiment

        try:
            exp = load_experiment(path)
        except SpecError as exc:
            self.notify(f"{path} has {len(exc.problems)} problem(s); fix them (listed in the picker) and "
                        "open it again", severity="error", timeout=10)
            return False
        infos = [CellInfo.from_cell(c) for c in exp.cells]
        session = RunSession(infos, self.launcher, exp_path=path, experiment_name=exp.spec.experiment.name,
                             runs_root=self.runs_root, models_dir=self.models_dir)
        model = RunModel(infos, exp.spec.experiment.name)
        model.caveats = [c.message for c in engine_caveats(exp.spec, exp.cells)]  # named before anything runs
        self._show(session, model, toy=any(c.model.toy for c in exp.cells))
        return True

    def open_run(self, run_dir: Path) -> bool:
        from console.run.resolved import load_frozen
        from console.run.store import Store

        store = Store(run_dir / "state.sqlite")
        origin = store.meta("origin_dir")
        exp_file = store.meta("experiment")
        store.close()
        infos: list[CellInfo] = []
        name, toy = run_dir.name, False
        try:
            exp = load_frozen(run_dir, Path(origin) if origin else None)
            infos = [CellInfo.from_cell(c) for c in exp.cells]
            name, toy = exp.spec.experiment.name, any(c.model.toy for c in exp.cells)
        except Exception:  # noqa: BLE001 - an unreadable frozen copy: show the cells the store knows
            self.notify("the run's experiment copy could not be read: showing the store's cells only",
                        severity="warning")
        session = RunSession(infos, self.launcher, exp_path=Path(exp_file) if exp_file else None, run_dir=run_dir,
                             experiment_name=name, runs_root=self.runs_root, models_dir=self.models_dir)
        self._show(session, RunModel(infos, name, run_dir), toy=toy)
        return True

    def _show(self, session: RunSession, model: RunModel, toy: bool) -> None:
        from console.app.matrix import MatrixScreen

        self.close_session()
        self.session = session
        self.snapshot = model.snapshot()
        self._model = model
        if session.run_dir is not None:
            self.watch_run(session.run_dir)
        self.push_screen(MatrixScreen(toy=toy))

    def close_session(self) -> None:
        self.workers.cancel_group(self, "watch")
        if self.watcher is not None:
            self.watcher.close()
        self.watcher = None
        if self.session is not None:
            self.session.close()
        self.session = None

    # --- watching ---------------------------------------------------------------------------------------------
    def watch_run(self, run_dir: Path) -> None:
        model = self._model
        assert model is not None, "open an experiment or a run first"
        model.run_dir = run_dir
        self.watcher = RunWatcher(run_dir, model, max_lines=self.max_lines)
        if self.live:
            self._watch(self.watcher)
        else:
            self.poll_now()

    def poll_now(self) -> None:
        """One synchronous look (tests and snapshots: deterministic, no thread)."""
        if self.watcher is None:
            return
        snap, chunk = self.watcher.poll(force=True)
        if snap is not None:
            self.on_run_updated(RunUpdated(snap))
        if chunk is not None:
            self.on_log_arrived(LogArrived(chunk))

    @work(thread=True, exclusive=True, group="watch", exit_on_error=False)
    def _watch(self, watcher: RunWatcher) -> None:
        worker = get_current_worker()
        while not worker.is_cancelled:
            t = time.monotonic()
            try:
                snap, chunk = watcher.poll()
            except Exception as exc:  # noqa: BLE001 - a torn read must not kill the watcher
                self.call_from_thread(self.notify, f"reading the run failed: {exc}; retrying", severity="warning")
                time.sleep(1.0)
                continue
            if snap is not None:
                self.post_message(RunUpdated(snap))
            if chunk is not None:
                self.post_message(LogArrived(chunk))
            time.sleep(max(0.0, self.poll_s - (time.monotonic() - t)))

    def on_run_updated(self, message: RunUpdated) -> None:
        self.snapshot = message.snapshot
        if self.session is not None:
            started = self.session.tick(self.snapshot)
            if started:
                self.notify(started)
            for failure in self.launcher.take_failures():
                self.notify(failure, severity="error", timeout=20)
        show = getattr(self.screen, "show_snapshot", None)
        if show is not None:
            with contextlib.suppress(NoMatches):  # a screen being taken down (quitting) has no widgets left
                show(self.snapshot)

    def on_log_arrived(self, message: LogArrived) -> None:
        watcher = self.watcher
        try:
            for screen in reversed(self.screen_stack):  # the cell view, even under a dialog: no line is lost
                write = getattr(screen, "show_log", None)
                if write is not None:
                    with contextlib.suppress(NoMatches):
                        write(message.chunk)
                    break
        finally:
            if watcher is not None:  # back-pressure: the next batch waits until this one is on screen
                if self.live:
                    self.call_after_refresh(watcher.ui_ready.set)
                else:
                    watcher.ui_ready.set()

    def watch_cell(self, cell_id: str | None) -> None:
        if self.watcher is not None:
            self.watcher.set_cell(cell_id)
            if not self.live:
                self.poll_now()

    def started_run(self) -> None:
        """The session created the run folder: start watching it."""
        if self.session is not None and self.session.run_dir is not None and self.watcher is None:
            self.watch_run(self.session.run_dir)

    # --- actions ----------------------------------------------------------------------------------------------
    def action_help(self) -> None:
        from console.app.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(type(self.screen).__name__))


def _find_in(name: Path, root: Path) -> Path:
    from console.run.locate import RunNotFound

    if (name / "state.sqlite").exists():
        return name
    if (root / name / "state.sqlite").exists():
        return root / name
    raise RunNotFound(f"no run {str(name)!r} under {root}")
