"""One vLLM server's life: start in its own process group, wait for /health, classify a failed start,
stop the whole group and prove nothing survived. Also `attach` to a server started by hand.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from console.errors import SpecdeckError
from console.serve.argv import API_KEY_ENV, LaunchPlan

VLLM_PROCESS_PREFIX = "VLLM::"
"""vLLM renames its children `VLLM::EngineCore`, `VLLM::Worker`, …"""


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def new_api_key() -> str:
    """A per-run key, so that nothing else on the box can use (or disturb) the measured server."""
    return "sd-" + secrets.token_urlsafe(24)


class ServerStartError(SpecdeckError, RuntimeError):
    """vLLM did not become healthy. `reason` is a stable code, `fix` says what to change; `evidence` is the log
    line that told, `log_path` the whole log."""

    exit_code = 1

    def __init__(self, reason: str, message: str, fix: str, evidence: str | None = None,
                 log_path: Path | None = None) -> None:
        super().__init__(message, fix)
        self.reason = reason
        self.evidence = evidence
        self.log_path = log_path

    def report(self, prog: str = "specdeck") -> str:
        lines = [f"{prog}: vLLM did not start ({self.reason}): {self.message}", f"fix: {self.fix}"]
        if self.evidence:
            lines.append(f"log line: {self.evidence.strip()}")
        if self.log_path:
            lines.append(f"full log: {self.log_path}")
        return "\n".join(lines)


@dataclass
class StopReport:
    """What stopping took: which signal finished the group and what (if anything) survived."""

    signal_used: str
    seconds: float
    survivors: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.survivors


def group_members(pgid: int) -> list[psutil.Process]:
    """Every live process in process group `pgid` (zombies excluded)."""
    out = []
    for proc in psutil.process_iter(["pid", "name", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if os.getpgid(proc.pid) == pgid:
                out.append(proc)
        except (ProcessLookupError, psutil.NoSuchProcess, psutil.AccessDenied, PermissionError):
            continue
    return out


def vllm_processes() -> list[psutil.Process]:
    """Every live process that is a vLLM server or one of its renamed children, anywhere on the box."""
    out = []
    for proc in psutil.process_iter(["pid", "name", "cmdline", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            name = proc.info["name"] or ""
            cmd = " ".join(proc.info["cmdline"] or [])
            if name.startswith(VLLM_PROCESS_PREFIX) or "vllm.entrypoints.openai.api_server" in cmd:
                out.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return out


def _describe(proc: psutil.Process) -> str:
    try:
        return f"{proc.pid} {proc.name()}"
    except psutil.Error:
        return str(proc.pid)


class Server:
    """A vLLM server specdeck started (owns its process group), adopted from a runner that died (owns the
    group, not the Popen), or attached to (owns nothing)."""

    def __init__(self, base_url: str, api_key: str | None, log_path: Path | None,
                 proc: subprocess.Popen[bytes] | None = None, plan: LaunchPlan | None = None,
                 pgid: int | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.log_path = log_path
        self.proc = proc
        self.plan = plan
        self._pgid = pgid
        self.startup_s: float | None = None

    @property
    def attached(self) -> bool:
        return self.pgid is None

    @property
    def pgid(self) -> int | None:
        if self.proc is not None:
            return self.proc.pid  # start_new_session: the leader's pid is the group id
        return self._pgid

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def healthy(self, timeout: float = 2.0) -> bool:
        try:
            return httpx.get(f"{self.base_url}/health", timeout=timeout, headers=self.headers).status_code == 200
        except httpx.HTTPError:
            return False

    def alive(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is None
        if self._pgid is not None:
            return bool(group_members(self._pgid)) and self.healthy()
        return self.healthy()

    def stop(self, grace_s: float = 30.0) -> StopReport:
        """SIGTERM to the group, wait up to `grace_s`, SIGKILL what is left, then check nothing survived."""
        t0 = time.monotonic()
        pgid = self.pgid
        if pgid is None:
            return StopReport("none (attached: not ours to stop)", 0.0)
        return stop_group(pgid, grace_s, self.proc, t0)


def stop_group(pgid: int, grace_s: float = 30.0, proc: subprocess.Popen[bytes] | None = None,
               t0: float | None = None) -> StopReport:
    """Stop a whole process group: SIGTERM, wait, SIGKILL; report survivors."""
    t0 = time.monotonic() if t0 is None else t0
    used = "SIGTERM"
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if proc is not None:
            proc.poll()
        if not group_members(pgid):
            break
        time.sleep(0.2)
    else:
        used = "SIGKILL"
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        time.sleep(0.5)
    if proc is not None:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
    survivors = [_describe(p) for p in group_members(pgid)]
    return StopReport(used, time.monotonic() - t0, survivors)


def _read_new(path: Path, offset: int) -> tuple[list[str], int]:
    try:
        with path.open("rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n")
    if end < 0:
        return [], offset
    chunk = data[: end + 1].decode("utf-8", errors="replace")
    return chunk.splitlines(), offset + end + 1


def _classify(lines: list[str]) -> ServerStartError | None:
    from console.serve.failures import classify_failure

    failure = classify_failure(lines)
    if failure is None:
        return None
    return ServerStartError(failure.reason.value, failure.message, failure.fix, failure.evidence)


def start_server(
    plan: LaunchPlan,
    log_path: Path,
    *,
    timeout_s: float = 600.0,
    poll_s: float = 0.5,
    on_line: Callable[[str], None] | None = None,
    extra_env: dict[str, str] | None = None,
    on_spawn: Callable[[Server], None] | None = None,
) -> Server:
    """Launch `plan` and return once /health answers 200. Raises `ServerStartError` with a typed reason
    as soon as the process exits or logs a fatal line; on timeout the group is stopped."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **(extra_env or {}), **plan.env}
    env.pop(API_KEY_ENV, None)  # an inherited key would guard the server with a key specdeck does not hold
    env.update(plan.secret_env)
    env.setdefault("PYTHONUNBUFFERED", "1")
    t0 = time.monotonic()
    with log_path.open("ab") as log:
        offset = log.tell()
        proc = subprocess.Popen(
            plan.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, start_new_session=True, close_fds=True,
        )
    server = Server(plan.base_url, plan.api_key, log_path, proc, plan)
    if on_spawn is not None:
        on_spawn(server)  # e.g. record the group now, so a runner killed during start-up leaves no orphan
    seen: list[str] = []
    fatal_at: float | None = None
    try:
        while True:
            new, offset = _read_new(log_path, offset)
            if new:
                seen.extend(new)
                del seen[:-400]  # the classifier needs the tail, not the whole start-up
                if on_line:
                    for line in new:
                        on_line(line)
            code = proc.poll()
            if code is not None:
                new, offset = _read_new(log_path, offset)
                seen.extend(new)
                err = _classify(seen) or ServerStartError(
                    "unknown_exit",
                    f"vLLM exited with code {code} before it was ready",
                    f"read the end of {log_path}",
                    seen[-1] if seen else None,
                )
                err.log_path = log_path
                raise err
            if server.healthy(timeout=1.0):
                server.startup_s = time.monotonic() - t0
                return server
            if fatal_at is None and new and _classify(new) is not None:
                fatal_at = time.monotonic()  # give vLLM a moment to exit by itself and finish its log
            if fatal_at is not None and time.monotonic() - fatal_at > 15:
                err = _classify(seen)
                assert err is not None
                err.log_path = log_path
                raise err
            if time.monotonic() - t0 > timeout_s:
                raise ServerStartError(
                    "timeout",
                    f"vLLM was not healthy after {timeout_s:.0f} s",
                    f"raise serving.startup_timeout_s, or read {log_path} for what it was doing",
                    seen[-1] if seen else None,
                    log_path,
                )
            time.sleep(poll_s)
    except BaseException:
        server.stop(grace_s=10)
        raise


def attach_server(base_url: str, api_key: str | None = None, log_path: str | Path | None = None,
                  timeout_s: float = 10.0) -> Server:
    """Use a server started by hand; it must answer /health within `timeout_s`."""
    server = Server(base_url, api_key, Path(log_path) if log_path else None)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.healthy():
            return server
        time.sleep(0.5)
    raise ServerStartError(
        "attach_unreachable",
        f"no healthy vLLM at {base_url} (GET /health did not answer 200 within {timeout_s:.0f} s)",
        "start the server first, check host and port in [models.attach], and that /health answers",
    )
