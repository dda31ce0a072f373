"""A worker's files for the head's run folder: each cell's folder (speed.json, eval outputs, the server.log link)
and the server logs, packed as one tar when the group's task ends, so the head's run folder has the layout of a
single-box run. Capped (`LIMIT`): what does not fit stays on the worker's node, named in the record."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

FILES = "files"
"""The `kind` of a shipped files record."""
LIMIT = 32 * 2**20
"""Bytes per record: it travels through the head's inbox actor (Ray's object store)."""


def pack(scratch: Path, cell_ids: Iterable[str], limit: int = LIMIT) -> dict[str, Any]:
    paths = [p for c in cell_ids for p in [scratch / "cells" / c, *sorted((scratch / "cells" / c).rglob("*"))]
             if p.exists() or p.is_symlink()]
    paths += sorted((scratch / "servers").glob("*.log"))
    buf, size, left = io.BytesIO(), 0, []
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path in paths:
            n = 0 if path.is_symlink() or path.is_dir() else path.stat().st_size
            if size + n > limit:
                left.append(str(path))
                continue
            size += n
            tar.add(path, arcname=str(path.relative_to(scratch)), recursive=False)
    return {"kind": FILES, "tar": buf.getvalue(), "left_on_worker": left}


def unpack(run_dir: Path, record: dict[str, Any]) -> None:
    """Into the run folder; tarfile's "data" filter refuses absolute paths, `..` and links leaving the folder."""
    with tarfile.open(fileobj=io.BytesIO(record["tar"]), mode="r:gz") as tar:
        tar.extractall(run_dir, filter="data")
