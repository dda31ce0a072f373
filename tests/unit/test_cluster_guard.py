"""The server guard: a server whose starter dies abruptly is stopped; a server that ends first ends its guard."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from console.cluster.guard import owner_alive, process_start, start_guard

ROOT = Path(__file__).resolve().parents[2]

OWNER = textwrap.dedent("""
    import json, subprocess, sys, time
    from console.cluster.guard import start_guard
    server = subprocess.Popen(["sleep", "600"], start_new_session=True)  # a server in its own session
    guard = start_guard(server.pid, grace_s=2, log_path=sys.argv[1])
    print(json.dumps({"server": server.pid, "guard": guard.pid}), flush=True)
    time.sleep(600)
""")


def alive(pid: int) -> bool:
    return process_start(pid) is not None


def wait_until(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


@pytest.fixture
def owner(tmp_path):
    log = tmp_path / "guard.log"
    proc = subprocess.Popen([sys.executable, "-c", OWNER, str(log)], stdout=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    pids = json.loads(proc.stdout.readline())
    yield proc, pids, log
    for pid in (pids["server"], pids["guard"]):
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def test_owner_killed_with_sigkill_takes_its_server_along(owner):
    proc, pids, log = owner
    assert wait_until(lambda: log.exists() or alive(pids["guard"]), 10)
    proc.send_signal(signal.SIGKILL)  # no finally, no atexit: what a crashed Ray worker does
    proc.wait()
    assert wait_until(lambda: not alive(pids["server"])), "the server outlived its owner"
    assert wait_until(lambda: not alive(pids["guard"]))
    assert f"owner {proc.pid} died: stopped group {pids['server']} with SIGTERM" in log.read_text()


def test_server_that_ends_first_ends_its_guard(owner):
    proc, pids, log = owner
    os.killpg(pids["server"], signal.SIGTERM)  # the normal stop
    assert wait_until(lambda: not alive(pids["guard"]))
    assert proc.poll() is None and "group ended" in log.read_text()


def test_a_reused_pid_is_not_the_owner():
    me = os.getpid()
    started = process_start(me)
    assert started is not None and owner_alive(me, started)
    assert not owner_alive(me, started - 100)  # same pid, another start time: another process
    assert not owner_alive(2**22 + 12345, started)


def test_start_guard_refuses_a_missing_owner():
    with pytest.raises(ProcessLookupError):
        start_guard(12345, owner=2**22 + 12345)
