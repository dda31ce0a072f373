"""`specdeck cancel RUN CELL…`: take cells out of a run (queued ones never start; a running one stops after
its current phase)."""

from __future__ import annotations

import argparse
import fnmatch
import getpass
import sys

NAME = "cancel"
HELP = "cancel cells of a run (globs allowed): queued cells never start, a running one stops after its phase"
DESCRIPTION = """\
Record a cancel decision, with the reason, for every matching cell that has not finished. The runner
applies it between steps: a planned or waiting cell never starts, a cell inside a phase stops once that
phase ends (measured speeds and scored items are kept). Cancelled cells show as cancelled, with the
reason, in status, the console and reports.

examples:
  specdeck cancel latest 'tiny.bf16.*.8k.c16' --reason "8K x c16 takes ~15 min a point on this CPU"
  specdeck cancel runs/20261123-070409-demo tiny.bf16.ngram-k4.short.c1 --reason "not needed"
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run folder, run id, or 'latest'")
    p.add_argument("cells", nargs="+", metavar="CELL", help="cell ids or globs (quote globs)")
    p.add_argument("--reason", required=True, help="why (kept with the run)")


def run(args: argparse.Namespace) -> int:
    from console.run.folder import find_run
    from console.run.store import DecisionConflict

    folder = find_run(args.run)
    run_dir = folder.path
    store = folder.open_store()
    rows = store.cells()
    matched = [r for r in rows if any(fnmatch.fnmatchcase(r.cell_id, g) for g in args.cells)]
    if not matched:
        print(f"no cell of {run_dir.name} matches {' '.join(args.cells)}; cells: "
              f"{', '.join(r.cell_id for r in rows[:6])}{' …' if len(rows) > 6 else ''}", file=sys.stderr)
        return 2
    who = getpass.getuser()
    for r in matched:
        if r.state.terminal:
            print(f"{r.cell_id}: already {r.state.value}, left as it is")
            continue
        try:
            store.decide(r.cell_id, "cancel", who, reason=args.reason)
        except DecisionConflict as exc:  # cancelled already (pending or taken): said, not recorded twice
            print(f"{exc}; nothing new recorded")
            continue
        print(f"{r.cell_id}: cancel recorded ({r.state.value} now)")
    note = "the runner applies it between steps" if store.runner() else \
        f"no runner is active: it applies when the run resumes (`specdeck resume {run_dir}`)"
    print(note)
    return 0
