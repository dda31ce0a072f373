"""`specdeck resume RUN`: continue a run where it stopped (after a crash, a kill, or --until)."""

from __future__ import annotations

import argparse
import sys

from console.commands.run import add_common, execute

NAME = "resume"
HELP = "continue a stopped or killed run; finished items are never redone"
DESCRIPTION = """\
Continue a run from its store: cells keep their states, measured speeds and scored items are kept,
interrupted stages pick up at the first unfinished item. Uses the run's frozen copy of the experiment,
so later edits to the original file do not change a run in flight.

examples:
  specdeck resume latest
  specdeck resume runs/20261123-031502-demo --until full
  specdeck resume latest --retry-failed     # after fixing what failed a cell: redo only that
  specdeck resume latest --ray HEAD:6379    # the head died: continue on the Ray cluster (nothing redone)
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run folder, run id, or 'latest'")
    add_common(p)


def run(args: argparse.Namespace) -> int:
    from console.run.folder import find_run

    found = find_run(args.run)
    return execute(None, args, found.path, sys.argv[1:])
