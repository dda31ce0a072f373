"""vLLM ``/metrics`` snapshots and the acceptance numbers between two of them.

Acceptance is measured from Prometheus counters diffed around a phase with no other traffic, never from a
streaming client (see docs/design.md, measurement rules)::

    mean acceptance length = 1 + Δaccepted / Δdrafts
    per-position rate[i]   = Δaccepted_per_pos[i] / Δdrafts
    draft acceptance rate  = Δaccepted / Δdraft_tokens

Counters are summed over the ``engine`` label (data-parallel servers have several) and can be filtered by
``model_name``. Names are stored without the ``_total`` suffix, so ``vllm:spec_decode_num_drafts`` and
``vllm:spec_decode_num_drafts_total`` are the same counter here. Diffusion servers export
``vllm:diffusion_*`` counters instead; every one of them is diffed into ``AcceptanceStats.diffusion``.

The same stats can be rebuilt from ``SpecDecoding metrics:`` log lines (``acceptance_from_log``) so the live
view and the measurement can be checked against each other (``max_disagreement``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from prometheus_client.parser import text_string_to_metric_families

if TYPE_CHECKING:  # pragma: no cover
    from console.serve.logparse import SpecDecodeStats

__all__ = [
    "AcceptanceStats",
    "LogAcceptance",
    "MetricsSnapshot",
    "acceptance_between",
    "acceptance_from_log",
    "ascrape",
    "estimate_drafts",
    "max_disagreement",
    "parse_metrics",
    "scrape",
]

DRAFTS = "vllm:spec_decode_num_drafts"
DRAFT_TOKENS = "vllm:spec_decode_num_draft_tokens"
ACCEPTED = "vllm:spec_decode_num_accepted_tokens"
ACCEPTED_PER_POS = "vllm:spec_decode_num_accepted_tokens_per_pos"
DIFFUSION_PREFIX = "vllm:diffusion_"
SPEC_DECODE_PREFIX = "vllm:spec_decode_"

Labels = tuple[tuple[str, str], ...]


def _base_name(name: str) -> str:
    return name[: -len("_total")] if name.endswith("_total") else name


@dataclass(frozen=True)
class MetricsSnapshot:
    """Every sample of one ``/metrics`` scrape, keyed by (name without ``_total``, sorted labels).

    ``_created`` samples (counter creation times) are dropped; histogram ``_bucket``/``_sum``/``_count``
    samples are kept under their own names. ``timestamp`` is wall-clock seconds when it was taken.
    """

    samples: dict[tuple[str, Labels], float] = field(hash=False)
    timestamp: float

    def names(self) -> set[str]:
        """All metric names present (without ``_total``)."""
        return {name for name, _ in self.samples}

    def has(self, name: str) -> bool:
        """Whether any sample of ``name`` (with or without ``_total``) exists."""
        return _base_name(name) in self.names()

    def select(self, name: str, model_name: str | None = None, **labels: str) -> list[tuple[Labels, float]]:
        """Samples of ``name`` whose labels include ``labels`` (and ``model_name`` if given)."""
        want = dict(labels)
        if model_name is not None:
            want["model_name"] = model_name
        base = _base_name(name)
        out = []
        for (n, lbls), value in self.samples.items():
            if n != base:
                continue
            d = dict(lbls)
            if all(d.get(k) == v for k, v in want.items()):
                out.append((lbls, value))
        return out

    def total(self, name: str, model_name: str | None = None, **labels: str) -> float | None:
        """Sum of ``name`` over all matching label sets (e.g. every ``engine``); None if absent."""
        rows = self.select(name, model_name, **labels)
        return sum(v for _, v in rows) if rows else None

    def by_label(self, name: str, label: str, model_name: str | None = None) -> dict[str, float]:
        """``name`` summed per value of ``label`` (e.g. per ``position``), over every other label."""
        out: dict[str, float] = {}
        for lbls, value in self.select(name, model_name):
            key = dict(lbls).get(label)
            if key is not None:
                out[key] = out.get(key, 0.0) + value
        return out

    def with_prefix(self, prefix: str, model_name: str | None = None) -> dict[str, float]:
        """Every metric whose name starts with ``prefix``, summed over labels."""
        out: dict[str, float] = {}
        for name in sorted(self.names()):
            if name.startswith(prefix):
                total = self.total(name, model_name)
                if total is not None:
                    out[name] = total
        return out


def _keep_families(text: str, prefixes: tuple[str, ...]) -> str:
    """The exposition lines (samples and their ``# HELP`` / ``# TYPE``) of metrics named with ``prefixes``."""
    keep = []
    for line in text.splitlines():
        if line.startswith("#"):
            parts = line.split(None, 3)
            name = parts[2] if len(parts) > 2 else ""
        else:
            name = line.split("{", 1)[0].split(None, 1)[0] if line.strip() else ""
        if name.startswith(prefixes):
            keep.append(line)
    return "\n".join(keep) + "\n"


def parse_metrics(text: str, timestamp: float | None = None, *,
                  prefixes: tuple[str, ...] | None = None) -> MetricsSnapshot:
    """Prometheus text exposition → ``MetricsSnapshot`` (via prometheus_client's parser).

    ``prefixes`` keeps only the metrics whose names start with one of them: a vLLM scrape is mostly latency
    histogram buckets, and a probe that marks every repeat needs a handful of counters (measured: the full
    parse was ~80 % of the speed phase's client CPU).
    """
    if prefixes is not None:
        text = _keep_families(text, prefixes)
    samples: dict[tuple[str, Labels], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            key = (_base_name(sample.name), tuple(sorted(sample.labels.items())))
            samples[key] = float(sample.value)
    return MetricsSnapshot(samples=samples, timestamp=time.time() if timestamp is None else timestamp)


def _metrics_url(base_url: str) -> str:
    base = base_url.rstrip("/")
    if base.endswith("/v1"):
        base = base[: -len("/v1")]
    return base + "/metrics"


def _headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def scrape(base_url: str, api_key: str | None = None, timeout: float = 10.0) -> MetricsSnapshot:
    """GET ``{base_url}/metrics`` and parse it (raises ``httpx.HTTPError`` on failure)."""
    import httpx

    resp = httpx.get(_metrics_url(base_url), headers=_headers(api_key), timeout=timeout)
    resp.raise_for_status()
    return parse_metrics(resp.text)


async def ascrape(base_url: str, api_key: str | None = None, timeout: float = 10.0) -> MetricsSnapshot:
    """Async ``scrape``."""
    import httpx

    async with httpx.AsyncClient(timeout=timeout) as client:
        resp = await client.get(_metrics_url(base_url), headers=_headers(api_key))
        resp.raise_for_status()
        return parse_metrics(resp.text)


# ------------------------------------------------------------------------------------------ acceptance


@dataclass(frozen=True)
class AcceptanceStats:
    """Speculative-decoding acceptance over one interval (a phase, or a run of log intervals).

    ``num_drafts == 0`` (no spec decode configured, or no traffic) leaves every ratio ``None`` rather than
    dividing by zero. From ``/metrics`` the counts are exact; from log lines (``source == "log"``) drafts and
    per-position counts are estimates (the log prints rates), so they may be fractional.
    """

    num_drafts: float
    num_draft_tokens: float
    num_accepted: float
    accepted_per_position: tuple[float, ...]
    mean_acceptance_length: float | None
    per_position_rates: tuple[float, ...] | None
    draft_acceptance_rate: float | None
    diffusion: dict[str, float] = field(default_factory=dict, hash=False)
    source: str = "metrics"

    @property
    def has_drafts(self) -> bool:
        """Whether any draft was verified in the interval."""
        return self.num_drafts > 0

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form (tuples as lists; counts that are whole numbers as ints)."""

        def num(x: float) -> int | float:
            return int(x) if float(x).is_integer() else x

        return {
            "source": self.source,
            "num_drafts": num(self.num_drafts),
            "num_draft_tokens": num(self.num_draft_tokens),
            "num_accepted": num(self.num_accepted),
            "accepted_per_position": [num(x) for x in self.accepted_per_position],
            "mean_acceptance_length": self.mean_acceptance_length,
            "per_position_rates": list(self.per_position_rates)
            if self.per_position_rates is not None
            else None,
            "draft_acceptance_rate": self.draft_acceptance_rate,
            "diffusion": dict(self.diffusion),
        }


def _build(
    drafts: float,
    draft_tokens: float,
    accepted: float,
    per_pos: list[float],
    diffusion: Mapping[str, float] | None = None,
    source: str = "metrics",
) -> AcceptanceStats:
    have = drafts > 0
    return AcceptanceStats(
        num_drafts=drafts,
        num_draft_tokens=draft_tokens,
        num_accepted=accepted,
        accepted_per_position=tuple(per_pos),
        mean_acceptance_length=(1.0 + accepted / drafts) if have else None,
        per_position_rates=tuple(p / drafts for p in per_pos) if have else None,
        draft_acceptance_rate=(accepted / draft_tokens) if draft_tokens > 0 else None,
        diffusion=dict(diffusion or {}),
        source=source,
    )


def _delta(before: MetricsSnapshot, after: MetricsSnapshot, name: str, model_name: str | None) -> float:
    a = after.total(name, model_name)
    if a is None:
        return 0.0
    b = before.total(name, model_name) or 0.0
    if a < b:
        raise ValueError(
            f"{name} went backwards ({b:g} → {a:g}): was the server restarted between the scrapes?"
        )
    return a - b


def acceptance_between(
    before: MetricsSnapshot, after: MetricsSnapshot, model_name: str | None = None
) -> AcceptanceStats:
    """Acceptance from the counter differences ``after - before`` (summed over engines).

    A server without spec decode has no such counters: the result has ``num_drafts == 0`` and ``None``
    ratios, as does an interval with no traffic. Raises ``ValueError`` if a counter went backwards.
    """
    drafts = _delta(before, after, DRAFTS, model_name)
    draft_tokens = _delta(before, after, DRAFT_TOKENS, model_name)
    accepted = _delta(before, after, ACCEPTED, model_name)
    pos_after = after.by_label(ACCEPTED_PER_POS, "position", model_name)
    pos_before = before.by_label(ACCEPTED_PER_POS, "position", model_name)
    per_pos = []
    for pos in sorted(pos_after, key=lambda p: int(p) if p.isdigit() else p):
        d = pos_after[pos] - pos_before.get(pos, 0.0)
        if d < 0:
            raise ValueError(f"{ACCEPTED_PER_POS}{{position={pos}}} went backwards: server restarted?")
        per_pos.append(d)
    diffusion = {}
    for name in sorted(after.with_prefix(DIFFUSION_PREFIX, model_name)):
        diffusion[name] = _delta(before, after, name, model_name)
    return _build(drafts, draft_tokens, accepted, per_pos, diffusion, source="metrics")


# ------------------------------------------------------------------------------------ from log lines


def estimate_drafts(ev: SpecDecodeStats) -> float | None:
    """How many drafts one ``SpecDecoding metrics:`` interval verified (the log prints no draft count).

    Per-position rates are accepted-at-i / drafts and sum to accepted / drafts, so drafts ≈ accepted / Σrates.
    The rates are rounded to 3 decimals; when drafted_tokens / k (exact for fixed-length drafters such as
    draft_model, EAGLE, MTP) lies within that rounding, it is used instead. Variable-length drafters (ngram)
    propose fewer than k tokens at times, so there drafted / k undercounts and the rate-based value is kept,
    clamped to [drafted / k, drafted]. With nothing accepted, drafted / k is the only estimate.
    """
    drafted = ev.drafted_tokens
    accepted = ev.accepted_tokens
    k = ev.num_speculative_tokens
    if drafted is None:
        return None
    if drafted == 0:
        return 0.0
    lower = drafted / k if k else None
    rates = [r for r in ev.per_position_acceptance if not math.isnan(r)]
    est: float | None = None
    if accepted and rates and sum(rates) > 0:
        s = sum(rates)
        tol = 0.0005 * len(rates)
        lo, hi = accepted / (s + tol), (accepted / (s - tol) if s > tol else math.inf)
        if lower is not None and lo <= lower <= hi:
            return lower
        est = accepted / s
    elif accepted and ev.mean_acceptance_length and ev.mean_acceptance_length > 1:
        est = accepted / (ev.mean_acceptance_length - 1.0)
    if est is None:
        return lower
    if lower is not None:
        est = max(est, lower)
    return min(est, float(drafted))


def acceptance_from_log(events: Iterable[SpecDecodeStats]) -> AcceptanceStats:
    """Acceptance over a run of ``SpecDecoding metrics:`` intervals, weighted by each interval's drafts.

    Accepted and drafted tokens are summed exactly; drafts come from ``estimate_drafts`` and per-position
    accepted counts are rate × drafts. Intervals without a drafted count are skipped. Agrees with the
    ``/metrics`` diff over the same window to well within 0.05 (see tests/unit/test_metrics.py).
    """
    acc = LogAcceptance()
    for ev in events:
        acc.add(ev)
    return acc.stats()


class LogAcceptance:
    """`acceptance_from_log` one line at a time, in constant memory (a 200 MB log streams through it)."""

    def __init__(self) -> None:
        self.drafts = self.drafted = self.accepted = 0.0
        self.per_pos: list[float] = []
        self.per_pos_drafts = 0.0  # drafts of the intervals that printed per-position rates (v0 lines did not)
        self.lines = 0

    def add(self, ev: SpecDecodeStats) -> None:
        n = estimate_drafts(ev)
        if n is None or ev.drafted_tokens is None:
            return
        self.lines += 1
        self.drafts += n
        self.drafted += ev.drafted_tokens
        self.accepted += ev.accepted_tokens or 0
        rates = ev.per_position_acceptance
        if rates and not any(math.isnan(r) for r in rates):
            self.per_pos_drafts += n
            for i, rate in enumerate(rates):
                if i >= len(self.per_pos):
                    self.per_pos.append(0.0)
                self.per_pos[i] += rate * n

    def stats(self) -> AcceptanceStats:
        stats = _build(self.drafts, self.drafted, self.accepted, list(self.per_pos), source="log")
        if self.per_pos_drafts != self.drafts:
            pd = self.per_pos_drafts
            rates_out = tuple(p / pd for p in self.per_pos) if pd > 0 else None
            stats = replace(stats, per_position_rates=rates_out)
        return stats


def max_disagreement(a: AcceptanceStats, b: AcceptanceStats) -> float | None:
    """Largest absolute difference between two measurements of the same window.

    Compares mean acceptance length, draft acceptance rate and each per-position rate; None when either side
    has no drafts (nothing to compare).
    """
    if not (a.has_drafts and b.has_drafts):
        return None
    diffs = []
    if a.mean_acceptance_length is not None and b.mean_acceptance_length is not None:
        diffs.append(abs(a.mean_acceptance_length - b.mean_acceptance_length))
    if a.draft_acceptance_rate is not None and b.draft_acceptance_rate is not None:
        diffs.append(abs(a.draft_acceptance_rate - b.draft_acceptance_rate))
    for x, y in zip(a.per_position_rates or (), b.per_position_rates or (), strict=False):
        diffs.append(abs(x - y))
    return max(diffs) if diffs else None
