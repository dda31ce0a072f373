"""`[cluster]`: how `specdeck run EXP --ray` spreads an experiment over a Ray cluster (docs/cluster.md)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from console.experiment.fields import Strict

RAY_ADDRESS = re.compile(r"^(auto|local|(ray://)?[A-Za-z0-9._-]+:\d{1,5})$")
"""What `ray.init(address=...)` takes that a sweep uses: "auto", "local", HOST:PORT, ray://HOST:PORT."""


class Cluster(Strict):
    """`[cluster]`: how `specdeck run EXP --ray` spreads the serving-config groups over a Ray cluster
    (docs/cluster.md). Without `--ray` this table is not used."""

    address: str = "auto"
    """The Ray cluster a bare `--ray` joins: "auto" (the one `ray start` runs on this machine, or RAY_ADDRESS),
    HOST:6379, ray://HOST:10001, or "local" (a Ray of this machine alone with `local_slots` slots). Not set:
    "auto" when this machine belongs to a Ray cluster, else "local" (`ray_backend.default_address`)."""
    local_slots: int = Field(2, gt=0, le=64)
    """GPU slots of a "local" Ray: a CPU-only machine counts groups in the custom resource `gpu_slot`."""
    max_retries: int = Field(3, ge=0, le=20)
    """Re-submissions of a group whose worker or node died (committed items are never redone)."""
    placement: Literal["longest_first"] = "longest_first"
    """Groups go to Ray longest first (estimated GPU-hours, baselines first among equals); Ray's scheduler
    picks the node by the GPUs (or slots) and accelerator type each group asks for."""
    work_dir: str | None = None
    """Where a worker keeps its scratch folder (replica store, server log, eval outputs) on its node; default:
    the node's temporary directory."""
    path_map: dict[str, str] = Field(default_factory=dict)
    """Head path prefix → the same place on the workers, for --models-dir and the experiment's folder, e.g.
    { "/home/me/models" = "/mnt/models" }."""

    @field_validator("address")
    @classmethod
    def _address(cls, v: str) -> str:
        if not RAY_ADDRESS.match(v):
            raise ValueError(f"must be auto, local, HOST:PORT or ray://HOST:PORT (got {v!r})")
        return v

    @field_validator("path_map")
    @classmethod
    def _absolute(cls, v: dict[str, str]) -> dict[str, str]:
        bad = [f"{k} = {p}" for k, p in v.items() if not (k.startswith("/") and p.startswith("/"))]
        if bad:
            raise ValueError(f"maps absolute paths to absolute paths (got {', '.join(bad)})")
        return v
