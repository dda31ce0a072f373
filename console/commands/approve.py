"""`specdeck approve RUN CELL`: the operator's decision on a cell whose smoke passed."""

from __future__ import annotations

import argparse

NAME = "approve"
HELP = "approve a cell's full accuracy run after its smoke passed (shows results and the cost first)"
DESCRIPTION = """\
Show the cell's smoke results, sanity reasons and the full-run estimate (GPU-hours, wall time), then
record your approval (who and when, with the estimate you were shown). The runner starts the full run;
if no runner is active, `specdeck resume RUN` does.

examples:
  specdeck approve latest tiny.bf16.draft-exact-k4.short.c1
  specdeck approve runs/20261123-031502-demo tiny.bf16.ar.short.c1 --bench toy-mcq --yes
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run folder, run id, or 'latest'")
    p.add_argument("cell", help="cell id")
    p.add_argument("--bench", help="approve only this benchmark's full run")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")


def run(args: argparse.Namespace) -> int:
    from console.run.decide import decide
    from console.run.folder import find_run

    return decide(find_run(args.run).path, args.cell, "approve", bench=args.bench, yes=args.yes)
