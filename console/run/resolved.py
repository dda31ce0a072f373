"""Freeze what a run ran: the experiment file as given, and every cell with its exact serving settings."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from console.experiment.loader import LoadedExperiment, load_experiment
from console.redact import looks_secret, redact_env
from console.run.folder import EXPERIMENT_COPY as COPY
from console.run.folder import RESOLVED
from console.serve.argv import serving_args, serving_env


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # a JSON string is a valid TOML basic string
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def resolved_toml(exp: LoadedExperiment, models_dir: Path | None = None) -> str:
    """One [[cell]] table per cell: identity, roofline inputs and the vLLM arguments it is served with."""
    lines = [
        "# Written by specdeck: every cell of this run with the exact serving settings it ran under.",
        f"experiment = {_toml_value(exp.spec.experiment.name)}",
        f"source = {_toml_value(str(exp.path))}",
        "",
    ]
    for c in exp.cells:
        row: dict[str, Any] = {
            "id": c.id, "model": c.model.id, "model_path": c.model.path, "precision": c.model.precision,
            "total_params_b": c.model.total_params_b, "active_params_b": c.model.active_b,
            "bytes_per_param": c.model.bytes_per_param, "toy": c.model.toy,
            "technique": c.technique.id, "method": c.technique.method, "k": c.technique.k or 0,
            "context": c.context.label, "context_tokens": c.context.tokens, "concurrency": c.concurrency,
            "serving_key": c.serving_key,
            "vllm_args": serving_args(c, exp.base_dir, models_dir),
            "env": redact_env(serving_env(c)),  # an HF_TOKEN reaches the server, not this file
        }
        if c.sweep:
            row["sweep"] = c.sweep  # the k sweep this cell is one point of (results draw it as a curve)
        if c.serving.vllm_ref:
            row["vllm_ref"] = c.serving.vllm_ref
        lines.append("[[cell]]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in row.items()]
        lines.append("")
    for rule in exp.spec.guide:  # the workload guide's rules, read by `specdeck report`
        lines.append("[[guide]]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in rule.model_dump(exclude_none=True).items()]
        lines.append("")
    return "\n".join(lines)


def freeze(exp: LoadedExperiment, run_dir: Path, models_dir: Path | None = None) -> None:
    """Copy the experiment into the run (once) and write the resolved cell list."""
    copy = run_dir / COPY
    if not copy.exists():
        tmp = copy.with_suffix(".tmp")
        shutil.copyfile(exp.path, tmp)
        if any(looks_secret(name) for c in exp.cells for name in (c.serving.env or {})):
            os.chmod(tmp, 0o600)  # resume serves from this copy, so its secret env values stay: owner only
        os.replace(tmp, copy)  # atomic: a kill never leaves half a copy that resume would trust
    tmp = run_dir / (RESOLVED + ".tmp")
    tmp.write_text(resolved_toml(exp, models_dir), encoding="utf-8")
    os.replace(tmp, run_dir / RESOLVED)


def load_frozen(run_dir: Path, origin_dir: Path | None) -> LoadedExperiment:
    """The experiment exactly as the run started it (edits to the original file do not leak into a resume)."""
    return load_experiment(run_dir / COPY, origin_dir=origin_dir)


def device_name(exp: LoadedExperiment) -> str:
    """The accelerator as the machine reports it (nvidia-smi), else `cpu`."""
    import shutil
    import subprocess

    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=10).stdout.strip().splitlines()
            if out:
                return out[0].strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return "cpu"
