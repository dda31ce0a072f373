"""/metrics snapshots, counter diffs and the log-line cross-check, on a real draft_model server's scrapes."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from console.serve.logparse import SpecDecodeStats, parse_line, parse_lines
from console.serve.metrics import (
    AcceptanceStats,
    acceptance_between,
    acceptance_from_log,
    ascrape,
    estimate_drafts,
    max_disagreement,
    parse_metrics,
    scrape,
)

FIX = Path(__file__).resolve().parents[1] / "fixtures"
BEFORE = (FIX / "metrics" / "before.txt").read_text()
AFTER = (FIX / "metrics" / "after.txt").read_text()


def spec_events(name: str) -> list[SpecDecodeStats]:
    evs = parse_lines((FIX / "logs" / name).read_text(encoding="utf-8").splitlines())
    return [e for e in evs if isinstance(e, SpecDecodeStats)]


def test_snapshot_reads_counters() -> None:
    snap = parse_metrics(AFTER, timestamp=123.0)
    assert snap.timestamp == 123.0
    assert snap.total("vllm:spec_decode_num_drafts") == 4207
    assert snap.total("vllm:spec_decode_num_drafts_total") == 4207  # either spelling
    assert snap.total("vllm:spec_decode_num_drafts", model_name="tiny") == 4207
    assert snap.total("vllm:spec_decode_num_drafts", model_name="other") is None
    assert snap.by_label("vllm:spec_decode_num_accepted_tokens_per_pos", "position") == {
        "0": 1331,
        "1": 438,
        "2": 358,
        "3": 336,
    }
    assert snap.total("vllm:generation_tokens") == 6672
    assert not any(name.endswith("_created") for name in snap.names())
    assert snap.has("vllm:num_requests_running")


def test_diff_matches_recorded_expectation() -> None:
    acc = acceptance_between(parse_metrics(BEFORE), parse_metrics(AFTER))
    assert (acc.num_drafts, acc.num_draft_tokens, acc.num_accepted) == (4192, 16768, 2463)
    assert acc.accepted_per_position == (1331, 438, 358, 336)
    assert acc.mean_acceptance_length == pytest.approx(1 + 2463 / 4192)
    assert acc.per_position_rates == pytest.approx((1331 / 4192, 438 / 4192, 358 / 4192, 336 / 4192))
    assert acc.draft_acceptance_rate == pytest.approx(2463 / 16768)
    expected = json.loads((FIX / "metrics" / "expected_diff.json").read_text())
    expected.pop("_comment")
    assert acc.to_dict() == expected
    json.dumps(acc.to_dict(), allow_nan=False)


def test_prefix_filter_keeps_exactly_the_named_counters_and_their_values() -> None:
    from console.bench.acceptance import MARK_PREFIXES, REQUEST_SUCCESS

    full_before, full_after = parse_metrics(BEFORE), parse_metrics(AFTER)
    kept_before, kept_after = (parse_metrics(t, prefixes=MARK_PREFIXES) for t in (BEFORE, AFTER))
    wanted = {k: v for k, v in full_after.samples.items() if k[0].startswith(MARK_PREFIXES)}
    assert kept_after.samples == wanted
    assert len(wanted) < len(full_after.samples) / 4  # the scrape is mostly other metrics
    assert kept_after.total(REQUEST_SUCCESS) == full_after.total(REQUEST_SUCCESS) > 0
    assert acceptance_between(kept_before, kept_after) == acceptance_between(full_before, full_after)
    assert parse_metrics(AFTER, prefixes=("vllm:no_such_metric",)).samples == {}


def test_log_and_metrics_agree() -> None:
    # the first SpecDecoding line is the warm-up request, which happened before before.txt was scraped
    log = acceptance_from_log(spec_events("cpu_spec_draft_model.log")[1:])
    metrics = acceptance_between(parse_metrics(BEFORE), parse_metrics(AFTER))
    assert (log.num_draft_tokens, log.num_accepted) == (16768, 2463)
    assert log.num_drafts == pytest.approx(4192)  # draft_model drafts are always k long: drafted / 4
    disagreement = max_disagreement(log, metrics)
    assert disagreement is not None and disagreement < 0.005  # far inside the 0.05 the runner will allow


def test_estimate_drafts_variable_length_ngram() -> None:
    first = spec_events("cpu_spec_ngram.log")[0]  # MAL 3.38, accepted 4190, drafted 6450, k=4
    n = estimate_drafts(first)
    assert n is not None and 6450 / 4 < n < 6450
    assert n == pytest.approx(4190 / (0.802 + 0.593 + 0.518 + 0.463))
    assert 1 + 4190 / n == pytest.approx(3.38, abs=0.005)
    acc = acceptance_from_log(spec_events("cpu_spec_ngram.log"))
    assert acc.mean_acceptance_length == pytest.approx(3.47, abs=0.02)


def test_estimate_drafts_edge_cases() -> None:
    zero = parse_line(
        "SpecDecoding metrics: Accepted: 0 tokens, Drafted: 60 tokens, Per-position acceptance rate: 0.000, 0.000, 0.000, 0.000"
    )
    assert isinstance(zero, SpecDecodeStats) and estimate_drafts(zero) == 15
    nothing = parse_line(
        "SpecDecoding metrics: Mean acceptance length: nan, Accepted: 0 tokens, Drafted: 0 tokens"
    )
    assert isinstance(nothing, SpecDecodeStats) and estimate_drafts(nothing) == 0
    acc = acceptance_from_log([nothing])
    assert acc.num_drafts == 0 and acc.mean_acceptance_length is None and acc.per_position_rates is None


def test_zero_drafts_and_no_spec_decode() -> None:
    snap = parse_metrics(AFTER)
    idle = acceptance_between(snap, snap)
    assert idle.num_drafts == 0 and not idle.has_drafts
    assert idle.mean_acceptance_length is None and idle.per_position_rates is None
    assert idle.draft_acceptance_rate is None
    assert idle.accepted_per_position == (0, 0, 0, 0)
    ar = parse_metrics(
        '# TYPE vllm:generation_tokens counter\nvllm:generation_tokens_total{engine="0"} 5.0\n'
    )
    none = acceptance_between(ar, ar)
    assert none.num_drafts == 0 and none.accepted_per_position == () and none.mean_acceptance_length is None
    assert max_disagreement(none, idle) is None
    json.dumps(none.to_dict(), allow_nan=False)


def _two_engines(
    drafts: tuple[int, int], accepted: tuple[int, int], suffix: str, pos0: tuple[int, int]
) -> str:
    lines = [f"# TYPE vllm:spec_decode_num_drafts{'' if suffix else '_total'} counter"]
    for eng in (0, 1):
        lines.append(f'vllm:spec_decode_num_drafts{suffix}{{engine="{eng}",model_name="m"}} {drafts[eng]}')
        lines.append(
            f'vllm:spec_decode_num_draft_tokens{suffix}{{engine="{eng}",model_name="m"}} {drafts[eng] * 2}'
        )
        lines.append(
            f'vllm:spec_decode_num_accepted_tokens{suffix}{{engine="{eng}",model_name="m"}} {accepted[eng]}'
        )
        lines.append(
            f'vllm:spec_decode_num_accepted_tokens_per_pos{suffix}{{engine="{eng}",model_name="m",position="0"}} {pos0[eng]}'
        )
        lines.append(
            f"vllm:spec_decode_num_accepted_tokens_per_pos{suffix}"
            f'{{engine="{eng}",model_name="m",position="1"}} {accepted[eng] - pos0[eng]}'
        )
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("suffix", ["_total", ""])
def test_sums_over_engines_and_suffix_either_way(suffix: str) -> None:
    before = parse_metrics(_two_engines((10, 20), (5, 10), suffix, (4, 8)))
    after = parse_metrics(_two_engines((110, 120), (105, 110), suffix, (74, 78)))
    acc = acceptance_between(before, after, model_name="m")
    assert (acc.num_drafts, acc.num_draft_tokens, acc.num_accepted) == (200, 400, 200)
    assert acc.accepted_per_position == (140, 60)
    assert acc.mean_acceptance_length == 2.0
    assert acc.per_position_rates == (0.7, 0.3)
    assert acc.draft_acceptance_rate == 0.5
    assert acceptance_between(before, after, model_name="nope").num_drafts == 0


def test_counter_reset_is_an_error() -> None:
    with pytest.raises(ValueError, match="restarted"):
        acceptance_between(parse_metrics(AFTER), parse_metrics(BEFORE))


def test_diffusion_counters_diffed_generically() -> None:
    text = (
        "# TYPE vllm:diffusion_num_denoising_steps counter\n"
        'vllm:diffusion_num_denoising_steps_total{{engine="0",model_name="d"}} {a}\n'
        "# TYPE vllm:diffusion_num_committed_tokens counter\n"
        'vllm:diffusion_num_committed_tokens_total{{engine="0",model_name="d"}} {b}\n'
        "# TYPE vllm:diffusion_something_new counter\n"
        'vllm:diffusion_something_new_total{{engine="0",model_name="d"}} {c}\n'
    )
    acc = acceptance_between(
        parse_metrics(text.format(a=10, b=40, c=1)), parse_metrics(text.format(a=30, b=120, c=4))
    )
    assert acc.diffusion == {
        "vllm:diffusion_num_committed_tokens": 80,
        "vllm:diffusion_num_denoising_steps": 20,
        "vllm:diffusion_something_new": 3,
    }
    assert acc.num_drafts == 0 and acc.mean_acceptance_length is None


# ------------------------------------------------------------------------------------------- scraping


@pytest.fixture()
def metrics_server() -> Iterator[tuple[str, list[str | None]]]:
    seen: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            seen.append(self.headers.get("Authorization"))
            body = AFTER.encode() if self.path == "/metrics" else b"not found"
            self.send_response(200 if self.path == "/metrics" else 404)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_scrape(metrics_server: tuple[str, list[str | None]]) -> None:
    url, seen = metrics_server
    snap = scrape(url + "/v1", api_key="k123", timeout=5)
    assert snap.total("vllm:spec_decode_num_drafts") == 4207
    assert seen == ["Bearer k123"]


async def test_ascrape(metrics_server: tuple[str, list[str | None]]) -> None:
    url, seen = metrics_server
    snap = await ascrape(url, timeout=5)
    assert snap.total("vllm:spec_decode_num_accepted_tokens") == 2463
    assert seen == [None]


def test_acceptance_stats_is_frozen() -> None:
    acc = AcceptanceStats(0, 0, 0, (), None, None, None)
    with pytest.raises(AttributeError):
        acc.num_drafts = 1  # type: ignore[misc]
