"""Servers for cells: one per serving config, reused by every cell that shares it, one live at a time
(one GPU). Logs go to `runs/<run>/servers/<key>.log`, linked as `cells/<cell>/server.log`."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from console.events import Event, ServerFailed, ServerReady, ServerStarting, ServerStopped
from console.experiment.cells import Cell
from console.serve.argv import build_launch
from console.serve.server import (
    Server,
    ServerStartError,
    attach_server,
    free_port,
    group_members,
    start_server,
    stop_group,
)


class ServerRegistry(Protocol):
    """Where a pool records the servers it started (the run store), so that a runner which dies with
    kill -9 leaves no orphan: the next runner adopts a healthy one or stops its whole group."""

    def record_server(self, key: str, pgid: int, base_url: str, api_key: str | None, log_path: str | None) -> None: ...
    def forget_server(self, key: str) -> None: ...
    def recorded_servers(self) -> list[dict[str, Any]]: ...


class ServerPool:
    """Hands out a healthy server for a cell, starting (or attaching) only when needed."""

    def __init__(
        self,
        run_dir: Path,
        *,
        run_id: str = "",
        api_key: str | None = None,
        base_dir: Path | None = None,
        models_dir: Path | None = None,
        on_event: Callable[[Event], None] | None = None,
        max_live: int = 1,
        extra_env: dict[str, str] | None = None,
        registry: ServerRegistry | None = None,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.run_id = run_id
        self.api_key = api_key
        self.base_dir = base_dir
        self.models_dir = models_dir
        self.on_event = on_event or (lambda e: None)
        self.max_live = max_live
        self.extra_env = extra_env or {}
        self.registry = registry
        self.live: dict[str, Server] = {}

    def log_path(self, cell: Cell) -> Path:
        return self.run_dir / "servers" / f"{cell.model.id}.{cell.technique.id}.{cell.serving_key}.log"

    def _link_cell_log(self, cell: Cell, target: Path) -> Path:
        link = self.run_dir / "cells" / cell.id / "server.log"
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(os.path.relpath(target, link.parent))
        return link

    def acquire(self, cell: Cell) -> Server:
        """A healthy server for `cell`. Raises `ServerStartError` (also sent as a ServerFailed event)."""
        key = cell.serving_key
        server = self.live.get(key)
        if server is not None and server.alive():
            if cell.model.attach is None:
                self._link_cell_log(cell, self.log_path(cell))
            return server
        if server is not None:
            self.release(key)
        while len(self.live) >= self.max_live:
            self.release(next(iter(self.live)))
        try:
            if cell.model.attach is not None:
                a = cell.model.attach
                server = attach_server(a.base_url, a.api_key, a.log_path)
                self.on_event(ServerReady(run_id=self.run_id, cell_id=cell.id, serving_key=key,
                                          url=server.base_url, attached=True))
            else:
                log = self.log_path(cell)
                plan = build_launch(cell, port=free_port(), api_key=self.api_key,
                                    base_dir=self.base_dir, models_dir=self.models_dir)
                self._link_cell_log(cell, log)
                self.on_event(ServerStarting(run_id=self.run_id, cell_id=cell.id, serving_key=key,
                                             command=plan.command_line(), log_path=str(log)))
                server = start_server(plan, log, timeout_s=cell.serving.startup_timeout_s or 600,
                                      extra_env=self.extra_env, on_spawn=lambda s: self._record(key, s))
                self.on_event(ServerReady(run_id=self.run_id, cell_id=cell.id, serving_key=key,
                                          url=server.base_url, startup_s=server.startup_s))
        except ServerStartError as exc:
            if self.registry is not None:
                self.registry.forget_server(key)  # start_server stopped the group on its way out
            self.on_event(ServerFailed(run_id=self.run_id, cell_id=cell.id, serving_key=key,
                                       reason=exc.reason, message=exc.message, fix=exc.fix,
                                       evidence=exc.evidence))
            raise
        self.live[key] = server
        self._record(key, server)
        return server

    def _record(self, key: str, server: Server) -> None:
        if self.registry is not None and server.pgid is not None:
            self.registry.record_server(key, server.pgid, server.base_url, server.api_key,
                                        str(server.log_path) if server.log_path else None)

    def adopt_or_reap(self) -> list[str]:
        """After a crash: adopt recorded servers that are still healthy (up to max_live), stop the rest.
        Returns what was done, one line each."""
        if self.registry is None:
            return []
        done = []
        for rec in self.registry.recorded_servers():
            key, pgid = rec["serving_key"], int(rec["pgid"])
            log = Path(rec["log_path"]) if rec["log_path"] else None
            # the key: this pool's (the run's key file); a store from before keys left it kept it in the row
            server = Server(rec["base_url"], rec["api_key"] or self.api_key, log, pgid=pgid)
            if group_members(pgid) and server.healthy() and len(self.live) < self.max_live:
                self.live[key] = server
                done.append(f"adopted the server left running by a previous runner (pgid {pgid})")
                continue
            if group_members(pgid):
                report = stop_group(pgid, grace_s=30)
                self.on_event(ServerStopped(run_id=self.run_id, serving_key=key, signal_used=report.signal_used,
                                            seconds=report.seconds, survivors=tuple(report.survivors)))
                done.append(f"stopped an orphaned server (pgid {pgid})")
            self.registry.forget_server(key)
        return done

    def release(self, key: str) -> None:
        server = self.live.pop(key, None)
        if server is None or server.attached:
            return
        report = server.stop()
        if self.registry is not None:
            self.registry.forget_server(key)
        self.on_event(ServerStopped(run_id=self.run_id, serving_key=key, signal_used=report.signal_used,
                                    seconds=report.seconds, survivors=tuple(report.survivors)))

    def close(self) -> None:
        for key in list(self.live):
            self.release(key)

    def __enter__(self) -> ServerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
