"""`specdeck models build|list`: build the tiny demo models (cached) or show what is built."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "models"
HELP = "build or list the tiny local demo models (target + drafters)"
DESCRIPTION = """\
Build the tiny demo models offline and deterministically: a 2-layer Llama target (seeded random weights,
then ~6 minutes of one CPU core training on a generated quiz, progress shown), an exact-copy drafter and
noisy drafters (acceptance decays with draft position). Experiments refer to them as @models/<name>.
They are toys: only vLLM and the measurements around them are real. SPECDECK_TRAIN_STEPS=0 builds the
untrained target instead (other models, other recipe hash).

Models live in $SPECDECK_MODELS_DIR, else ~/.cache/specdeck/models. A model is rebuilt only when it is
missing or its recipe changed (recipe hash in <model>/specdeck-recipe.json).

examples:
  specdeck models build                 build what is missing or stale, print the paths
  specdeck models build --force         rebuild everything
  specdeck models list --dir /tmp/m     show each model: built / stale / missing, recipe hash, size
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="models_action", metavar="ACTION", required=True)
    build = sub.add_parser("build", help="build missing or stale models (cached by recipe hash)")
    build.add_argument(
        "--dir",
        type=Path,
        help="models directory (default: $SPECDECK_MODELS_DIR or ~/.cache/specdeck/models)",
    )
    build.add_argument("--force", action="store_true", help="rebuild every model even if up to date")
    lst = sub.add_parser("list", help="list the models: built, stale or missing, recipe hash, size")
    lst.add_argument(
        "--dir",
        type=Path,
        help="models directory (default: $SPECDECK_MODELS_DIR or ~/.cache/specdeck/models)",
    )


def run(args: argparse.Namespace) -> int:
    from console.models import build_models, default_models_dir

    models_dir: Path = args.dir or default_models_dir()
    if args.models_action == "list":
        return _list(models_dir)
    built: list[str] = []
    paths = build_models(models_dir, force=args.force, progress=lambda msg: _progress(msg, built))
    if not built:
        print(f"all {len(paths)} models up to date in {models_dir}")
    for name, path in paths.items():
        print(f"@models/{name} = {path}")
    return 0


def _progress(msg: str, built: list[str]) -> None:
    if ": built in " in msg:
        built.append(msg.split(":", 1)[0])
    print(msg, flush=True)


def _list(models_dir: Path) -> int:
    from console.models import list_models

    rows = list_models(models_dir)
    print(f"models dir: {models_dir}")
    width = max(len(r.name) for r in rows)
    for r in rows:
        size = f"{r.size_bytes / 2**20:.1f} MiB" if r.size_bytes else "-"
        note = ""
        if r.state == "stale":
            note = f"  (built from {(r.built_hash or '?')[:12]}; `specdeck models build` rebuilds it)"
        print(f"  {r.name:<{width}}  {r.state:<7}  {r.recipe_hash[:12]}  {size:>9}{note}")
    if any(r.state != "built" for r in rows):
        print("run `specdeck models build` to build what is missing or stale")
    return 0
