"""`SpecdeckApp`: the console. It opens experiments and runs, runs the watcher worker and sends what it sees
to the screens as messages (`console/app/messages.py`); screens render and post back what the operator asked
for; the app carries it out through `RunSession` (start runners, record decisions)."""

from __future__ import annotations

import gc
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.message_pump import MessagePump
from textual.reactive import var
from textual.worker import get_current_worker

from console.app import actions
from console.app.launch import DetachedLauncher, Launcher
from console.app.messages import (
    CancelCell,
    CellsStarted,
    CloseRun,
    ConsoleSettings,
    LogArrived,
    LogShown,
    OpenExperiment,
    OpenRun,
    RerunSmoke,
    ReviewCell,
    RunUpdated,
    RunView,
    StartCells,
    WatchCell,
)
from console.app.runview import CellInfo, RunModel, RunSnapshot
from console.app.session import RunSession
from console.app.watcher import RunWatcher

if TYPE_CHECKING:
    from console.experiment.loader import LoadedExperiment


class SpecdeckApp(App[None]):
    """Picker → cell matrix → cell view / approval / results. Closing it never stops a run."""

    CSS_PATH = "specdeck.tcss"
    TITLE = "specdeck"
    ENABLE_COMMAND_PALETTE = False
    run_view: var[RunView | None] = var(None, always_update=True)
    """What screens may know of the open run; they watch it (`self.watch(self.app, "run_view", …)`), so a
    screen shows a new picture in the same step the app takes it. Published by `show_view`."""
    BINDINGS = [
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, target: str | Path | None = None, *, experiments_dir: Path | None = None,
                 runs_root: Path | None = None, launcher: Launcher | None = None, live: bool = True,
                 poll_s: float = 0.05, models_dir: Path | None = None, max_lines: int = 5000,
                 runner_args: Sequence[str] = ()) -> None:
        """`runner_args`: added to every runner the console starts (`specdeck tui --ray` gives `--ray …`)."""
        super().__init__()
        self.runner_args = tuple(runner_args)
        self.target = target
        self.experiments_dir = experiments_dir
        self.runs_root = runs_root
        self.launcher: Launcher = launcher or DetachedLauncher()
        self.live = live
        self.poll_s = poll_s
        self.models_dir = models_dir
        self.max_lines = max_lines
        self.settings = ConsoleSettings(experiments_dir, runs_root, live, max_lines)
        self.session: RunSession | None = None
        self.watcher: RunWatcher | None = None
        self.snapshot: RunSnapshot | None = None
        self._model: RunModel | None = None
        self._log_reader: MessagePump | None = None

    def on_mount(self) -> None:
        from console.app.picker import PickerScreen

        self.push_screen(PickerScreen(self.settings))
        if self.target is not None:
            self.open_target(self.target)
        if self.live:  # the header's truth and queued starts must not wait for the run to change: the last
            self.set_interval(0.5, self.refresh_view)  # change may have come while the runner was still alive
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
        from console.run.folder import RunNotFound, find_run

        try:
            run_dir = find_run(path, self.runs_root).path
        except RunNotFound as exc:
            self.notify(str(exc), severity="error", timeout=10)
            return False
        return self.open_run(run_dir)

    def open_experiment(self, path: Path) -> bool:
        from console.experiment.caveats import engine_caveats
        from console.experiment.loader import SpecError, load_experiment

        try:
            exp = load_experiment(path)
        except SpecError as exc:
            self.notify(f"{path} has {len(exc.problems)} problem(s); fix them (listed in the picker) and "
                        "open it again", severity="error", timeout=10)
            return False
        infos = [CellInfo.from_cell(c) for c in exp.cells]
        session = RunSession(infos, self.launcher, exp_path=path, experiment_name=exp.spec.experiment.name,
                             runs_root=self.runs_root, models_dir=self.models_dir, runner_args=self.runner_args)
        model = RunModel(infos, exp.spec.experiment.name)
        model.caveats = [c.message for c in engine_caveats(exp.spec, exp.cells)]  # named before anything runs
        self._show(session, model, toy=any(c.model.toy for c in exp.cells))
        if self.live:
            self._preflight(exp, model)
        return True

    @work(thread=True, exclusive=True, group="preflight", exit_on_error=False)
    def _preflight(self, exp: LoadedExperiment, model: RunModel) -> None:
        """`specdeck preflight` without asking the hub; its problems mark the cells they would stop."""
        from console.preflight.run import preflight

        problems = preflight(exp, network=False, models_dir=self.models_dir).problem_lines()
        self.call_from_thread(self._preflight_done, model, problems)

    def _preflight_done(self, model: RunModel, problems: dict[str, tuple[str, ...]]) -> None:
        if model is not self._model:
            return  # another experiment was opened meanwhile
        model.preflight = problems  # later snapshots carry it; the one on screen gets it now
        if self.snapshot is not None:
            self.snapshot = replace(self.snapshot, preflight=problems)
            self.show_view()

    def open_run(self, run_dir: Path) -> bool:
        from console.run.folder import RunFolder
        from console.run.resolved import load_frozen
        from console.run.store import StoreError

        try:
            store = RunFolder(run_dir).read_store()
            try:
                origin = store.meta("origin_dir")
                exp_file = store.meta("experiment")
            finally:
                store.close()
        except StoreError as exc:  # damaged, foreign or busy: named once, with the fix; nothing opened
            self.notify(str(exc), severity="error", timeout=30)
            return False
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
                             experiment_name=name, runs_root=self.runs_root, models_dir=self.models_dir, runner_args=self.runner_args)
        self._show(session, RunModel(infos, name, run_dir), toy=toy)
        return True

    def _show(self, session: RunSession, model: RunModel, toy: bool) -> None:
        from console.app.matrix import MatrixScreen

        self.close_session()
        self.session = session
        self.snapshot = model.snapshot()
        self._model = model
        self.show_view()
        if session.run_dir is not None:
            self.watch_run(session.run_dir)
        self.push_screen(MatrixScreen(toy=toy))

    def close_session(self) -> None:
        self._log_reader = None
        self.run_view = None
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
        problem = self.watcher.take_problem()
        if problem:
            self.notify(problem, severity="error", timeout=30)
        if snap is not None:
            self.on_run_updated(RunUpdated(snap))
        if chunk is not None:
            self.on_log_arrived(LogArrived(chunk))

    @work(thread=True, exclusive=True, group="watch", exit_on_error=False)
    def _watch(self, watcher: RunWatcher) -> None:
        worker = get_current_worker()
        said, pause = "", 1.0
        while not worker.is_cancelled:
            t = time.monotonic()
            try:
                snap, chunk = watcher.poll()
            except Exception as exc:  # noqa: BLE001 - an unexpected read failure must not kill the watcher
                if str(exc) != said:  # each distinct failure is shown once, then retried less and less often
                    said = str(exc)
                    self.call_from_thread(self.notify, f"reading the run failed: {exc}; retrying",
                                          severity="warning")
                time.sleep(pause)
                pause = min(30.0, pause * 2)
                continue
            said, pause = "", 1.0
            problem = watcher.take_problem()  # a damaged or foreign store: named once, with the fix
            if problem:
                self.call_from_thread(self.notify, problem, severity="error", timeout=30)
            if snap is not None:
                self.post_message(RunUpdated(snap))
            if chunk is not None:
                self.post_message(LogArrived(chunk))
            time.sleep(max(0.0, self.poll_s - (time.monotonic() - t)))

    def _view(self) -> RunView | None:
        if self.snapshot is None:
            return None
        session = self.session
        return RunView(self.snapshot, run_dir=session.run_dir if session else None,
                       has_store=bool(session and session.has_store()),
                       launching=bool(session and session.runner_state(self.snapshot) == "starting"),
                       queued=len(session.queue) if session else 0,
                       runner_args=session.runner_args if session else ())

    def show_view(self) -> None:
        """Publish the latest `RunView`: the screens watching `run_view` render it (the one on top at once,
        the others when they come back on top)."""
        view = self._view()
        if view is not None:
            self.run_view = view

    def refresh_view(self) -> None:
        """Once a second: the header's truth (a runner that started or ended, the approval countdown) does not
        wait for the run to change."""
        if self.snapshot is None or self.session is None:
            return
        self.on_run_updated(RunUpdated(self.snapshot))

    def on_run_updated(self, message: RunUpdated) -> None:
        self.snapshot = message.snapshot
        self.tick_session()
        self.show_view()

    def tick_session(self) -> None:
        """Start the next queued runner if nobody owns the run now; report runners that died."""
        if self.session is None:
            return
        started = self.session.tick(self.snapshot)
        if started:
            self.notify(started)
        for failure in self.launcher.take_failures():
            self.notify(failure, severity="error", timeout=20)

    def on_log_arrived(self, message: LogArrived) -> None:
        watcher, reader = self.watcher, self._log_reader
        if watcher is None:
            return
        # the cell view gets its lines even under a dialog: no line is lost
        if reader is None or reader not in self.screen_stack:
            watcher.ui_ready.set()  # nobody shows this log any more: let the watcher go on
            return
        # back-pressure: the next batch waits until the reader has this one on screen
        reader.post_message(LogShown(message.chunk, watcher.ui_ready.set))

    def watch_cell(self, cell_id: str | None) -> None:
        if self.watcher is not None:
            self.watcher.set_cell(cell_id)
            self.watcher.ui_ready.set()  # a batch sent to a screen that closed since is never acknowledged
            if not self.live:
                self.poll_now()

    def started_run(self) -> None:
        """The session created the run folder: start watching it."""
        if self.session is not None and self.session.run_dir is not None and self.watcher is None:
            self.watch_run(self.session.run_dir)

    # --- what screens ask for -------------------------------------------------------------------------------
    def on_open_experiment(self, message: OpenExperiment) -> None:
        self.open_experiment(message.path)

    def on_open_run(self, message: OpenRun) -> None:
        self.open_run(message.path)

    def on_watch_cell(self, message: WatchCell) -> None:
        self._log_reader = message.screen if message.cell_id is not None else None
        self.watch_cell(message.cell_id)
        if message.cell_id is not None:  # a cell view is the heaviest screen: freeze it once it is built
            self.call_after_refresh(self.freeze_heap)

    def on_start_cells(self, message: StartCells) -> None:
        session = self.session
        if session is None:
            return
        try:
            msg = session.start(message.cell_ids, self.snapshot)
        except Exception as exc:  # noqa: BLE001 - show, do not crash: the operator can fix and retry
            self.notify(f"could not start a runner: {exc}", severity="error", timeout=10)
            return
        self.started_run()
        message.screen.post_message(CellsStarted())
        self.notify(msg, timeout=8)

    def on_review_cell(self, message: ReviewCell) -> None:
        actions.ask_approval(self, message.cell_id)

    def on_cancel_cell(self, message: CancelCell) -> None:
        actions.ask_cancel(self, message.cell_id)

    def on_rerun_smoke(self, message: RerunSmoke) -> None:
        actions.ask_rerun_smoke(self, message.cell_id)

    def on_close_run(self, message: CloseRun) -> None:
        session = self.session
        if session is not None and session.queue:
            self.notify(f"{len(session.queue)} queued start(s) dropped: start them again when the runner is done",
                        severity="warning")
        self.close_session()
        self.pop_screen()

    # --- actions ----------------------------------------------------------------------------------------------
    def action_help(self) -> None:
        from console.app.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(type(self.screen).__name__))

