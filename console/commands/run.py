"""`specdeck run EXPERIMENT`: speed → smoke → approval → full, durable and resumable."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

NAME = "run"
HELP = "run an experiment: speed → 5-item smoke → your approval → full accuracy run (resumable)"
DESCRIPTION = """\
Take an experiment's cells through the whole workflow, one vLLM server per serving config:

  1. speed   non-streaming Σ completion_tokens / wall clock, acceptance from /metrics
  2. smoke   5 items per benchmark; sanity rules (not blank, extracted, not truncated, above chance)
  3. approval  a cell whose smoke passed waits for `specdeck approve RUN CELL` (or the TUI), which is
             shown the full-run cost estimate; its server stays up for the approval window (--approval-window)
             so an approval in time needs no second start; after it the server stops and restarts on approval
  4. full    the approved benchmarks in full, every item committed as it finishes

Everything lands in runs/<run-id>/ (state.sqlite, events.jsonl, cells/<cell>/…). Killed at any point,
`specdeck resume RUN` continues where it stopped: finished items are never redone.

examples:
  specdeck run experiments/demo.toml                         # all the way, waiting for approvals
  specdeck run experiments/demo.toml --until smoke           # stop after the smoke verdicts
  specdeck run experiments/demo.toml --cells '*draft*c1' --detach   # survives the SSH session
  specdeck run experiments/demo.toml --yes-after-smoke       # unattended: approve every passed smoke
  specdeck run experiments/demo.toml --ray local             # two configs at once on a local Ray (2 slots)
  specdeck run experiments/study-h100.toml --ray HEAD:6379   # spread over a Ray cluster of GPU boxes

With --ray, each serving config's group runs as a Ray task on a node with the GPUs it needs (its own server
there); this machine keeps the run folder, the smoke gate and every decision (docs/cluster.md).
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("experiment", help="experiment .toml file")
    add_common(p)


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cells", metavar="GLOB", help="only cells whose id matches, e.g. '*.mtp-k8.*'")
    p.add_argument("--until", choices=("speed", "smoke", "full"), default=None,
                   help="stop after this stage (default full; a resume keeps the run's own)")
    p.add_argument("--yes-after-smoke", action="store_true",
                   help="approve every passed smoke without asking (unattended use; never the default)")
    p.add_argument("--no-wait", action="store_true",
                   help="exit when only approvals are left and their approval windows have closed (resume "
                        "later) instead of waiting for them")
    p.add_argument("--approval-window", type=float, default=None, metavar="S", dest="approval_window",
                   help="keep a config's server up this long waiting for its approval, so an approval in time "
                        "needs no new server start (default 900 on a GPU, 300 when the experiment's device is "
                        "cpu); other configs wait meanwhile when one server fits at a time")
    p.add_argument("--idle-timeout", type=float, dest="approval_window", help=argparse.SUPPRESS)
    p.add_argument("--detach", action="store_true",
                   help="run in the background in its own session (closing the terminal does not stop it)")
    p.add_argument("--retry-failed", action="store_true",
                   help="put failed cells back in the queue (after you fixed the cause); measured speeds and "
                        "scored items are kept, so only what failed is redone")
    p.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="run the serving-config groups as tasks on a Ray cluster: ADDRESS is auto (the cluster "
                        "`ray start` joined this machine to), HOST:6379, ray://HOST:10001, or local (a Ray of this "
                        "machine alone with [cluster] local_slots slots, 2 by default); bare --ray uses the "
                        "experiment's [cluster] address, and without one joins this machine's Ray cluster if it "
                        "belongs to one, else starts a local Ray. Needs pip install 'specdeck[cluster]'")
    p.add_argument("--models-dir", type=Path, help="where @models/ paths point")
    p.add_argument("--offline", action="store_true",
                   help="eval frameworks get HF_HUB_OFFLINE=1 / HF_DATASETS_OFFLINE=1 (a dataset that is not "
                        "cached fails). Default: offline only when `specdeck prepare` recorded everything local, "
                        "or nothing comes from the hub")
    p.add_argument("--run-dir", type=Path, help=argparse.SUPPRESS)


def detach(argv: list[str], run_dir: Path) -> int:
    """Re-start this command as a runner in its own session (console.run.launch); its output goes to runner.log."""
    from console.run.launch import start_detached

    started = start_detached(argv, run_dir)
    print(f"runner started in the background (pid {started.pid}); run folder: {started.run_dir}")
    print(f"  watch:   specdeck status {started.run_dir}      or   specdeck tui {started.run_dir}")
    print(f"  output:  {started.log_path}")
    return 0


def execute(exp_path: Path | None, args: argparse.Namespace, run_dir: Path | None, argv: list[str]) -> int:
    from console.experiment.loader import load_experiment
    from console.prepare import offline_decision
    from console.run.cli_output import EventPrinter
    from console.run.folder import RunFolder
    from console.run.paths import new_run_dir
    from console.run.phases import RealPhases
    from console.run.resolved import load_frozen
    from console.run.runner import Runner, RunOptions

    if exp_path is not None:
        exp = load_experiment(exp_path)
    else:
        assert run_dir is not None
        folder = RunFolder(run_dir)
        if not folder.experiment_copy.exists():
            print(f"{run_dir} never got past its start (no experiment.toml): start it again with "
                  "`specdeck run EXPERIMENT`", file=sys.stderr)
            return 2
        store = folder.open_store()  # a resume: this process becomes the run's writer
        origin = store.meta("origin_dir")
        store.close()
        exp = load_frozen(run_dir, Path(origin) if origin else None)
    if run_dir is None:
        run_dir = new_run_dir(exp.spec.experiment.name)
    if args.detach:
        return detach([a for a in argv if a != "--detach"], run_dir)
    until = args.until
    if until is None and RunFolder(run_dir).is_run():  # a resume keeps the run's own --until
        store = RunFolder(run_dir).read_store()
        until = store.meta("until")
        store.close()
    opts = RunOptions(until=until or "full", cells=args.cells, yes_after_smoke=args.yes_after_smoke,
                      wait_for_approval=not args.no_wait, approval_window_s=args.approval_window,
                      models_dir=args.models_dir, retry_failed=args.retry_failed)
    printer = EventPrinter(run_dir)
    offline, why = offline_decision(exp, getattr(args, "offline", False), models_dir=args.models_dir)
    phases = RealPhases(models_dir=args.models_dir, base_dir=exp.base_dir, offline=offline,
                        experiment=str(exp_path or exp.path))
    try:
        if getattr(args, "ray", None) is not None:
            from console.cluster.ray_backend import start_head

            runner, info = start_head(exp, run_dir, phases, opts, args.ray, offline=offline, on_event=printer)
            slots = f"{info['resources'].get(info['slot_resource'] or 'GPU', 0):g} " \
                    f"{info['slot_resource'] or 'GPU'}(s)"
            print(f"Ray cluster: {info['nodes']} node(s), {slots}")
        else:
            runner = Runner(exp, run_dir, phases, opts, on_event=printer)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"run folder: {run_dir}")
    print(why)
    if any(c.model.toy for c in runner.cells):
        print("NOTE: toy models (a tiny Llama trained on one quiz): the machinery is real, the scores are not.")
    stop_like_ctrl_c(signal.SIGTERM, signal.SIGHUP)
    try:
        states = runner.run()
    except KeyboardInterrupt as exc:
        how = f" by {exc.args[0]}" if exc.args else ""
        print(f"\ninterrupted{how}; its servers are stopped; continue with: specdeck resume {run_dir}",
              file=sys.stderr)
        return 128 + int(getattr(signal, exc.args[0])) if exc.args else 130
    printer.summary(states)
    return 1 if any(s == "failed" for s in states.values()) else 0


def stop_like_ctrl_c(*signals: signal.Signals) -> None:
    """Let `kill` (SIGTERM) and a closed SSH session (SIGHUP) stop the runner the way Ctrl-C does: the runner's
    `finally` stops the vLLM servers it started and releases the run. Python's default for both ends the
    process at once, which left the servers (own process groups) running and holding the GPU until a resume."""
    def interrupt(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    for sig in signals:
        if signal.getsignal(sig) is not signal.SIG_IGN:  # `nohup specdeck run …` keeps ignoring SIGHUP
            signal.signal(sig, interrupt)


def run(args: argparse.Namespace) -> int:
    return execute(Path(args.experiment), args, args.run_dir, sys.argv[1:])
