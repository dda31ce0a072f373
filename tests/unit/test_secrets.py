"""The per-run API key and secret env values never reach `ps`, the store, events, logs or results (#16 item 9)."""

from __future__ import annotations

import os
import stat
import sys
import textwrap
from pathlib import Path

import httpx

from console.experiment.loader import load_experiment
from console.run.folder import RunFolder
from console.run.store import Store
from console.serve.argv import LaunchPlan, build_launch
from console.serve.server import free_port, start_server
from tests.experiment_text import AR, experiment, model, table, workload

# A stand-in vLLM that guards /v1 as vLLM 0.32 does with VLLM_API_KEY (entrypoints/serve/middleware/register.py).
GUARDED = textwrap.dedent("""
    import http.server, os, sys
    port, key = int(sys.argv[1]), os.environ.get("VLLM_API_KEY")
    print(f"INFO Starting vLLM server on http://127.0.0.1:{port}", flush=True)
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            ok = self.path == "/health" or (key and self.headers.get("Authorization") == f"Bearer {key}")
            self.send_response(200 if ok else 401); self.end_headers()
        def log_message(self, *a): pass
    http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
""")

EXP = experiment(
    "t",
    table("serving", max_model_len=4096, env={"HF_TOKEN": "hf_SeCrEt", "OPENAI_API_KEY": "sk-SeCrEt",
                                              "my_secret_thing": "s3", "hf_home": "/cache", "A": "1"}),
    model(), AR, workload(concurrency=(1,)), blank=False)


def guarded_plan(tmp_path: Path, key: str) -> LaunchPlan:
    script = tmp_path / "guarded_vllm.py"
    script.write_text(GUARDED)
    port = free_port()
    return LaunchPlan(argv=[sys.executable, str(script), str(port)], port=port, api_key=key,
                      secret_env={"VLLM_API_KEY": key})


def test_the_key_reaches_the_server_by_environment_not_its_command_line(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("VLLM_API_KEY", "inherited-from-the-shell")  # never the key the server is guarded with
    (tmp_path / "e.toml").write_text(EXP)
    exp = load_experiment(tmp_path / "e.toml")
    launch = build_launch(exp.cells[0], port=free_port(), api_key="sd-k3y")
    assert "sd-k3y" not in launch.argv and "--api-key" not in launch.argv
    server = start_server(guarded_plan(tmp_path, "sd-k3y"), tmp_path / "server.log", timeout_s=30, poll_s=0.1)
    try:
        cmdline = Path(f"/proc/{server.pgid}/cmdline").read_bytes()
        assert b"sd-k3y" not in cmdline and b"guarded_vllm.py" in cmdline  # what `ps` shows every user
        environ = Path(f"/proc/{server.pgid}/environ")
        assert b"VLLM_API_KEY=sd-k3y\0" in environ.read_bytes()  # the owner's eyes only (mode 0400)
        assert stat.S_IMODE(environ.stat().st_mode) == 0o400
        assert httpx.get(f"{server.base_url}/v1/models", headers=server.headers).status_code == 200
        assert httpx.get(f"{server.base_url}/v1/models").status_code == 401
    finally:
        server.stop(grace_s=5)


def test_the_key_lives_in_an_owner_only_file_and_a_resume_adopts_with_it(tmp_path) -> None:
    from console.serve.pool import ServerPool

    folder = RunFolder(tmp_path / "run")
    key = folder.api_key()
    assert key.startswith("sd-") and folder.api_key() == key  # made once, read back
    assert stat.S_IMODE(folder.api_key_path.stat().st_mode) == 0o600
    store = folder.open_store()
    server = start_server(guarded_plan(tmp_path, key), tmp_path / "a.log", timeout_s=30, poll_s=0.1)
    store.record_server("k1", server.pgid, server.base_url, server.api_key, str(tmp_path / "a.log"))
    assert key.encode() not in folder.store_path.read_bytes() + (folder.path / "state.sqlite-wal").read_bytes()
    assert [r["api_key"] for r in store.recorded_servers()] == [None]
    # the runner was killed; `specdeck resume` opens the run again and adopts the surviving server
    resumed = ServerPool(folder.path, registry=Store(folder.store_path), api_key=RunFolder(folder.path).api_key())
    try:
        assert any("adopted" in n for n in resumed.adopt_or_reap())
        adopted = resumed.live["k1"]
        assert httpx.get(f"{adopted.base_url}/v1/models", headers=adopted.headers).status_code == 200
    finally:
        resumed.close()


def test_a_store_from_before_keeps_its_recorded_key_for_adoption(tmp_path) -> None:
    from console.serve.pool import ServerPool

    store = Store(tmp_path / "state.sqlite")
    server = start_server(guarded_plan(tmp_path, "old-key"), tmp_path / "a.log", timeout_s=30, poll_s=0.1)
    with store.tx() as c:  # how a store written before this change recorded it
        c.execute("INSERT INTO servers VALUES ('k1', ?, ?, 'old-key', NULL, 0)", (server.pgid, server.base_url))
    pool = ServerPool(tmp_path, registry=store, api_key="new-key")
    try:
        pool.adopt_or_reap()
        assert httpx.get(f"{server.base_url}/v1/models", headers=pool.live["k1"].headers).status_code == 200
    finally:
        pool.close()


def test_secret_env_values_are_redacted_where_they_are_written_down(tmp_path) -> None:
    from console.results.consolidate import consolidate_run
    from console.run.resolved import freeze, resolved_toml

    src = tmp_path / "e.toml"
    src.write_text(EXP)
    exp = load_experiment(src)
    assert build_launch(exp.cells[0], port=1, api_key=None).env["HF_TOKEN"] == "hf_SeCrEt"  # the server gets it
    text = resolved_toml(exp)
    for secret in ("hf_SeCrEt", "sk-SeCrEt", '"s3"', "/cache"):
        assert secret not in text
    assert '"A" = "1"' in text and '"HF_TOKEN" = "***"' in text
    run = tmp_path / "run"
    RunFolder(run).open_store().add_cells([(exp.cells[0].id, exp.cells[0].serving_key, {})])
    freeze(exp, run)
    assert stat.S_IMODE((run / "experiment.toml").stat().st_mode) == 0o600  # resume serves from it: owner only
    RunFolder(run).open_store().put_measurement(exp.cells[0].id, "speed", "s", {"tok_s": 10.0})
    args = " ".join(consolidate_run(run)["serving_args"].astype(str))
    assert "hf_SeCrEt" not in args and "sk-SeCrEt" not in args and '"A": "1"' in args


def test_results_of_a_run_frozen_before_redaction_are_redacted_too(tmp_path) -> None:
    from console.results.consolidate import _identity

    row = _identity({"id": "c", "model": "m", "env": {"HF_TOKEN": "hf_old", "A": "1"}}, "r", {})
    assert "hf_old" not in row["serving_args"] and '"A": "1"' in row["serving_args"]


def test_a_run_folder_honours_the_umask_and_the_key_file_does_not(tmp_path) -> None:
    """Run folders are as readable as the umask says (teammates may read results: `status`, `report`); what
    is secret is not in them but in the 0600 key file (and a 0600 experiment copy when env holds secrets)."""
    from console.run.paths import new_run_dir

    old = os.umask(0o022)
    try:
        run = new_run_dir("t", root=tmp_path)
        assert stat.S_IMODE(run.stat().st_mode) == 0o755
        RunFolder(run).api_key()
        assert stat.S_IMODE(RunFolder(run).api_key_path.stat().st_mode) == 0o600
    finally:
        os.umask(old)
