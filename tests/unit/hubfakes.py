"""A local hub cache laid out exactly as huggingface_hub 2.4.0 lays it out, and a fake of the remote side
whose errors are the real exception types (raised by huggingface_hub's own `hf_raise_for_status`)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
from huggingface_hub.utils import hf_raise_for_status

LLAMA_CONFIG = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 256,
                "num_attention_heads": 4, "num_key_value_heads": 4, "num_hidden_layers": 2,
                "max_position_embeddings": 4096, "torch_dtype": "bfloat16", "vocab_size": 512}


def write_model_dir(folder: Path, config: dict[str, Any] | None = None, weights: bytes = b"\0" * 4096,
                    sharded: bool = False) -> Path:
    """A model folder as vLLM reads it: config.json + safetensors (the bytes are not parsed by preflight)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config or LLAMA_CONFIG))
    if sharded:
        shards = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
        (folder / "model.safetensors.index.json").write_text(json.dumps(
            {"metadata": {"total_size": 2 * len(weights)}, "weight_map": {"a": shards[0], "b": shards[1]}}))
        for s in shards:
            (folder / s).write_bytes(weights)
    else:
        (folder / "model.safetensors").write_bytes(weights)
    return folder


def cache_repo(cache: Path, repo_id: str, files: dict[str, bytes], repo_type: str = "model",
               commit: str = "0123456789abcdef0123456789abcdef01234567") -> Path:
    """`<cache>/models--org--name/{blobs/<sha>, snapshots/<commit>/<file> → ../../blobs/<sha>, refs/main}`."""
    root = cache / f"{repo_type}s--{repo_id.replace('/', '--')}"
    (root / "blobs").mkdir(parents=True, exist_ok=True)
    (root / "refs").mkdir(exist_ok=True)
    (root / "refs" / "main").write_text(commit)
    snap = root / "snapshots" / commit
    for name, data in files.items():
        sha = hashlib.sha256(data).hexdigest()
        (root / "blobs" / sha).write_bytes(data)
        target = snap / name
        target.parent.mkdir(parents=True, exist_ok=True)
        depth = len(Path(name).parts) + 1
        target.symlink_to(Path(*([".."] * depth)) / "blobs" / sha)
    return snap


def _raise(status: int, code: str | None, url: str) -> None:
    headers = {"X-Error-Code": code} if code else {}
    hf_raise_for_status(httpx2.Response(status, headers=headers, request=httpx2.Request("GET", url)))


@dataclass
class Sibling:
    rfilename: str
    size: int | None = None


@dataclass
class Info:
    siblings: list[Sibling]
    gated: Any = False


@dataclass
class FakeApi:
    """The three HfApi methods `console.hub.Hub.remote` calls. `repos`: repo id → (files with sizes, gated,
    readable). Unknown repos answer 404 RepoNotFound; a gated repo this token may not read answers 403 GatedRepo
    on auth_check (model_info of a gated repo is public on the real hub)."""

    repos: dict[str, tuple[dict[str, int], Any, bool]] = field(default_factory=dict)
    unreachable: bool = False
    calls: list[str] = field(default_factory=list)

    def _get(self, repo_id: str, kind: str) -> tuple[dict[str, int], Any, bool]:
        self.calls.append(f"{kind} {repo_id}")
        if self.unreachable:
            raise httpx2.ConnectError("[Errno -2] Name or service not known")
        if repo_id not in self.repos:
            _raise(404, "RepoNotFound", f"https://huggingface.co/api/{kind}s/{repo_id}")
        return self.repos[repo_id]

    def model_info(self, repo_id: str, files_metadata: bool = False) -> Info:
        files, gated, _ = self._get(repo_id, "model")
        return Info([Sibling(n, s) for n, s in files.items()], gated)

    def dataset_info(self, repo_id: str, files_metadata: bool = False) -> Info:
        files, gated, _ = self._get(repo_id, "dataset")
        return Info([Sibling(n, s) for n, s in files.items()], gated)

    def auth_check(self, repo_id: str, repo_type: str | None = None) -> None:
        _, gated, readable = self._get(repo_id, repo_type or "model")
        if gated and not readable:
            _raise(403, "GatedRepo", f"https://huggingface.co/api/{repo_type or 'model'}s/{repo_id}/auth-check")


def fake_download(configs: dict[str, dict[str, Any]], tmp: Path):
    """`hf_hub_download`-shaped: writes the repo's config.json to a temp file and returns its path."""

    def download(repo_id: str, filename: str, cache_dir: Any = None) -> str:
        path = tmp / repo_id.replace("/", "--") / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(configs[repo_id]))
        return str(path)

    return download
