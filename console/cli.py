"""`specdeck` command line: every step of the workflow is a command; the TUI calls the same core."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from console import __version__
from console.errors import SpecdeckError

# Sub-command modules under console.commands, in the order `--help` lists them.
COMMANDS: tuple[str, ...] = (
    "demo",
    "tui",
    "validate",
    "preflight",
    "prepare",
    "models",
    "serve",
    "run",
    "status",
    "approve",
    "reject",
    "cancel",
    "resume",
    "bench",
    "logstats",
    "report",
    "import",
)

EPILOG = """\
typical session:
  specdeck models build                      build the tiny demo models (once, cached)
  specdeck validate experiments/demo.toml    check an experiment and list its cells
  specdeck preflight experiments/demo.toml   will it run here (engine, models, memory, evals, disk)? GPU-hours
  specdeck prepare experiments/demo.toml     download every model and dataset it needs, then run offline
  specdeck serve experiments/demo.toml --cell wide.fp32.ar.short.c1
                                             bring up vLLM for one cell, show live stats
  specdeck logstats runs/<run>/cells/<cell>/server.log
                                             acceptance and throughput series of any vLLM log

`specdeck COMMAND --help` explains each command.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="specdeck",
        description="Terminal experiment console for speculative decoding and diffusion LMs on vLLM.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"specdeck {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        modname = f"console.commands.{name.replace('-', '_')}_cmd" if name == "import" else f"console.commands.{name}"
        module = importlib.import_module(modname)
        p = sub.add_parser(
            module.NAME,
            help=module.HELP,
            description=module.DESCRIPTION,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        code = int(args._run(args) or 0)
        sys.stdout.flush()  # a reader that left shows up here, not in the interpreter's exit flush
        return code
    except SpecdeckError as exc:  # every error a user can hit: what is wrong, and the fix (console/errors.py)
        print(exc.report(f"specdeck {args.command}"), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return reader_left()


SIGPIPE_EXIT = 128 + 13
"""What a shell reports for a process that SIGPIPE killed (`yes | head -1` under `set -o pipefail`)."""


def reader_left() -> int:
    """`specdeck … | head -1`: the reader closed the pipe. As the Python docs advise ("Note on SIGPIPE", library/
    signal.html), point stdout at /dev/null so the interpreter's final flush cannot raise again, and exit the way
    a Unix tool killed by SIGPIPE does (141): the output was cut short, and `set -o pipefail` scripts must be able
    to tell — 0 would claim a complete run that was not."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return SIGPIPE_EXIT


if __name__ == "__main__":
    sys.exit(main())
