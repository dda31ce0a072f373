"""`specdeck logstats LOGFILE`: throughput and acceptance series of any vLLM server log."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from console.serve.logfold import Interval, ServerLogFold, Tick, finite

if TYPE_CHECKING:  # pragma: no cover
    from console.serve.failures import StartFailure

NAME = "logstats"
HELP = "throughput, KV use and spec-decode acceptance from a vLLM server log"
DESCRIPTION = """\
Read a vLLM server log (one written by specdeck, or by a server started by hand) and print its periodic
stats as a table: time, generation tok/s, running / waiting requests, KV cache use, mean acceptance length
and per-position acceptance; then totals (busy intervals, mean generation throughput over busy intervals,
overall acceptance weighted by drafts). A failed start in the log is classified, with the fix.

Log-line rates are for watching a run; the measured numbers come from /metrics counters and
non-streaming throughput (`specdeck serve`, `specdeck run`).

examples:
  specdeck logstats runs/<run>/cells/<cell>/server.log
  specdeck logstats vllm.log --json | jq .totals.mean_acceptance_length

exit codes: 0 parsed, 1 empty or unreadable file, 2 no such file, 3 the log shows a failed/dead server.
"""

EXIT_OK, EXIT_EMPTY, EXIT_MISSING, EXIT_FAILURE = 0, 1, 2, 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("logfile", metavar="LOGFILE", help="a vLLM server log (stdout + stderr)")
    parser.add_argument("--json", action="store_true", help="emit JSON: {intervals, totals, failure, server}")


SERVER_MARKERS = ("Starting vLLM", "Application startup complete")
"""With `logfold.STATS_MARKERS`: a line holding none of these is never parsed."""


class StatsScan:
    """Fold a log's stats lines (see `console.serve.logfold`) and note the server facts (listening url, ready
    time), one line at a time: only lines holding a marker are parsed (str `in`: C speed). Closed ticks go to
    `on_tick` and are dropped, so memory stays flat."""

    def __init__(self, on_tick: Callable[[Tick], None] | None = None) -> None:
        self.fold = ServerLogFold()
        self.server: dict[str, Any] = {"url": None, "listening_at": None, "ready": False, "ready_at": None}
        self.on_tick = on_tick

    def feed(self, line: str) -> None:
        from console.serve.logparse import ServerListening, ServerReady, parse_line

        # The markers' common substrings, tested inline: most lines of a busy log are request lines.
        if not ("throughput" in line or "metrics:" in line or "vLLM" in line or "startup complete" in line):
            return
        ev = parse_line(line)
        if isinstance(ev, ServerListening):
            self.server.update(url=ev.url, listening_at=ev.timestamp)
        elif isinstance(ev, ServerReady):
            # uvicorn's own line has no timestamp; vLLM logged the listening line just before it
            self.server.update(ready=True, ready_at=ev.timestamp or self.server["listening_at"])
        elif ev is not None:
            self.fold.add(ev)
            self._flush()

    def finish(self) -> StatsScan:
        self.fold.close()
        self._flush()
        return self

    def _flush(self) -> None:
        for tick in self.fold.take_closed():
            if self.on_tick is not None:
                self.on_tick(tick)


def collect(lines: Iterable[str]) -> tuple[list[Interval], dict[str, Any]]:
    """Every interval of a (small) log and the server facts, as a list (tests, small logs)."""
    rows: list[Interval] = []
    scan = StatsScan(lambda tick: rows.extend(tick.intervals))
    for line in lines:
        scan.feed(line)
    return rows, scan.finish().server


def _f(x: float | None, fmt: str = "{:.1f}") -> str:
    return "-" if x is None else fmt.format(x)


class TableWriter:
    """Prints the interval rows as ticks close (fixed column widths: the log is never held in memory)."""

    def __init__(self, fold: ServerLogFold, out: TextIO) -> None:
        devices = set(fold.kv_devices)
        kv_head = f"{devices.pop()} KV %" if len(devices) == 1 else "KV %"
        self.multi_engine = len(fold.engines) > 1
        self.any_spec = fold.spec_lines > 0
        head = ["time"] + (["eng"] if self.multi_engine else []) + ["gen tok/s", "run", "wait", kv_head]
        if self.any_spec:
            head += ["acc len", "acc %", "per-position"]
        self.widths = [max(len(h), WIDTHS.get(h, 0)) for h in head]
        self.left = {0, len(head) - 1} if self.any_spec else {0}
        self.out = out
        self.rows = 0
        self._print(head)
        self._print(["-" * w for w in self.widths])

    def _print(self, cells: list[str]) -> None:
        line = "  ".join(c.ljust(w) if i in self.left else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, self.widths, strict=True)))
        self.out.write(line.rstrip() + "\n")

    def tick(self, tick: Tick) -> None:
        for iv in tick.intervals:
            self.row(iv)

    def row(self, iv: Interval) -> None:
        e, s = iv.engine, iv.spec
        row = [iv.time or "-"]
        if self.multi_engine:
            row.append(f"{e.engine:03d}" if e and e.engine is not None else "-")
        row += [
            _f(e.generation_throughput if e else None),
            _f(e.running if e else None, "{}"),
            _f(e.waiting if e else None, "{}"),
            _f(e.kv_cache_usage_pct if e else None),
        ]
        if self.any_spec:
            row += [
                _f(s.mean_acceptance_length if s else None, "{:.2f}"),
                _f(s.draft_acceptance_rate * 100 if s and s.draft_acceptance_rate is not None else None),
                " ".join(f"{p:.2f}" for p in s.per_position_acceptance) if s and s.per_position_acceptance else "-",
            ]
        self.rows += 1
        self._print(row)


WIDTHS = {"time": 14, "gen tok/s": 9, "run": 4, "wait": 4, "acc len": 7, "acc %": 5}


def server_line(server: dict[str, Any]) -> str | None:
    if not server.get("url"):
        return None
    if server.get("ready"):
        ready = f", ready at {server['ready_at']}" if server.get("ready_at") else ", ready"
    else:
        ready = ", never became ready"
    return f"server {server['url']}{ready}"


def summary(tot: dict[str, Any]) -> str:
    """The totals under the table."""
    lines = [
        f"intervals {tot['intervals']}, busy {tot['busy_intervals']}; generation tok/s over busy intervals: "
        f"mean {_f(tot['mean_generation_throughput'])}, peak {_f(tot['peak_generation_throughput'])}"
        + (f" (summed over {tot['engines']} engines)" if tot.get("engines", 0) > 1 else "")
    ]
    if tot["spec_decode_intervals"]:
        per_pos = tot["per_position_acceptance"]
        lines.append(
            f"acceptance (weighted by drafts, {tot['spec_decode_intervals']} intervals): mean length "
            f"{_f(tot['mean_acceptance_length'], '{:.3f}')}, draft acceptance "
            f"{_f(tot['draft_acceptance_rate'] * 100 if tot['draft_acceptance_rate'] is not None else None)}%, "
            f"per position {' '.join(f'{p:.3f}' for p in per_pos) if per_pos else '-'}; "
            f"accepted {tot['accepted_tokens']} of {tot['drafted_tokens']} drafted tokens"
        )
    if "diffusion" in tot:
        d = tot["diffusion"]
        lines.append(
            f"diffusion ({tot['diffusion_intervals']} intervals): committed {d['committed_tokens']} tokens in "
            f"{d['denoising_steps']} denoising steps, {_f(d['mean_tokens_committed_per_step'], '{:.2f}')} "
            "tokens/step"
        )
    lines.append("(log-line values; measured acceptance comes from /metrics counters)")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    path = Path(args.logfile)
    if not path.exists():
        print(f"specdeck logstats: no such file: {path}", file=sys.stderr)
        return EXIT_MISSING
    if path.is_dir():
        print(f"specdeck logstats: {path} is a directory; pass the server log file", file=sys.stderr)
        return EXIT_EMPTY
    try:
        if path.stat().st_size == 0:
            print(
                f"specdeck logstats: {path} is empty (has the server written anything yet?)", file=sys.stderr
            )
            return EXIT_EMPTY
        failure = (_emit_json if args.json else _emit_table)(path, sys.stdout)
    except BrokenPipeError:  # `specdeck logstats … | head`: cli.main handles the reader that left
        raise
    except OSError as exc:
        print(f"specdeck logstats: cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_EMPTY
    return EXIT_FAILURE if failure else EXIT_OK


def _scan_and_classify(path: Path, on_tick: Callable[[Tick], None] | None) -> tuple[StatsScan, StartFailure | None]:
    """One read of the file: the failure classifier and the stats fold see each line as it passes."""
    from console.serve.failures import classify_failure

    scan = StatsScan(on_tick)

    def lines(fh: Iterable[str]) -> Iterator[str]:
        for line in fh:
            scan.feed(line)
            yield line

    with path.open(encoding="utf-8", errors="replace") as fh:
        failure = classify_failure(lines(fh))
    return scan.finish(), failure


def _emit_table(path: Path, out: TextIO) -> StartFailure | None:
    """Two reads: the first folds the totals and learns the columns (engines, spec decode, KV device); the
    second parses only the stats lines again and prints each row as its tick closes."""
    first, failure = _scan_and_classify(path, None)
    fold, server = first.fold, first.server
    if fold.intervals or not failure:
        if line := server_line(server):
            out.write(line + "\n")
        if fold.intervals:
            table = TableWriter(fold, out)
            again = StatsScan(table.tick)
            with path.open(encoding="utf-8", errors="replace") as fh:
                for raw in fh:
                    again.feed(raw)
            again.finish()
        else:
            out.write("no stats lines in this log (vLLM prints them every 10 s, only while requests run)\n")
        out.write("\n" + summary(fold.totals()) + "\n")
        if failure:
            out.write("\n")
    if failure:
        out.write(f"FAILED ({failure.reason.value}): {failure.message}\n")
        out.write(f"  fix: {failure.fix}\n")
        out.write(f"  evidence: {failure.evidence}\n")
    return failure


def _emit_json(path: Path, out: TextIO) -> StartFailure | None:
    """One read: intervals are written as their ticks close; server, totals and failure follow them.
    Non-finite values (a log that prints `inf`) are written as null: JSON has no inf."""
    out.write("{\n" + f'  "file": {json.dumps(str(path))},\n  "intervals": [')
    count = 0

    def write_tick(tick: Tick) -> None:
        nonlocal count
        for iv in tick.intervals:
            out.write(("\n    " if count == 0 else ",\n    ") + json.dumps(finite(iv.to_dict()), allow_nan=False))
            count += 1

    scan, failure = _scan_and_classify(path, write_tick)
    out.write(("\n  ]" if count else "]") + ",\n")
    rest = {"server": scan.server, "totals": scan.fold.totals(), "failure": failure.to_dict() if failure else None}
    body = json.dumps(finite(rest), indent=2, allow_nan=False)
    out.write(body[2:] + "\n")  # the members after "{\n", and the closing brace
    return failure
