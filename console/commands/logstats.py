"""`specdeck logstats LOGFILE`: throughput and acceptance series of any vLLM server log."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from console.serve.failures import StartFailure
    from console.serve.logparse import DiffusionDecodeStats, EngineStats, SpecDecodeStats

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


@dataclass
class Interval:
    """One ~10 s stats interval: an engine line and the spec-decode / diffusion line printed right after it."""

    time: str | None
    engine: EngineStats | None = None
    spec: SpecDecodeStats | None = None
    diffusion: DiffusionDecodeStats | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        e, s, d = self.engine, self.spec, self.diffusion
        return {
            "time": self.time,
            "engine": e.engine if e else None,
            "prompt_throughput": e.prompt_throughput if e else None,
            "generation_throughput": e.generation_throughput if e else None,
            "running": e.running if e else None,
            "waiting": e.waiting if e else None,
            "kv_cache_usage_pct": e.kv_cache_usage_pct if e else None,
            "kv_cache_device": e.kv_cache_device if e else None,
            "preemptions": e.preemptions if e else None,
            "prefix_cache_hit_rate_pct": e.prefix_cache_hit_rate_pct if e else None,
            "mean_acceptance_length": s.mean_acceptance_length if s else None,
            "per_position_acceptance": list(s.per_position_acceptance) if s else None,
            "draft_acceptance_rate": s.draft_acceptance_rate if s else None,
            "accepted_tokens": s.accepted_tokens if s else None,
            "drafted_tokens": s.drafted_tokens if s else None,
            "diffusion": dict(d.values) if d else None,
        }


def collect(lines: Any) -> tuple[list[Interval], dict[str, Any]]:
    """Group parsed events into intervals; also return server facts (listening url, ready time)."""
    from console.serve.logparse import (
        DiffusionDecodeStats,
        EngineStats,
        ServerListening,
        ServerReady,
        SpecDecodeStats,
        parse_line,
    )

    intervals: list[Interval] = []
    server: dict[str, Any] = {"url": None, "listening_at": None, "ready": False, "ready_at": None}
    for line in lines:
        ev = parse_line(line)
        if ev is None:
            continue
        if isinstance(ev, ServerListening):
            server.update(url=ev.url, listening_at=ev.timestamp)
        elif isinstance(ev, ServerReady):
            # uvicorn's own line has no timestamp; vLLM logged the listening line just before it
            server.update(ready=True, ready_at=ev.timestamp or server["listening_at"])
        elif isinstance(ev, EngineStats):
            intervals.append(Interval(time=ev.timestamp, engine=ev))
        elif isinstance(ev, SpecDecodeStats | DiffusionDecodeStats):
            attr = "spec" if isinstance(ev, SpecDecodeStats) else "diffusion"
            last = intervals[-1] if intervals else None
            same_time = last is not None and (last.time == ev.timestamp or None in (last.time, ev.timestamp))
            if last is not None and same_time and getattr(last, attr) is None:
                setattr(last, attr, ev)
            else:
                iv = Interval(time=ev.timestamp)
                setattr(iv, attr, ev)
                intervals.append(iv)
    return intervals, server


def totals(intervals: list[Interval]) -> dict[str, Any]:
    """Summary over all intervals: busy count, throughput, acceptance weighted by drafts, diffusion sums."""
    from console.serve.metrics import acceptance_from_log

    # Engines log separately; a moment's throughput is the sum over engines at that timestamp.
    by_time: dict[str, float] = {}
    untimed: list[float] = []
    for iv in intervals:
        if iv.engine is None or iv.engine.generation_throughput is None:
            continue
        if iv.time is None:
            untimed.append(iv.engine.generation_throughput)
        else:
            by_time[iv.time] = by_time.get(iv.time, 0.0) + iv.engine.generation_throughput
    busy = [x for x in [*by_time.values(), *untimed] if x > 0]
    specs = [iv.spec for iv in intervals if iv.spec is not None]
    acc = acceptance_from_log(specs) if specs else None
    diffs = [iv.diffusion for iv in intervals if iv.diffusion is not None]
    out: dict[str, Any] = {
        "intervals": len(intervals),
        "busy_intervals": len(busy),
        "mean_generation_throughput": sum(busy) / len(busy) if busy else None,
        "peak_generation_throughput": max(busy) if busy else None,
        "spec_decode_intervals": len(specs),
        "mean_acceptance_length": acc.mean_acceptance_length if acc else None,
        "per_position_acceptance": list(acc.per_position_rates) if acc and acc.per_position_rates else None,
        "draft_acceptance_rate": acc.draft_acceptance_rate if acc else None,
        "accepted_tokens": int(acc.num_accepted) if acc else None,
        "drafted_tokens": int(acc.num_draft_tokens) if acc else None,
        "estimated_drafts": round(acc.num_drafts, 1) if acc else None,
        "diffusion_intervals": len(diffs),
    }
    if diffs:
        committed = sum(d.committed_tokens or 0 for d in diffs)
        steps = sum(d.denoising_steps or 0 for d in diffs)
        canvas = sum(d.canvas_positions or 0 for d in diffs)
        out["diffusion"] = {
            "committed_tokens": committed,
            "denoising_steps": steps,
            "canvas_positions": canvas,
            "mean_tokens_committed_per_step": committed / steps if steps else None,
            "mean_denoising_steps_per_canvas": canvas / committed if committed else None,
        }
    return out


def _f(x: float | None, fmt: str = "{:.1f}") -> str:
    return "-" if x is None else fmt.format(x)


def render_table(intervals: list[Interval], tot: dict[str, Any], server: dict[str, Any]) -> str:
    """The human-readable report."""
    devices = {iv.engine.kv_cache_device for iv in intervals if iv.engine and iv.engine.kv_cache_device}
    kv_head = f"{devices.pop()} KV %" if len(devices) == 1 else "KV %"
    multi_engine = len({iv.engine.engine for iv in intervals if iv.engine}) > 1
    any_spec = any(iv.spec for iv in intervals)
    head = ["time"] + (["eng"] if multi_engine else []) + ["gen tok/s", "run", "wait", kv_head]
    if any_spec:
        head += ["acc len", "acc %", "per-position"]
    rows: list[list[str]] = []
    for iv in intervals:
        e, s = iv.engine, iv.spec
        row = [iv.time or "-"]
        if multi_engine:
            row.append(f"{e.engine:03d}" if e and e.engine is not None else "-")
        row += [
            _f(e.generation_throughput if e else None),
            _f(e.running if e else None, "{}"),
            _f(e.waiting if e else None, "{}"),
            _f(e.kv_cache_usage_pct if e else None),
        ]
        if any_spec:
            row += [
                _f(s.mean_acceptance_length if s else None, "{:.2f}"),
                _f(s.draft_acceptance_rate * 100 if s and s.draft_acceptance_rate is not None else None),
                " ".join(f"{p:.2f}" for p in s.per_position_acceptance)
                if s and s.per_position_acceptance
                else "-",
            ]
        rows.append(row)
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
    left = {0, len(head) - 1} if any_spec else {0}

    def fmt(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i in left else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    lines = []
    if server.get("url"):
        if server.get("ready"):
            ready = f", ready at {server['ready_at']}" if server.get("ready_at") else ", ready"
        else:
            ready = ", never became ready"
        lines.append(f"server {server['url']}{ready}")
    if rows:
        lines += [fmt(head), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows]
    else:
        lines.append("no stats lines in this log (vLLM prints them every 10 s, only while requests run)")
    lines.append("")
    lines.append(
        f"intervals {tot['intervals']}, busy {tot['busy_intervals']}; generation tok/s over busy intervals: "
        f"mean {_f(tot['mean_generation_throughput'])}, peak {_f(tot['peak_generation_throughput'])}"
    )
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
    from console.serve.failures import classify_failure

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
        with path.open(encoding="utf-8", errors="replace") as fh:
            intervals, server = collect(fh)
        with path.open(encoding="utf-8", errors="replace") as fh:
            failure = classify_failure(fh)
    except OSError as exc:
        print(f"specdeck logstats: cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_EMPTY
    tot = totals(intervals)
    try:
        _emit(args.json, path, server, intervals, tot, failure)
    except BrokenPipeError:  # `specdeck logstats … | head`
        sys.stderr.close()
    return EXIT_FAILURE if failure else EXIT_OK


def _emit(
    as_json: bool,
    path: Path,
    server: dict[str, Any],
    intervals: list[Interval],
    tot: dict[str, Any],
    failure: StartFailure | None,
) -> None:
    if as_json:
        doc = {
            "file": str(path),
            "server": server,
            "intervals": [iv.to_dict() for iv in intervals],
            "totals": tot,
            "failure": failure.to_dict() if failure else None,
        }
        print(json.dumps(doc, indent=2, allow_nan=False))
    else:
        if intervals or not failure:
            print(render_table(intervals, tot, server))
            if failure:
                print()
        if failure:
            print(f"FAILED ({failure.reason.value}): {failure.message}")
            print(f"  fix: {failure.fix}")
            print(f"  evidence: {failure.evidence}")
