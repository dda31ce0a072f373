"""The one door to the Hugging Face Hub: cache lookups, remote metadata and downloads.

Everything specdeck asks the hub goes through `Hub`, so the rest of the code never imports huggingface_hub and
the unit tests swap the remote side for a fake (`Hub(api=Fake(), download=fake)`) while the cache side reads a
real folder laid out as huggingface_hub lays it out::

    <cache>/models--org--name/refs/main                 the commit the `main` branch pointed to
    <cache>/models--org--name/snapshots/<commit>/…      the files (symlinks into blobs/)
    <cache>/datasets--org--name/…                       the same for dataset repos

Names quoted from the installed huggingface_hub 2.4.0: `try_to_load_from_cache` (file_download.py: resolves
refs/<revision>, returns a path, None, or `_CACHED_NO_EXIST`), `HfApi.model_info(files_metadata=True)` /
`dataset_info` (sizes per file in `siblings[i].size`, `gated` = "auto" | "manual" | False), `HfApi.auth_check`
(raises `GatedRepoError` when the token may not read a gated repo, `RepositoryNotFoundError` for an unknown or
private one; errors.py: GatedRepoError subclasses RepositoryNotFoundError), `hf_hub_download`,
`snapshot_download(allow_patterns=…, tqdm_class=…)`, and `OfflineModeIsEnabled` when HF_HUB_OFFLINE=1.
Datasets loaded by lm-eval are found offline in the *datasets* cache, `<HF_DATASETS_CACHE>/<org>___<name>/
<config>/<version>/<hash>/` (datasets 5.2.0 packaged_modules/cache/cache.py `_find_hash_in_cache`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODEL_PATTERNS = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.py", "tokenizer*"]
"""What a server needs from a model repo (vLLM loads safetensors; .bin/.pth/GGUF copies are left out)."""
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def is_hub_id(path: str) -> bool:
    """`org/name` that is not an existing local path."""
    return bool(HUB_ID.match(path)) and not Path(path).expanduser().exists()


def hub_cache_dir() -> Path:
    """HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub (read now, not at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def datasets_cache_dir() -> Path:
    """HF_DATASETS_CACHE, else HF_HOME/datasets (as datasets 5.2.0 config.py computes it)."""
    if os.environ.get("HF_DATASETS_CACHE"):
        return Path(os.environ["HF_DATASETS_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(home).expanduser() / "datasets"


def offline_env() -> bool:
    """Whether HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is set true in this process's environment."""
    values = (os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or "").upper()
    return values in ("1", "ON", "YES", "TRUE")


@dataclass(frozen=True)
class RemoteRepo:
    """What the hub says about a repo: whether this machine may read it, and how big the files are."""

    repo_id: str
    status: str
    """ok | gated | not_found | unreachable"""
    gated: str | bool = False
    size_bytes: int | None = None
    """Sum of the files a download would fetch (MODEL_PATTERNS for models, everything for datasets)."""
    detail: str = ""
    config: dict[str, Any] | None = None
    """config.json, read remotely (models only, when readable)."""

    @property
    def fix(self) -> str:
        kind = "datasets/" if self.detail.startswith("dataset") else ""
        if self.status == "gated":
            return (f"request access at https://huggingface.co/{kind}{self.repo_id}, then `hf auth login` "
                    "(or set HF_TOKEN) on this machine")
        if self.status == "not_found":
            return (f"no repo {self.repo_id!r} on the hub (or it is private): check the spelling, or log in "
                    "with `hf auth login` if it is private")
        if self.status == "unreachable":
            return "the hub cannot be reached from here: run `specdeck prepare` where it can, or copy the cache"
        return ""


@dataclass(frozen=True)
class CachedRepo:
    """A repo's snapshot in the local hub cache and whether the files a server needs are all in it."""

    repo_id: str
    snapshot: Path | None
    complete: bool
    missing: tuple[str, ...] = ()
    size_bytes: int = 0


@dataclass
class Hub:
    """The hub as specdeck uses it. `api` is an `HfApi` (or a fake with the same methods); `download` is
    `huggingface_hub.hf_hub_download`-shaped; `snapshot` is `snapshot_download`-shaped."""

    cache_dir: Path | None = None
    api: Any = None
    download: Callable[..., str] | None = None
    snapshot: Callable[..., str] | None = None

    def __post_init__(self) -> None:
        self.cache_dir = Path(self.cache_dir) if self.cache_dir else hub_cache_dir()
        if self.api is None:
            from huggingface_hub import HfApi

            self.api = HfApi()
        if self.download is None:
            from huggingface_hub import hf_hub_download

            self.download = hf_hub_download
        if self.snapshot is None:
            from huggingface_hub import snapshot_download

            self.snapshot = snapshot_download

    # --- the local cache --------------------------------------------------------------------------------
    def cached_file(self, repo_id: str, filename: str, repo_type: str = "model") -> Path | None:
        from huggingface_hub import try_to_load_from_cache

        hit = try_to_load_from_cache(repo_id, filename, cache_dir=self.cache_dir, repo_type=repo_type)
        return Path(hit) if isinstance(hit, str) else None

    def cached_model(self, repo_id: str) -> CachedRepo:
        """The `main` snapshot of a model and whether config.json and every weight file are in it (the
        shards the safetensors index names, else model.safetensors)."""
        config = self.cached_file(repo_id, "config.json")
        if config is None:
            return CachedRepo(repo_id, None, False, ("config.json",))
        snap = config.parent
        missing, size = weight_files_missing(snap)
        return CachedRepo(repo_id, snap, not missing, tuple(missing), size)

    def cached_dataset(self, path: str, name: str | None = None) -> Path | None:
        """The prepared copy the datasets library reads offline, or the raw repo in the hub cache."""
        from datasets.naming import camelcase_to_snakecase

        parts = path.split("/")
        parts[-1] = camelcase_to_snakecase(parts[-1])
        root = datasets_cache_dir() / "___".join(parts)
        for hit in sorted(root.glob(f"{name or '*'}/*/*")):
            if hit.is_dir():
                return hit
        return None

    # --- the remote side --------------------------------------------------------------------------------
    def remote(self, repo_id: str, repo_type: str = "model") -> RemoteRepo:
        """Ask the hub: exists? readable with this machine's token? how big? (models: also config.json)."""
        from huggingface_hub.errors import (
            GatedRepoError,
            HfHubHTTPError,
            OfflineModeIsEnabled,
            RepositoryNotFoundError,
        )

        label = f"{repo_type} {repo_id}"
        try:
            info = (self.api.model_info(repo_id, files_metadata=True) if repo_type == "model"
                    else self.api.dataset_info(repo_id, files_metadata=True))
        except GatedRepoError as exc:
            return RemoteRepo(repo_id, "gated", "manual", detail=f"{label}: {first_line(exc)}")
        except RepositoryNotFoundError as exc:
            return RemoteRepo(repo_id, "not_found", detail=f"{label}: {first_line(exc)}")
        except (OfflineModeIsEnabled, HfHubHTTPError, OSError) as exc:
            return RemoteRepo(repo_id, "unreachable", detail=f"{label}: {type(exc).__name__}: {first_line(exc)}")
        except Exception as exc:  # noqa: BLE001 - httpx connection errors and the like
            return RemoteRepo(repo_id, "unreachable", detail=f"{label}: {type(exc).__name__}: {first_line(exc)}")
        gated = getattr(info, "gated", False) or False
        size = sum(s.size or 0 for s in (info.siblings or [])
                   if repo_type != "model" or matches_any(s.rfilename, MODEL_PATTERNS))
        try:
            self.api.auth_check(repo_id, repo_type=repo_type)
        except GatedRepoError as exc:
            return RemoteRepo(repo_id, "gated", gated or "manual", size, f"{label}: {first_line(exc)}")
        except RepositoryNotFoundError as exc:
            return RemoteRepo(repo_id, "not_found", gated, size, f"{label}: {first_line(exc)}")
        except Exception as exc:  # noqa: BLE001
            return RemoteRepo(repo_id, "unreachable", gated, size, f"{label}: {type(exc).__name__}: {first_line(exc)}")
        config = None
        if repo_type == "model":
            try:
                assert self.download is not None
                config = json.loads(Path(self.download(repo_id, "config.json", cache_dir=self.cache_dir)).read_text())
            except Exception:  # noqa: BLE001 - a repo without config.json is reported by the caller
                config = None
        return RemoteRepo(repo_id, "ok", gated, size, label, config)

    def fetch(self, repo_id: str, repo_type: str = "model", tqdm_class: Any = None) -> Path:
        """Download a repo into the cache (models: MODEL_PATTERNS only) and return its snapshot folder."""
        assert self.snapshot is not None
        kwargs: dict[str, Any] = {"repo_type": repo_type, "cache_dir": self.cache_dir}
        if repo_type == "model":
            kwargs["allow_patterns"] = MODEL_PATTERNS
        if tqdm_class is not None:
            kwargs["tqdm_class"] = tqdm_class
        return Path(self.snapshot(repo_id, **kwargs))


def first_line(exc: BaseException) -> str:
    """The error's message on one line (huggingface_hub puts the status first and the reason after)."""
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return (text[:240] + "…" if len(text) > 240 else text) or type(exc).__name__


def matches_any(name: str, patterns: list[str]) -> bool:
    import fnmatch

    return any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(Path(name).name, p) for p in patterns)


def weight_files_missing(folder: Path) -> tuple[list[str], int]:
    """(missing weight files, bytes present) for a model folder: the shards named by
    model.safetensors.index.json, else model.safetensors, else any *.safetensors / *.bin."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text()).get("weight_map", {}).values()))
        except (OSError, ValueError):
            return ["model.safetensors.index.json (unreadable)"], 0
        missing = [s for s in shards if not (folder / s).is_file()]
        size = sum((folder / s).stat().st_size for s in shards if (folder / s).is_file())
        return missing, size
    weights = [p for p in folder.glob("*.safetensors") if p.is_file()] or [p for p in folder.glob("*.bin") if p.is_file()]
    if not weights:
        return ["model.safetensors (no weights)"], 0
    return [], sum(p.stat().st_size for p in weights)
