"""Pure statistics of the bench: spread of repeats, percentiles, divergence, the throughput rule."""

from __future__ import annotations

import math

import pytest

from console.bench.determinism import Comparison, Generation, compare, summarize
from console.bench.stats import first_divergence, latency_summary, nan_to_none, percentile, spread, throughput


def test_repeats_are_median_min_max() -> None:
    s = spread([300.0, 280.0, 310.0])
    assert (s.median, s.min, s.max, s.n) == (300.0, 280.0, 310.0, 3)
    assert s.fmt() == "300 (280–310)"
    assert spread([5.0]).fmt(1) == "5.0"
    empty = spread([])
    assert empty.n == 0 and math.isnan(empty.median) and empty.fmt() == "-"


def test_percentile_interpolates_like_numpy() -> None:
    vals = [1.0, 2.0, 3.0, 4.0]
    assert percentile(vals, 50) == 2.5
    assert percentile(vals, 90) == pytest.approx(3.7)
    assert percentile([7.0], 99) == 7.0
    assert math.isnan(percentile([], 50))
    summary = latency_summary([0.1, 0.2, 0.3])
    assert summary["n"] == 3 and summary["p50"] == pytest.approx(0.2) and summary["max"] == 0.3


def test_throughput_is_tokens_over_first_send_to_last_response() -> None:
    assert throughput(1024, 10.0, 12.0) == 512.0
    assert throughput(100, 5.0, 5.0) == 0.0


@pytest.mark.parametrize(("a", "b", "want"), [
    ([1, 2, 3], [1, 2, 3], None),
    ([1, 2, 3], [1, 9, 3], 1),
    ([1, 2, 3], [1, 2], 2),
    ([], [4], 0),
    ([5], [6], 0),
])
def test_first_divergence(a: list[int], b: list[int], want: int | None) -> None:
    assert first_divergence(a, b) == want


def test_nan_becomes_null_in_json() -> None:
    assert nan_to_none(float("nan")) is None and nan_to_none(1.5) == 1.5 and nan_to_none(None) is None


def test_determinism_table_reads_like_the_study() -> None:
    ar = [Generation(i, tuple(range(1000))) for i in range(12)]
    other = [Generation(i, tuple(range(1000)) if i < 3 else tuple(range(483 + 30 * (i - 3))) + (-1,) * 10)
             for i in range(12)]
    comps = compare(ar, other)
    s = summarize(comps)
    assert s.matches == 3 and s.total == 12
    assert s.text == "3/12, divergence at tokens 483–723"
    assert summarize(compare(ar, ar)).text == "12/12"


def test_a_failed_generation_is_a_counted_non_match() -> None:
    ar = [Generation(0, (1, 2)), Generation(1, (3, 4))]
    other = [Generation(0, (1, 2)), Generation(1, (), "HTTP 500: boom")]
    comps = compare(ar, other)
    assert comps[1] == Comparison(1, False, None, 2, 0, "HTTP 500: boom")
    assert summarize(comps).text == "1/2, 1 failed"


def test_bench_events_replay_from_events_jsonl(tmp_path) -> None:
    from console.events import AcceptanceMeasured, DeterminismMeasured, SpecDecodeLive, SpeedMeasured
    from console.run.eventlog import EventLog, read_events

    log = EventLog(tmp_path / "events.jsonl")
    sent = [SpeedMeasured(run_id="r", cell_id="c", tok_s_median=812.0, failures=1),
            AcceptanceMeasured(run_id="r", cell_id="c", per_position_rates=(0.8, 0.5)),
            DeterminismMeasured(run_id="r", role="technique", matches=3, total=12, first_divergences=(483, 801)),
            SpecDecodeLive(run_id="r", mean_acceptance_length=2.95, per_position_acceptance=(0.7, 0.4))]
    for e in sent:
        log.append(e)
    back, _ = read_events(log.path)
    assert [type(e) for e in back] == [type(e) for e in sent]
    assert back[1].per_position_rates == (0.8, 0.5) and back[2].first_divergences == (483, 801)
    assert back[0].tok_s_median == 812.0 and back[0].failures == 1
