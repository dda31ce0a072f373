"""Events the bench phases emit (registered, so `events.jsonl` replays them as these classes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from console.events import Event, PhaseProgress, register

__all__ = ["AcceptanceMeasured", "DeterminismMeasured", "EngineStatsLive", "LatencyMeasured", "NiahMeasured",
           "PhaseFailed", "PhaseProgress", "SpecDecodeLive", "SpeedMeasured"]


@register
@dataclass(frozen=True)
class PhaseFailed(Event):
    """A phase could not run for a cell; `reason` says why and `fix` what to change."""

    kind: ClassVar[str] = "phase_failed"
    phase: str = ""
    reason: str = ""
    fix: str = ""


@register
@dataclass(frozen=True)
class SpeedMeasured(Event):
    """One speed point: non-streaming tok/s over the repeats (median, min, max), failures included."""

    kind: ClassVar[str] = "speed_result"
    context_tokens: int = 0
    concurrency: int = 0
    scope: str = "point"
    """`point` for the cell's workload, `category:<name>` for a category batch."""
    tok_s_median: float = 0.0
    tok_s_min: float = 0.0
    tok_s_max: float = 0.0
    requests: int = 0
    failures: int = 0
    server_log_gen_tok_s: float | None = None


@register
@dataclass(frozen=True)
class AcceptanceMeasured(Event):
    """Acceptance over one interval from /metrics counter deltas (`source` = metrics) or the log lines."""

    kind: ClassVar[str] = "acceptance_result"
    scope: str = ""
    source: str = "metrics"
    num_drafts: int = 0
    mean_acceptance_length: float | None = None
    draft_acceptance_rate: float | None = None
    per_position_rates: tuple[float, ...] = field(default_factory=tuple)


@register
@dataclass(frozen=True)
class LatencyMeasured(Event):
    """Streaming TTFT / inter-token latency (latency only: never a throughput)."""

    kind: ClassVar[str] = "latency_result"
    ttft_p50_s: float | None = None
    itl_p50_s: float | None = None
    tokens_per_chunk_mean: float | None = None


@register
@dataclass(frozen=True)
class DeterminismMeasured(Event):
    """Greedy token sequences: AR vs AR (control) and technique vs AR, k of N identical."""

    kind: ClassVar[str] = "determinism_result"
    role: str = ""
    """`control` (AR vs AR) or `technique` (technique vs AR)."""
    matches: int = 0
    total: int = 0
    first_divergences: tuple[int, ...] = field(default_factory=tuple)


@register
@dataclass(frozen=True)
class NiahMeasured(Event):
    """Needle-in-a-haystack at one context length: k of the depths found."""

    kind: ClassVar[str] = "niah_result"
    context_tokens: int = 0
    found: int = 0
    total: int = 0


@register
@dataclass(frozen=True)
class EngineStatsLive(Event):
    """A parsed `Avg generation throughput` log line (one logging interval of the engine), for live display."""

    kind: ClassVar[str] = "engine_stats"
    generation_throughput: float | None = None
    prompt_throughput: float | None = None
    running: int | None = None
    waiting: int | None = None
    kv_cache_usage_pct: float | None = None


@register
@dataclass(frozen=True)
class SpecDecodeLive(Event):
    """A parsed `SpecDecoding metrics:` log line: live acceptance over one logging interval."""

    kind: ClassVar[str] = "spec_decode_stats"
    mean_acceptance_length: float | None = None
    accepted_tokens: int | None = None
    drafted_tokens: int | None = None
    per_position_acceptance: tuple[float, ...] = field(default_factory=tuple)
    draft_acceptance_rate: float | None = None
