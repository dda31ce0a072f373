"""`specdeck validate FILE…`: check experiment files and list their cells, or every problem at once."""

from __future__ import annotations

import argparse
import shlex
import sys
import textwrap

from console.experiment.caveats import engine_caveats
from console.experiment.cells import Cell
from console.experiment.loader import SpecError, load_experiment
from console.experiment.minimums import engine_findings

NAME = "validate"
HELP = "check experiment files; list their cells or every problem (file:line: key: message)"
DESCRIPTION = """\
Check one or more experiment TOML files against the schema and list the cells they expand to:
model × technique × context × concurrency, minus `exclude` rules (or an explicit list), each with its
stable id, its serving settings and which cells share one server.

Every problem is printed at once as `file:line: key: message`, with the fix in the message.
The installed vLLM is checked against each cell's minimum (its method's, console/methods.py, and its
`vllm_ref` when that is a version): older is an error; no vLLM installed is a note.
Exit code 0 when all files are valid and the installed vLLM serves them, 1 otherwise.

examples:
  specdeck validate experiments/demo.toml
  specdeck validate experiments/*.toml --quiet
  specdeck validate experiments/study-h100.toml --args      # also show each server's vLLM arguments
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", metavar="FILE", help="experiment .toml files")
    p.add_argument("-q", "--quiet", action="store_true", help="only say valid/invalid and the counts")
    p.add_argument("--args", action="store_true", help="print the vLLM arguments of each serving config")


def cell_table(cells: list[Cell]) -> str:
    headers = ("cell id", "technique", "k", "ctx", "c", "max_len", "util", "server")
    keys: dict[str, int] = {}
    rows = []
    for c in cells:
        n = keys.setdefault(c.serving_key, len(keys) + 1)
        rows.append((
            c.id, c.technique.method, str(c.technique.k or "-"), str(c.context.tokens), str(c.concurrency),
            str(c.serving.max_model_len or "-"), str(c.serving.gpu_memory_utilization or "-"), f"#{n}",
        ))
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*headers), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*r) for r in rows]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    bad = 0
    for file in args.files:
        try:
            ok = _validate_one(file, args)
        except BrokenPipeError:  # `specdeck validate … | head`: the reader left, cli.main says nothing more
            raise
        except Exception as exc:  # noqa: BLE001 — one file's bug must not hide the other files' verdicts
            ok = False
            print(f"{file}: INVALID: specdeck could not check it ({type(exc).__name__}: {exc}); this is a bug in "
                  "specdeck, please report it with the file", file=sys.stderr)
        bad += not ok
    return 1 if bad else 0


def _validate_one(file: str, args: argparse.Namespace) -> bool:
    """Print one file's verdict: its cells, or every problem. True when valid."""
    from console.serve.argv import serving_args

    try:
        exp = load_experiment(file)
    except SpecError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"{file}: INVALID ({len(exc.problems)} problem(s))", file=sys.stderr)
        return False
    servers = len({c.serving_key for c in exp.cells})
    toy = " (toy models)" if any(m.toy for m in exp.spec.models) else ""
    print(f"{file}: valid — experiment {exp.spec.experiment.name!r}{toy}: "
          f"{len(exp.cells)} cells, {servers} server configs, {len(exp.spec.benchmarks)} benchmarks")
    findings = engine_findings(exp.cells)
    for f in findings:
        print(textwrap.fill(f"engine {f.severity}: {f.message}", width=110, subsequent_indent="  "),
              file=sys.stderr if f.severity == "error" else sys.stdout)
    for caveat in engine_caveats(exp.spec, exp.cells):
        print(textwrap.fill(f"caveat: {caveat.message}", width=110, subsequent_indent="  "))
    if not args.quiet:
        print(cell_table(exp.cells))
    if args.args:
        shown: set[str] = set()
        for c in exp.cells:
            if c.serving_key in shown:
                continue
            shown.add(c.serving_key)
            print(f"\nserver for {c.model.id}.{c.model.precision}.{c.technique.id}:")
            print("  " + shlex.join(serving_args(c, exp.base_dir)))
    print()
    return not any(f.severity == "error" for f in findings)
