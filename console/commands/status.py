"""`specdeck status RUN`: the cell table of a run, with states, reasons, speed and smoke verdicts."""

from __future__ import annotations

import argparse
import textwrap

NAME = "status"
HELP = "show a run's cells: state and reason, tok/s, acceptance, smoke verdicts, pending approvals"
DESCRIPTION = """\
Read a run's store and print where every cell is, why, and what it measured; list the cells waiting
for approval with their full-run estimate, and whether the runner is alive.

examples:
  specdeck status latest
  specdeck status runs/20261123-031502-demo
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", nargs="?", default="latest", help="run folder, run id, or 'latest' (default)")


def run(args: argparse.Namespace) -> int:
    from console.run.cli_output import cell_table, eval_table
    from console.run.folder import find_run_or_say
    from console.units import gpu_hours

    folder = find_run_or_say(args.run)
    if folder is None:
        return 2
    run_dir = folder.path
    store = folder.read_store()
    print(f"run {run_dir.name}  ({store.meta('experiment', '?')})")
    runner = folder.runner(store)
    if runner:
        alive = "alive" if runner.alive else f"{runner.describe()}: `specdeck resume {run_dir}` continues"
        print(f"runner: pid {runner.pid} on {runner.host}, {alive}")
    else:
        print(f"runner: none (finished or stopped; `specdeck resume {run_dir}` continues)")
    for caveat in store.meta("caveats", []) or []:
        print(textwrap.fill(f"caveat: {caveat}", width=110, subsequent_indent="  "))
    print()
    print(cell_table(store))
    evals = eval_table(store)
    if evals:
        print("\nevals (wall = this attempt, framework start-up included; estimate = what approval showed):")
        print(evals)
    waiting = [c for c in store.cells() if c.state.value == "awaiting_approval"]
    if waiting:
        print("\nwaiting for approval:")
        for c in waiting:
            est = [d.get("estimate") or {} for cid, _b, _p, d in store.verdicts(c.cell_id)]
            hours = sum(e.get("gpu_hours") or 0 for e in est)
            print(f"  {c.cell_id}: full run ≈ {gpu_hours(hours)}   specdeck approve {run_dir} {c.cell_id}")
    return 0
