"""`specdeck demo`: the embedded default, end to end on toy models and real vLLM."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

NAME = "demo"
HELP = "build the toy models if missing and open the console on experiments/demo.toml (--headless: no UI)"
DESCRIPTION = """\
The embedded default. Builds the toy models once (cached), then opens the console (`specdeck tui`)
on experiments/demo.toml — a 68 M-parameter toy target (the trained 2-layer toy widened with zeros: the
same function at a bigger model's cost), AR, draft_model with the tiny model itself as drafter, draft_model
with a noisy drafter swept over k = 2, 4, 8, ngram (6 vLLM servers, one per technique and k): select
cells (space, a), start them (s), watch the vLLM log, acceptance and smoke, approve the full run (y),
read the results (R: speed-ups, the k curve, the Pareto frontiers). Press ? in the console for the keys.

--headless (or no terminal) instead starts, for each serving config, a real vLLM server, times
non-streaming 128-token requests with ignore_eos (tok/s = Σ completion_tokens / wall clock), reads
acceptance from /metrics, and stops the server.

The models are toys (a 2-layer Llama trained ~6 CPU-minutes on one quiz, gibberish otherwise, and its
widened copy); the machinery is real. The first run builds them (~6 minutes, progress shown; the widening
takes seconds); later runs reuse the cache.

examples:
  specdeck demo
  specdeck demo --headless --requests 8 --concurrency 4
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--experiment", type=Path, default=None,
                   help="experiment file (default: the demo.toml shipped with specdeck)")
    p.add_argument("--requests", type=int, default=4, help="timed requests per server (default 4)")
    p.add_argument("--concurrency", type=int, default=1, help="concurrent requests (default 1)")
    p.add_argument("--max-tokens", type=int, default=128, help="output tokens per request (default 128)")
    p.add_argument("--headless", action="store_true",
                   help="no console: time each serving config once and print a table (the default without a terminal)")


def open_console(args: argparse.Namespace) -> int:
    """Build the models (once), then the console on the demo experiment."""
    from console.experiment.loader import load_experiment_or_say
    from console.models import build_models, default_models_dir

    if load_experiment_or_say(args.experiment) is None:
        return 1
    print("building the toy models (first time ≈ 6 min: the target trains on one CPU core; cached after) …",
          flush=True)
    build_models(default_models_dir(), progress=lambda msg: print(f"  {msg}", flush=True))
    from console.app.app import SpecdeckApp

    SpecdeckApp(args.experiment).run()
    return 0


def prompt_words() -> list[str]:
    """Words for the demo's timed prompts: the README of a source checkout, else the corpus shipped with the
    package (a wheel install has no README beside the code)."""
    from console.examples import SOURCE

    readme = SOURCE.parent / "README.md"
    source = readme if readme.is_file() else Path(__file__).resolve().parents[1] / "models" / "corpus.txt"
    return source.read_text(encoding="utf-8").split()


def run(args: argparse.Namespace) -> int:
    if args.experiment is None:
        from console.examples import demo_experiment

        args.experiment = demo_experiment()
    if not args.headless:
        if sys.stdin.isatty() and sys.stdout.isatty():
            return open_console(args)
        print("no terminal: running the headless demo (specdeck demo --headless)", file=sys.stderr)
    return headless(args)


def headless(args: argparse.Namespace) -> int:
    from console.bench.quick import quick_speed
    from console.experiment.loader import load_experiment_or_say
    from console.models import build_models, default_models_dir
    from console.run.paths import new_run_dir
    from console.serve.metrics import acceptance_between, scrape
    from console.serve.pool import ServerPool
    from console.serve.server import ServerStartError, new_api_key

    exp = load_experiment_or_say(args.experiment)
    if exp is None:
        return 1
    print("building the toy models (first time ≈ 6 min: the target trains on one CPU core; cached after) …",
          flush=True)
    build_models(default_models_dir(), progress=lambda msg: print(f"  {msg}", flush=True))
    run_dir = new_run_dir(exp.spec.experiment.name, "demo")
    print(f"run folder: {run_dir}")
    print("NOTE: toy models (a tiny Llama trained on one quiz): speed and acceptance are real, the text is not.\n")
    firsts: dict[str, Any] = {}
    for cell in exp.cells:
        firsts.setdefault(cell.serving_key, cell)
    rows: list[tuple[str, Any, Any, Any, Any]] = []
    words = prompt_words()
    with ServerPool(run_dir, run_id=run_dir.name, api_key=new_api_key(), base_dir=exp.base_dir) as pool:
        for cell in firsts.values():
            print(f"== {cell.technique.id}: starting vLLM …", flush=True)
            try:
                server = pool.acquire(cell)
            except ServerStartError as exc:
                print(f"   failed: {exc.reason}: {exc.message}\n   fix: {exc.fix}", file=sys.stderr)
                rows.append((cell.technique.id, None, None, None, None))
                continue
            prompts = [" ".join(words[i * 40:(i + 1) * 40]) for i in range(args.requests)]
            quick_speed(server.base_url, cell.model.name, prompts[:1], max_tokens=32, api_key=server.api_key)
            before = scrape(server.base_url, api_key=server.api_key)
            speed = quick_speed(server.base_url, cell.model.name, prompts, concurrency=args.concurrency,
                                max_tokens=args.max_tokens, api_key=server.api_key)
            acc = acceptance_between(before, scrape(server.base_url, api_key=server.api_key))
            pos = " ".join(f"{r:.2f}" for r in acc.per_position_rates or ()) if acc.num_drafts else "-"
            mal = f"{acc.mean_acceptance_length:.2f}" if acc.mean_acceptance_length else "-"
            print(f"   ready in {server.startup_s:.0f} s; {speed.tok_s:.0f} tok/s "
                  f"({speed.completion_tokens} tokens / {speed.wall_s:.2f} s); acceptance length {mal}; "
                  f"per position {pos}", flush=True)
            if speed.errors or speed.short_responses:
                print(f"   WARNING: {len(speed.errors)} errors, {speed.short_responses} short responses")
            rows.append((cell.technique.id, server.startup_s, speed.tok_s, mal, pos))
            pool.release(cell.serving_key)
    base = next((r[2] for r in rows if r[0] == "ar" and r[2]), None)
    print(f"\n{'technique':<16} {'start s':>8} {'tok/s':>8} {'vs AR':>6}  {'acc len':>7}  per position")
    for tech, start, tok_s, mal, pos in rows:
        if tok_s is None:
            print(f"{tech:<16} {'failed':>8}")
            continue
        ratio = f"{tok_s / base:.2f}x" if base else "-"
        print(f"{tech:<16} {start:>8.0f} {tok_s:>8.0f} {ratio:>6}  {mal:>7}  {pos}")
    print(f"\n(c={args.concurrency}, {args.requests} requests × {args.max_tokens} tokens, non-streaming, "
          f"ignore_eos; server logs under {run_dir})")
    return 0 if all(r[2] for r in rows) else 1
