"""`specdeck import`: results made outside specdeck (vllm bench serve, lm-eval, inspect) into a master CSV."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

NAME = "import"
HELP = "merge vllm-bench / lm-eval / inspect results into a master CSV"
DESCRIPTION = """\
Turn results made outside specdeck into master rows and merge them into a master CSV (created if
missing; a row with the same run/cell/measurement/category/benchmark/framework/concurrency/context is
replaced by the newer one; rows without a run, cell or measurement are kept as they are). --out must be a
new file or an existing master CSV: any other file is refused, never overwritten. Nothing is written
unless every input file is sound.

  vllm-bench FILE…  `vllm bench serve --save-result` JSON. The cell comes from the JSON's own fields
                    (model_id, max_concurrency, and --metadata pairs such as technique=mtp
                    num_speculative_tokens=8 category=coding), else from the file name
                    <model>_<variant>_<category>_c<N>.json (baseline → ar, mtp_nt8 → mtp k=8, dflash… →
                    dflash). No spec_decode fields and no technique → the AR baseline. tok/s is
                    output_throughput, labelled streaming-import (it comes from a streaming client);
                    TTFT / TPOT / ITL median and p99 are kept (every statistic in latency_ms), labelled
                    latency_source = streaming. A figure that is null, not a number, NaN, inf or out of
                    range (output_throughput ≤ 0, a rate above 1) refuses the import, naming file and field.
  lm-eval DIR       every results_*.json under DIR (exact_match,flexible-extract preferred; samples_*.jsonl
                    give blanks and extraction failures).
  inspect DIR       every .eval / .json log under DIR (accuracy, or final_acc …; truncations from
                    stop_reason).

examples:
  specdeck import vllm-bench results/*.json --out master.csv
  specdeck import vllm-bench gemma4_31b_*.json --out master.csv --set precision=bf16 \\
      --set active_params_b=31 --set device_name="NVIDIA H100 80GB HBM3"
  specdeck import lm-eval out/lm_eval --out master.csv --items-out items.csv
  specdeck import inspect logs/ --out master.csv --run-id h100-2026-05
"""


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, metavar="CSV", help="master CSV to merge into (created if missing)")
    p.add_argument("--run-id", metavar="ID", help="run id for the imported rows (default: derived from the folder)")
    p.add_argument("--set", action="append", default=[], metavar="COLUMN=VALUE", dest="overrides",
                   help="set a master column on every imported row (wins over the file); repeatable")


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="kind", metavar="KIND", required=True)
    b = sub.add_parser("vllm-bench", help="`vllm bench serve --save-result` JSON files")
    b.add_argument("files", nargs="+", metavar="FILE")
    _common(b)
    for kind, what in (("lm-eval", "an lm-eval --output_path folder"), ("inspect", "an inspect log folder")):
        e = sub.add_parser(kind, help=what)
        e.add_argument("dirs", nargs="+", metavar="DIR")
        _common(e)
        e.add_argument("--items-out", metavar="CSV",
                       help="also write per-item correctness here (for `specdeck report --items`)")


def _overrides(pairs: list[str]) -> dict[str, Any]:
    from console.results.import_common import ImportFormatError

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ImportFormatError(f"--set expects COLUMN=VALUE (got {pair!r})", "write --set COLUMN=VALUE")
        out[key.strip()] = value
    return out


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from console.errors import plain_errors_as
    from console.results.columns import merge_master, write_csv
    from console.results.import_common import check_master_csv
    from console.results.imports import FOLDER_IMPORTERS, ImportFormatError, import_vllm_bench

    with plain_errors_as(ImportFormatError, "check the file named above (`specdeck import --help` says what each "
                         "kind reads); nothing was imported"):
        overrides = _overrides(args.overrides)
        check_master_csv(args.out)  # before anything is read: an existing file that is not ours is never touched
        if args.kind == "vllm-bench":
            missing = [f for f in args.files if not Path(f).is_file()]
            if missing:
                raise ImportFormatError(f"no such file: {', '.join(missing)}", "check the paths")
            frame = import_vllm_bench(args.files, overrides, args.run_id)
            sources = f"{len(args.files)} file(s)"
            items = None
        else:
            reader, item_reader = FOLDER_IMPORTERS[args.kind]
            for d in args.dirs:
                if not Path(d).exists():
                    raise ImportFormatError(f"{d}: no such folder", "check the path")
            frames = [reader(d, overrides, args.run_id) for d in args.dirs]
            for f in frames:
                for skipped in f.attrs.get("skipped", []):
                    print(f"skipped {skipped}", file=sys.stderr)
            frame = pd.concat(frames, ignore_index=True)
            sources = f"{len(args.dirs)} folder(s)"
            items = pd.concat([item_reader(d) for d in args.dirs], ignore_index=True) if args.items_out else None
        result = merge_master([frame], existing_csv=args.out)
        write_csv(result.frame, args.out)
    print(f"imported {len(frame)} row(s) from {sources} → {args.out}: {result.added} added, "
          f"{result.replaced} replaced, {len(result.frame)} rows in total")
    if args.kind == "vllm-bench" and (frame["tok_s_source"] == "streaming-import").any():
        print("note: tok/s is vllm bench's output_throughput from a streaming client (labelled streaming-import)")
    if items is not None:
        Path(args.items_out).parent.mkdir(parents=True, exist_ok=True)
        if Path(args.items_out).exists():
            old = pd.read_csv(args.items_out, dtype={"item_id": str})
            items = pd.concat([old, items], ignore_index=True).drop_duplicates(
                ["cell_id", "benchmark", "framework", "item_id"], keep="last")
        items.to_csv(args.items_out, index=False)
        print(f"items: {len(items)} row(s) in {args.items_out}")
    return 0
