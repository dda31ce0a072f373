"""Where runs live on disk (see docs/design.md "A run on disk")."""

from __future__ import annotations

import os
import time
from pathlib import Path


def runs_root() -> Path:
    """`$SPECDECK_RUNS_DIR`, else ./runs."""
    return Path(os.environ.get("SPECDECK_RUNS_DIR", "runs"))


def new_run_id(experiment_name: str, kind: str = "run") -> str:
    """Sortable and readable: 20261123-031502-demo-serve."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    return f"{stamp}-{experiment_name}" + ("" if kind == "run" else f"-{kind}")


def new_run_dir(experiment_name: str, kind: str = "run", root: Path | None = None) -> Path:
    base = root or runs_root()
    run_id = new_run_id(experiment_name, kind)
    path = base / run_id
    n = 1
    while path.exists():
        n += 1
        path = base / f"{run_id}-{n}"
    path.mkdir(parents=True)
    return path
