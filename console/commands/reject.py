"""`specdeck reject RUN CELL`: the operator's decision on a cell whose smoke passed."""

from __future__ import annotations

import argparse

NAME = "reject"
HELP = "reject a cell's full run after its smoke (the cell is cancelled, the reason kept)"
DESCRIPTION = """\
Record that a cell's full run should not happen, with the reason; the cell is cancelled.

examples:
  specdeck reject latest tiny.bf16.draft-noisy-k4.short.c1 --reason "drafter too slow to matter"
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run folder, run id, or 'latest'")
    p.add_argument("cell", help="cell id")
    p.add_argument("--reason", required=True, help="why (kept with the run)")


def run(args: argparse.Namespace) -> int:
    from console.run.decide import decide
    from console.run.folder import find_run

    return decide(find_run(args.run).path, args.cell, "reject", reason=args.reason)
