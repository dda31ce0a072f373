"""`specdeck report`: tables in the terminal, and optionally a Markdown report with PNG plots and a master CSV."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from console.errors import SpecdeckError, plain_errors_as

NAME = "report"
HELP = "results tables (speed-up, accuracy Δ, roofline, guide) from run folders or master CSVs"
DESCRIPTION = """\
Read results from run folders (their results_consolidated.csv) and/or master CSV files, merge them
(newest row wins per cell × measurement), and print: throughput, speed-up vs the AR baseline of the same
model/precision/context/concurrency, acceptance by position, accuracy Δ vs AR with SE and the within-noise
verdict, roofline at c=1 and — when rules are given — the workload guide.

examples:
  specdeck report runs/2026-11-23-demo
  specdeck report tests/fixtures/study/study_tables.csv --guide tests/fixtures/study/guide.toml
  specdeck report runs/a runs/b master.csv --markdown out/report.md --plots out/plots --csv out/master.csv
  specdeck report master.csv --bandwidth "H100 PCIe=2.0" --bandwidth "cpu=0.04"

Guide rules are `[[guide]]` tables in a TOML file (an experiment file, or the run's
experiment.resolved.toml, which is read automatically); a `[bandwidth]` table there overrides the
device bandwidth table (TB/s by device-name substring).
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="RUN_DIR|CSV", help="run folders or master CSV files")
    p.add_argument("--markdown", metavar="FILE", help="write a Markdown report here (PNG plots next to it)")
    p.add_argument("--plots", metavar="DIR", help="where the PNGs go (default: <FILE stem>_plots/ beside --markdown)")
    p.add_argument("--csv", metavar="FILE", help="write the merged master CSV here")
    p.add_argument("--bandwidth", action="append", default=[], metavar="DEVICE=TB/s",
                   help="memory bandwidth for a device name (substring match); repeatable")
    p.add_argument("--guide", metavar="TOML", help="a TOML file with [[guide]] rules (and optional [bandwidth])")
    p.add_argument("--items", metavar="CSV", action="append", default=[],
                   help="per-item correctness (cell_id,benchmark,framework,item_id,correct) for the paired test")
    p.add_argument("--width", type=int, metavar="N", help="terminal width for the tables (default: detected)")
    p.add_argument("--title", default="specdeck results", help="title of the Markdown report")
    p.add_argument("--force", action="store_true",
                   help="rebuild a run's results_consolidated.csv even when its store gives fewer rows than the "
                        "file holds (by default that is refused and the file kept: a store copied without its "
                        "-wal file, or emptied, would silently drop results)")


class InputError(SpecdeckError):
    """An input the report cannot read; `fix` says what to pass instead."""


def _run_caveats(paths: list[str]) -> list[str]:
    """The engine caveats each run recorded when it started (console/experiment/caveats.py), for the report's notes."""
    from console.run.folder import RunFolder

    out: list[str] = []
    for raw in paths:
        folder = RunFolder(raw)
        if folder.store_path.is_file():
            store = folder.read_store()
            try:
                out += [f"run {Path(raw).name}: {c}" for c in store.meta("caveats", []) or []]
            finally:
                store.close()
    return out


def _run_gpu_busy(paths: list[str]) -> list[str]:
    """How busy each run kept its accelerator (console/run/gpu_busy.py), for the report's notes."""
    from console.run.gpu_busy import run_gpu_busy

    out: list[str] = []
    for raw in paths:
        if (Path(raw) / "events.jsonl").is_file():
            busy = run_gpu_busy(Path(raw))
            if busy.starts:
                out.append(f"run {Path(raw).name}, GPU busy: " + "; ".join(busy.lines()))
    return out


def _load_inputs(paths: list[str], force: bool = False) -> tuple[list[Any], list[Path]]:
    from console.results.columns import read_csv
    from console.run.folder import RunFolder

    frames, tomls = [], []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            folder = RunFolder(path)
            csv = folder.consolidated_csv
            if folder.is_run() and folder.resolved_path.exists():
                from console.results.consolidate import write_consolidated

                try:
                    csv = write_consolidated(path, force=force)  # rebuilt from the run's own files, never shrunk
                except PermissionError:  # a read-only, archived or another user's run: report it, write nothing
                    from console.results.consolidate import consolidate_run

                    frames.append(consolidate_run(path))
                    if folder.resolved_path.exists():
                        tomls.append(folder.resolved_path)
                    continue
            if not csv.exists():
                raise InputError(
                    f"{path}: not a run folder (no state.sqlite + experiment.resolved.toml) and no "
                    "results_consolidated.csv", "pass a run folder, or a master CSV")
            frames.append(read_csv(csv))
            if folder.resolved_path.exists():
                tomls.append(folder.resolved_path)
        elif path.is_file():
            frames.append(read_csv(path))
        else:
            raise InputError(f"{path}: no such file or folder", "pass run folders or master CSVs")
    return frames, tomls


def _toml_settings(paths: list[Path]) -> tuple[list[dict[str, Any]], dict[str, float]]:
    from console.results.roofline import tomllib

    rules: list[dict[str, Any]] = []
    bandwidth: dict[str, float] = {}
    for path in paths:
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"{path}: not valid TOML ({exc})", "correct the line named") from None
        rules.extend(data.get("guide", []))
        bandwidth.update({str(k): float(v) for k, v in data.get("bandwidth", {}).items()})
    return rules, bandwidth


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from console.results.columns import merge_master, write_csv
    from console.results.report import build, markdown_report, terminal_report, write_plots
    from console.results.roofline import parse_bandwidth_arg

    with plain_errors_as(InputError, "check the input named above (run folders, master CSVs, --items CSVs, "
                         "--guide TOML)"):
        frames, tomls = _load_inputs(args.inputs, args.force)
        if args.guide:
            tomls.append(Path(args.guide))
        rules, bandwidth = _toml_settings(tomls)
        for item in args.bandwidth:
            name, tbps = parse_bandwidth_arg(item)
            bandwidth[name] = tbps
        items = pd.concat([pd.read_csv(p) for p in args.items], ignore_index=True) if args.items else None
        merged = merge_master(frames).frame
        if merged.empty:
            raise InputError("the inputs hold no rows", "pass a run that has finished some cells, or a master CSV")
        data = build(merged, items=items, bandwidth=bandwidth, guide_rules=rules or None)
        data.notes.extend(_run_caveats(args.inputs))
        data.notes.extend(_run_gpu_busy(args.inputs))
    print(terminal_report(data, width=args.width), end="")
    if args.csv:
        print(f"\nmaster CSV: {write_csv(merged, args.csv)} ({len(merged)} rows)")
    if args.markdown:
        md, pngs = markdown_report(data, args.markdown, args.plots, title=args.title, inputs=args.inputs)
        print(f"Markdown report: {md}" + (f" (+{len(pngs)} plots in {pngs[0].parent})" if pngs else " (no plots)"))
    elif args.plots:
        written = [p for p in write_plots(data, Path(args.plots)).values() if p is not None]
        print(f"plots: {len(written)} PNG(s) in {args.plots}" if written else
              "plots: none written (no data to draw, or matplotlib missing)")
    return 0
