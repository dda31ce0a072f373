"""`specdeck status RUN`: the cell table of a run, with states, reasons, speed and smoke verdicts."""

from __future__ import annotations

import argparse
import textwrap
import time

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
    from console.cluster.where import node_label, placement
    from console.run.cli_output import cell_table, eval_table
    from console.run.folder import find_run
    from console.run.gpu_busy import run_gpu_busy
    from console.units import gpu_hours

    folder = find_run(args.run)
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
    where = {r.cell_id: node_label(placement(store, r.cell_id)) for r in store.cells()}
    if any(where.values()):
        print("\nwhere each cell ran (Ray worker: host (IP) and the GPUs or slots it held):")
        width = max(map(len, where))
        print("\n".join(f"  {cell:<{width}}  {node or '(not started)'}" for cell, node in where.items()))
    evals = eval_table(store)
    if evals:
        print("\nevals (wall = this attempt, framework start-up included; estimate = what approval showed):")
        print(evals)
    pending = store.decisions(pending_only=True)
    if pending:
        print("\ndecisions recorded, not yet taken by a runner:")
        for d in pending:
            bench = f" ({d.bench_id})" if d.bench_id else ""
            when = time.strftime("%H:%M:%S", time.localtime(d.ts))
            print(f"  {d.cell_id}{bench}: {d.action} by {d.who} at {when}")
        if not (runner and runner.alive):
            print(f"  no runner is active: `specdeck resume {run_dir}` carries them out")
    waiting = [c for c in store.cells() if c.state.value == "awaiting_approval"]
    if waiting:
        print("\nwaiting for approval:")
        for c in waiting:
            todo = decisions_left(store, c.cell_id)
            if not todo:
                print(f"  {c.cell_id}: decided (see above); the runner takes it between steps")
                continue
            est = [d.get("estimate") or {} for cid, b, _p, d in store.verdicts(c.cell_id) if b in todo]
            hours = sum(e.get("gpu_hours") or 0 for e in est)
            cmd = f"specdeck approve {run_dir} {c.cell_id}"
            if partly_decided(store, c.cell_id):  # one benchmark decided already: name the ones left
                cmd = "   ".join(f"{cmd} --bench {b}" for b in todo)
            print(f"  {c.cell_id}: full run ≈ {gpu_hours(hours)}   {cmd}")
    busy = run_gpu_busy(run_dir, now=time.time() if runner and runner.alive else None)
    print("\nGPU busy (from events.jsonl; requests in flight includes each phase's own set-up):")
    print("\n".join(f"  {line}" for line in busy.lines()))
    return 0


def _decisions(store, cell_id: str) -> list:  # noqa: ANN001
    return [d for d in store.decisions() if d.cell_id == cell_id and d.action in ("approve", "reject")]


def partly_decided(store, cell_id: str) -> bool:  # noqa: ANN001
    return bool(_decisions(store, cell_id))


def decisions_left(store, cell_id: str) -> list[str]:  # noqa: ANN001
    """Benchmarks of this cell's smoke with no approve / reject recorded (pending or taken)."""
    benches = [b for _c, b, _p, _d in store.verdicts(cell_id)]
    decided: set[str] = set()
    for d in _decisions(store, cell_id):
        decided |= {d.bench_id} if d.bench_id else set(benches)
    return [b for b in benches if b not in decided]
