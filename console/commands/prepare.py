"""`specdeck prepare EXPERIMENT`: download what an experiment needs before a GPU-hour waits on it."""

from __future__ import annotations

import argparse
import sys

NAME = "prepare"
HELP = "download every model, drafter and dataset an experiment needs, so runs start at once and work offline"
DESCRIPTION = """\
Fetch, ahead of the first start, everything an experiment would otherwise download while a GPU waits:

  models      every hub id of a model or drafter, into the Hugging Face cache (HF_HUB_CACHE / HF_HOME):
              config, tokenizer and safetensors weights (not .bin / .pth copies), with progress bars
  datasets    every dataset of every lm-eval task (a group's subtasks too), prepared by the datasets library
              exactly as lm-eval will load it (HF_DATASETS_CACHE)
  nltk data   what a task's helpers load (lm-eval's ifeval: punkt_tab)
  inspect     inspect_evals tasks fetch their own data: each runs once on inspect's mock model

Local folders, @models/NAME and local .jsonl sets need nothing. When everything is local afterwards, prepare
records it (~/.cache/specdeck/prepared/), and `specdeck run` then gives the eval frameworks HF_HUB_OFFLINE=1 /
HF_DATASETS_OFFLINE=1, so a run never touches the network. Without that record a run lets them download
what they miss (`specdeck run --offline` forces offline mode anyway).

Gated repos (GPQA, Gemma) need access granted on their hub page and a token here: `hf auth login`.
Every failure is listed with its fix; exit code 0 when everything is local, 1 otherwise, 2 for an invalid
experiment. Run it again after fixing: finished files are kept, interrupted downloads resume.

examples:
  specdeck prepare experiments/study-h100.toml
  specdeck prepare experiments/study-h100.toml --cells 'gemma4-31b.*'
  specdeck prepare experiments/study-h100.toml --dry-run     # list what would be fetched
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("experiment", metavar="EXPERIMENT", help="experiment .toml file")
    p.add_argument("--cells", metavar="GLOB", help="only the models of these cells (benchmarks: all)")
    p.add_argument("--dry-run", action="store_true", help="list what is needed and what is already local")
    p.add_argument("--models-dir", metavar="DIR", help="where @models/NAME lives (default ~/.cache/specdeck/models)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from console.experiment.loader import load_experiment_or_say
    from console.hub import Hub
    from console.preflight.run import select
    from console.prepare import is_local, needs_of, prepare

    exp = load_experiment_or_say(args.experiment)
    if exp is None:
        return 2
    cells = select(exp.cells, args.cells)
    if not cells:
        print(f"no cell matches {args.cells!r}", file=sys.stderr)
        return 2
    models_dir = Path(args.models_dir).expanduser() if args.models_dir else None
    hub = Hub()
    if args.dry_run:
        needs = needs_of(exp, cells, models_dir)
        missing = set(is_local(needs, hub))
        for repo in needs.models:
            print(f"  {'✗ to fetch' if repo in missing else '✓ local   '}  model {repo}")
        for path, name in needs.datasets:
            label = f"dataset {path}" + (f" [{name}]" if name else "")
            print(f"  {'✗ to fetch' if label in missing else '✓ local   '}  {label}")
        for r in needs.nltk:
            print(f"  {'✗ to fetch' if f'nltk {r}' in missing else '✓ local   '}  nltk {r}")
        for t in needs.inspect_tasks:
            print(f"  ? run once  inspect {t}")
        print(f"{len(missing)} of {len(needs.models) + len(needs.datasets) + len(needs.nltk)} not local"
              if not needs.empty else "nothing to download")
        return 0
    result = prepare(exp, hub, cells=cells, models_dir=models_dir)
    bad = [i for i in result.items if not i.ok]
    if bad:
        print(f"{len(bad)} of {len(result.items)} not fetched (see ✗ above): runs will not be offline", file=sys.stderr)
        return 1
    print(f"everything {exp.spec.experiment.name} needs is local: `specdeck run` will run its evals offline")
    return 0
