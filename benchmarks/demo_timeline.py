"""Where a run's wall time went, per serving config: server start, speed, smoke, waiting for approval, full run.

    python benchmarks/demo_timeline.py runs/RUN [runs/OTHER ...]

Reads only the run's events.jsonl (server_starting/ready/stopped, cell_state, server_busy), so it works on any
finished or running run folder. Used to compare the demo before and after a change side by side (#12: the
first demo's length); print two runs together to see which stage moved.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

from console.run.eventlog import read_events


def timeline(run_dir: Path) -> tuple[list[tuple[str, dict[str, float]]], float]:
    events, _ = read_events(run_dir / "events.jsonl")
    first = min(e.ts for e in events)
    last = max(e.ts for e in events)
    per: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    order: list[str] = []
    starting: dict[str, float] = {}
    entered: dict[str, tuple[str, float, str]] = {}
    for e in events:
        d = e.to_dict()
        kind, key = d["kind"], d.get("serving_key")
        cell = d.get("cell_id") or ""
        config = cell.rsplit(".", 2)[0] if cell.count(".") >= 4 else cell
        if kind == "server_starting":
            starting[key] = e.ts
            if config not in order:
                order.append(config)
        elif kind in ("server_ready", "server_failed") and key in starting:
            per[config]["start"] += e.ts - starting.pop(key)
        elif kind == "cell_state":
            if cell in entered:
                state, t0, cfg = entered.pop(cell)
                if state in ("speed", "smoke", "full", "awaiting_approval"):
                    per[cfg][state] += e.ts - t0
            entered[cell] = (d["new"], e.ts, config)
    return [(c, dict(per[c])) for c in order], last - first


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    cols = ("start", "speed", "smoke", "awaiting_approval", "full")
    for arg in argv:
        rows, wall = timeline(Path(arg))
        print(f"\n{arg}: {wall:.0f} s wall ({wall / 60:.1f} min)")
        print(f"{'config':36}" + "".join(f"{c[:8]:>10}" for c in cols) + f"{'sum':>10}")
        totals = defaultdict(float)
        for config, t in rows:
            print(f"{config:36}" + "".join(f"{t.get(c, 0):10.0f}" for c in cols) + f"{sum(t.values()):10.0f}")
            for c in cols:
                totals[c] += t.get(c, 0)
        print(f"{'all':36}" + "".join(f"{totals[c]:10.0f}" for c in cols) + f"{sum(totals.values()):10.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
