"""Lazy imports of the heavy model-building dependencies, with an error that names the fix."""

from __future__ import annotations

import importlib
from types import ModuleType

INSTALL_HINT = "pip install 'specdeck[cpu]'"


class ModelDependencyError(RuntimeError):
    """torch / transformers / tokenizers / safetensors is missing; the message says how to install it."""


def require(module: str) -> ModuleType:
    """Import ``module`` or raise ``ModelDependencyError`` naming the package and the install command."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ModelDependencyError(
            f"building the tiny models needs `{module}` ({exc}); install it with: {INSTALL_HINT}"
        ) from exc
