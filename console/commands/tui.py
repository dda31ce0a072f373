"""`specdeck tui [EXPERIMENT | RUN_DIR]`: the console — select cells, watch them, approve, read results."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "tui"
HELP = "the console: pick cells, start them, watch logs and acceptance, approve full runs, read results"
DESCRIPTION = """\
A keyboard-first terminal console over the same core as the other commands.

  specdeck tui                          pick an experiment or a run
  specdeck tui experiments/demo.toml    the experiment's cell matrix: select (space, a), start (s)
  specdeck tui runs/<run-id>            attach to a run (also: a run id, or 'latest')

Runs are owned by a runner process in its own session (started here or by `specdeck run`): quitting the
console or losing the SSH connection never stops a run; `specdeck tui RUN_DIR` shows it again.
Press ? in the console for the keys.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", nargs="?", help="experiment .toml, run folder, run id or 'latest' (default: a picker)")
    p.add_argument("--models-dir", type=Path, help="where @models/ paths point (passed to the runners started)")
    p.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="the runners the console starts spread the serving configs over a Ray cluster, as "
                        "`specdeck run --ray [ADDRESS]` does (see `specdeck run --help`); each cell shows the "
                        "node it ran on")


def runner_args(ray: str | None) -> tuple[str, ...]:
    """What every runner the console starts gets from `--ray [ADDRESS]` (None: not given)."""
    return () if ray is None else ("--ray", *((ray,) if ray else ()))


def run(args: argparse.Namespace) -> int:
    from console.run.folder import find_run

    target = args.target
    if target is not None and not (target.endswith(".toml") and Path(target).is_file()):
        target = str(find_run(target).path)
    elif target is not None:
        from console.experiment.loader import load_experiment

        load_experiment(Path(target))  # a SpecError lists every problem (cli.main prints it), before the screen
    from console.app.app import SpecdeckApp

    SpecdeckApp(target, models_dir=args.models_dir, runner_args=runner_args(args.ray)).run()
    return 0
