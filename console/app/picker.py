"""The picker: experiments/*.toml (validation problems shown inline) and the runs under runs/."""

from __future__ import annotations

from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual.worker import get_current_worker

from console.app.messages import ConsoleSettings, OpenExperiment, OpenRun
from widgets.experiment_list import ExperimentList, PickerEntry

MAX_RUNS = 15


def experiment_entries(folder: Path) -> list[PickerEntry]:
    from console.experiment.loader import SpecError, load_experiment

    out = []
    for path in sorted(folder.glob("*.toml")):
        try:
            exp = load_experiment(path)
        except SpecError as exc:
            problems = tuple(f"line {p.line}: {p.key}: {p.message}" if p.line else f"{p.key}: {p.message}"
                             for p in exc.problems)
            out.append(PickerEntry("experiment", str(path), path.name, f"{len(problems)} problem(s)", problems))
            continue
        except OSError as exc:
            out.append(PickerEntry("experiment", str(path), path.name, "unreadable", (str(exc),)))
            continue
        toy = " · toy models" if any(c.model.toy for c in exp.cells) else ""
        out.append(PickerEntry("experiment", str(path), path.name,
                               f"{exp.spec.experiment.name}: {len(exp.cells)} cells{toy}"))
    return out


def with_preflight(entry: PickerEntry) -> PickerEntry:
    """A valid experiment's entry with `specdeck preflight`'s verdict (the hub is not asked) appended."""
    from dataclasses import replace

    if entry.kind != "experiment" or entry.problems or not entry.key:
        return entry
    return replace(entry, detail=f"{entry.detail} · {preflight_verdict(Path(entry.key))}")


_VERDICTS: dict[tuple[str, int], str] = {}
"""(experiment file, its mtime) → the picker's preflight verdict: a rescan does not check an unchanged file again."""


def preflight_verdict(path: Path) -> str:
    from console.experiment.loader import load_experiment
    from console.preflight.run import preflight

    try:
        key = (str(path.resolve()), path.stat().st_mtime_ns)
    except OSError as exc:
        return f"preflight could not run: {exc}"
    if key in _VERDICTS:
        return _VERDICTS[key]
    try:
        report = preflight(load_experiment(path), network=False)
    except Exception as exc:  # noqa: BLE001 - the picker shows it, the operator runs preflight by hand
        return f"preflight could not run: {exc}"
    failed = report.counts()["fail"]
    verdict = f"preflight: {failed} ✗ (specdeck preflight {path.name})" if failed else "preflight ✓"
    _VERDICTS[key] = verdict
    return verdict


def run_summary(run_dir: Path) -> str:
    """`12 cells: 3 done, 1 awaiting_approval · runner alive`, read-only (the picker writes nothing)."""
    from console.run.folder import RunFolder
    from console.run.store import StoreError

    folder = RunFolder(run_dir)
    try:
        store = folder.read_store()
        try:
            counts = store.state_counts()
            runner = folder.runner(store)
        finally:
            store.close()
    except StoreError as exc:
        return f"unreadable store: {exc.message}"
    total = sum(counts.values())
    shown = ", ".join(f"{n} {s}" for s, n in sorted(counts.items(), key=lambda kv: -kv[1])[:4])
    alive = " · runner alive" if runner is not None and runner.alive else ""
    return f"{total} cells: {shown}{alive}" if total else f"no cells yet{alive}"


def run_entries(root: Path) -> list[PickerEntry]:
    from console.run.folder import list_runs

    runs = list_runs(root)
    return [PickerEntry("run", str(r.path), r.name, run_summary(r.path)) for r in reversed(runs[-MAX_RUNS:])]


class PickerScreen(Screen[None]):
    """Choose an experiment to run or a run to attach to."""

    BINDINGS = [Binding("r", "rescan", "Rescan")]

    def __init__(self, settings: ConsoleSettings) -> None:
        super().__init__()
        self.settings = settings

    def compose(self) -> ComposeResult:
        yield Static("[b]specdeck[/b] — open an experiment (▶) to select and start cells, or a run (◆) to "
                     "attach to it", id="picker-head")
        yield ExperimentList(id="picker")
        yield Footer()

    def on_screen_resume(self) -> None:
        """Scanned each time the picker comes on top (its first showing included: Textual sends ScreenResume
        when a screen is pushed), never while another screen hides it — a console opened on an experiment
        or a run pushes the matrix over it at once, and the preflight of every experiment under
        experiments/ (tens of seconds of CPU for the study files) would compete with everything else."""
        if self.is_current:
            self.action_rescan()

    def _folders(self) -> tuple[Path, Path]:
        from console.examples import experiments_dir
        from console.run.paths import runs_root

        return self.settings.experiments_dir or experiments_dir(), self.settings.runs_root or runs_root()

    def action_rescan(self) -> None:
        exp_dir, root = self._folders()
        if self.settings.live:
            self._scan(exp_dir, root)
        else:
            self._fill(experiment_entries(exp_dir) + run_entries(root))

    @work(thread=True, exclusive=True, group="scan", exit_on_error=False)
    def _scan(self, exp_dir: Path, root: Path) -> None:
        worker = get_current_worker()
        entries = experiment_entries(exp_dir) + run_entries(root)
        self.app.call_from_thread(self._fill, entries)
        checked = []
        for entry in entries:  # slower: shown when ready; given up as soon as the picker is left
            if worker.is_cancelled or not self.is_current:
                return
            checked.append(with_preflight(entry))
        self.app.call_from_thread(self._fill, checked)

    def on_screen_suspend(self) -> None:
        self.workers.cancel_group(self, "scan")

    def _fill(self, entries: list[PickerEntry]) -> None:
        lst = self.query_one(ExperimentList)
        lst.set_entries(entries or [PickerEntry("experiment", "", "no experiments found",
                                                "put .toml files under experiments/ or pass one: specdeck tui FILE")])
        lst.focus()

    def on_experiment_list_picked(self, message: ExperimentList.Picked) -> None:
        e = message.entry
        if not e.key:
            return
        if e.kind == "experiment":
            if e.problems:
                self.notify(f"{e.title} has problems: fix them (see the red lines) and press r to rescan",
                            severity="error")
                return
            self.post_message(OpenExperiment(Path(e.key)))
        else:
            self.post_message(OpenRun(Path(e.key)))
