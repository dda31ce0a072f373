"""Where a run's wall time went, per serving config: server start, speed, smoke, waiting for approval, full run.

    python benchmarks/demo_timeline.py runs/RUN [runs/OTHER ...]

Reads only the run's events.jsonl (server_starting/ready, server_busy), so it works on any finished or running
run folder. Columns are seconds with requests in flight per stage; with the next config's server starting behind
this one's evals (a CPU box) start-ups overlap the evals, so the columns may add up to more than the wall time. Used to compare the demo before and after a change side by side (#12: the
first demo's length); print two runs together to see which stage moved.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

from console.experiment.cells import config_of
from console.run.eventlog import read_events


def timeline(run_dir: Path) -> tuple[list[tuple[str, dict[str, float]]], float]:
    """Per serving config: start-up (server_starting → server_ready) and the time with requests in flight per
    stage (the union of its `server_busy` spans: a stage's benchmarks overlap), in order of first start."""
    events, _ = read_events(run_dir / "events.jsonl")
    first = min(e.ts for e in events)
    last = max(e.ts for e in events)
    per: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    spans: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    order: list[str] = []
    starting: dict[str, float] = {}
    for e in events:
        d = e.to_dict()
        kind, key = d["kind"], d.get("serving_key")
        cell = d.get("cell_id") or ""
        config = config_of(cell)
        if kind == "server_starting":
            starting[key] = e.ts
            if config not in order:
                order.append(config)
        elif kind in ("server_ready", "server_failed") and key in starting:
            per[config]["start"] += e.ts - starting.pop(key)
        elif kind == "server_busy":
            stage = str(d.get("phase") or "").split(":", 1)[0]
            began = float(d.get("started") or e.ts)
            spans[(config, stage)].append((began, began + float(d.get("seconds") or 0.0)))
    for (config, stage), iv in spans.items():
        iv.sort()
        total, cur = 0.0, None
        for a, b in iv:
            if cur is None or a > cur[1]:
                total += (cur[1] - cur[0]) if cur else 0.0
                cur = [a, b]
            else:
                cur[1] = max(cur[1], b)
        total += (cur[1] - cur[0]) if cur else 0.0
        per[config][stage] += total
    return [(c, dict(per[c])) for c in order], last - first


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    cols = ("start", "speed", "smoke", "full")
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
