"""Where each cell ran: the node and GPUs (or slots) its group's worker had, for `status`, the results table and
the console. A worker records it as the cell's result document `placement` (a `ResultRecorded` event its sink
and the head's apply, console.cluster.worker); a single-box run has none, and readers show nothing extra."""

from __future__ import annotations

from typing import Any, Protocol


class DocumentReader(Protocol):
    def documents(self, cell_id: str) -> dict[str, dict[str, Any]]: ...


def placement(store: DocumentReader, cell_id: str) -> dict[str, Any] | None:
    from console.cluster.worker import PLACEMENT_DOC

    value = store.documents(cell_id).get(PLACEMENT_DOC, {}).get("where")
    return value if isinstance(value, dict) else None


def node_label(where: dict[str, Any] | None) -> str:
    """"host (10.0.0.5) GPU 0,1" / "host (10.0.0.5) gpu_slot 1"; "" for a single-box run."""
    if not where:
        return ""
    ip = f" ({where['node_ip']})" if where.get("node_ip") else ""
    gpus = where.get("gpu_ids") or []
    if gpus:
        held = f" GPU {','.join(map(str, gpus))}"
    else:
        held = "".join(f" {k} {v:g}" for k, v in sorted((where.get("resources") or {}).items())
                       if not k.startswith(("memory", "object_store", "node:", "accelerator_type")))
    return f"{where.get('host', '?')}{ip}{held}"


def cell_columns(store: DocumentReader, cell_id: str) -> dict[str, Any]:
    """The master table's per-cell provenance a cluster run adds: `node`, and the device the node reported
    (which overrides the run's `device_name`, measured on the head). Empty for a single-box run."""
    where = placement(store, cell_id)
    if not where:
        return {}
    out: dict[str, Any] = {"node": node_label(where)}
    if where.get("device"):
        out["device_name"] = where["device"]
    return out
