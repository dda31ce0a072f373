"""Lazy imports of the heavy model-building dependencies, with an error that names the fix."""

from __future__ import annotations

import importlib
from types import ModuleType

from console.errors import SpecdeckError

INSTALL_HINT = "pip install 'specdeck[cpu]'"


class ModelDependencyError(SpecdeckError, RuntimeError):
    """torch / transformers / tokenizers / safetensors is missing; the fix says how to install it."""

    exit_code = 1


def require(module: str) -> ModuleType:
    """Import ``module`` or raise ``ModelDependencyError`` naming the package and the install command."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ModelDependencyError(
            f"building the tiny models needs `{module}` ({exc})", f"install it with: {INSTALL_HINT}"
        ) from exc
