"""Accuracy evals: one adapter protocol (``base``) for lm-eval, inspect-ai and the built-in MCQ runner,
answer extraction (``extract``), the project's offline MCQ data (``data``) and the smoke gate (``smoke``).

``adapter_for(bench)`` and ``full_items(bench)`` live in ``console.evals.registry``; they are re-exported here
lazily so that importing ``console.evals.base`` stays cheap.
"""

from __future__ import annotations

from typing import Any

__all__ = ["adapter_for", "full_items"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from console.evals import registry

        return getattr(registry, name)
    raise AttributeError(name)
