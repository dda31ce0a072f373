"""Server lifecycle mechanics with a stand-in process (fast); the real vLLM is in tests/engine."""

from __future__ import annotations

import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from console.serve.argv import LaunchPlan
from console.serve.server import ServerStartError, free_port, group_members, start_server

# A stand-in "server": prints like vLLM, spawns a child in its group, answers /health after a delay.
FAKE = textwrap.dedent("""
    import http.server, os, subprocess, sys, threading, time
    port, delay, mode = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
    print(f"(APIServer pid={os.getpid()}) INFO Starting vLLM server on http://127.0.0.1:{port}", flush=True)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    if mode == "die":
        print("ERROR ValueError: No such file or directory: '/nope' (model path)", flush=True)
        sys.exit(1)
    if mode == "stubborn":
        import signal
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(delay)
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/health" else 404); self.end_headers()
        def log_message(self, *a): pass
    http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
""")


def plan_for(tmp_path: Path, delay: float = 0.5, mode: str = "ok") -> LaunchPlan:
    script = tmp_path / "fake_vllm.py"
    script.write_text(FAKE)
    port = free_port()
    return LaunchPlan(argv=[sys.executable, str(script), str(port), str(delay), mode], port=port)


def test_start_waits_for_health_then_stop_kills_the_whole_group(tmp_path) -> None:
    server = start_server(plan_for(tmp_path), tmp_path / "log" / "server.log", timeout_s=30, poll_s=0.1)
    assert server.healthy() and server.startup_s is not None
    pgid = server.pgid
    assert len(group_members(pgid)) == 2  # the server and its child
    report = server.stop(grace_s=5)
    assert report.clean and report.signal_used == "SIGTERM"
    assert not group_members(pgid)
    assert "Starting vLLM server" in (tmp_path / "log" / "server.log").read_text()


def test_stubborn_group_gets_sigkill(tmp_path) -> None:
    server = start_server(plan_for(tmp_path, mode="stubborn"), tmp_path / "s.log", timeout_s=30, poll_s=0.1)
    report = server.stop(grace_s=1)
    assert report.signal_used == "SIGKILL" and report.clean


def test_exit_before_ready_fails_fast_with_a_reason(tmp_path) -> None:
    t0 = time.monotonic()
    with pytest.raises(ServerStartError) as info:
        start_server(plan_for(tmp_path, delay=60, mode="die"), tmp_path / "s.log", timeout_s=60, poll_s=0.1)
    assert time.monotonic() - t0 < 20
    assert info.value.reason  # classified (or unknown_exit), never a hang
    assert info.value.log_path == tmp_path / "s.log"


def test_timeout_stops_the_group(tmp_path) -> None:
    plan = plan_for(tmp_path, delay=60)
    with pytest.raises(ServerStartError) as info:
        start_server(plan, tmp_path / "s.log", timeout_s=1.5, poll_s=0.1)
    assert info.value.reason == "timeout" and "startup_timeout_s" in info.value.fix
    time.sleep(0.3)
    left = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if "fake_vllm" in cmd and str(plan.port) in cmd and proc.info["status"] != psutil.STATUS_ZOMBIE:
            left.append(cmd)
    assert not left


def test_a_new_pool_adopts_a_healthy_orphan_and_reaps_a_sick_one(tmp_path) -> None:
    from console.run.store import Store
    from console.serve.pool import ServerPool

    store = Store(tmp_path / "state.sqlite")
    healthy = start_server(plan_for(tmp_path), tmp_path / "a.log", timeout_s=30, poll_s=0.1)
    sick = start_server(plan_for(tmp_path), tmp_path / "b.log", timeout_s=30, poll_s=0.1)
    store.record_server("k-healthy", healthy.pgid, healthy.base_url, None, str(tmp_path / "a.log"))
    # A server whose /health no longer answers (its group is alive but it is not usable).
    store.record_server("k-sick", sick.pgid, "http://127.0.0.1:9", None, None)
    pool = ServerPool(tmp_path, registry=store, max_live=1)
    notes = pool.adopt_or_reap()
    assert any("adopted" in n for n in notes) and any("orphaned" in n for n in notes)
    assert not group_members(sick.pgid)
    assert list(pool.live) == ["k-healthy"] and pool.live["k-healthy"].pgid == healthy.pgid
    assert [r["serving_key"] for r in store.recorded_servers()] == ["k-healthy"]
    pool.close()  # the adopted group is ours now: close stops it
    assert not group_members(healthy.pgid)
    assert store.recorded_servers() == []
