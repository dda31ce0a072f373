"""The real phases the runner schedules: the speed phase from console.bench, evals from console.evals."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from console.evals.base import EvalAdapter
from console.experiment.cells import Cell
from console.experiment.schema import Benchmark
from console.run.runner import RunContext
from console.serve.server import Server


class RealPhases:
    """Speed = the non-streaming load generator with /metrics acceptance (console.bench); accuracy = the
    framework adapters (console.evals)."""

    def __init__(self, models_dir: Path | None = None, base_dir: Path | None = None, offline: bool = False,
                 experiment: str = "EXPERIMENT") -> None:
        self.models_dir = models_dir
        self.base_dir = base_dir
        """The experiment's folder: relative dataset and task paths of benchmarks resolve against it."""
        self.offline = offline
        """Eval frameworks run with HF_HUB_OFFLINE / HF_DATASETS_OFFLINE (console.prepare.offline_decision)."""
        self.experiment = experiment
        self._bench: Any = None

    def _bench_runner(self, rc: RunContext) -> Any:
        from console.bench.orchestrate import BenchOptions, BenchRunner

        if self._bench is None:
            # The runner owns the servers; the bench runner only measures on the server it is handed. Its events
            # go through the runner's emit, whose sink records them (the speed result is its SpeedMeasured).
            self._bench = BenchRunner(rc.exp, rc.run_dir, pool=None,  # type: ignore[arg-type]
                                      options=BenchOptions(phases=("speed",)), emit=rc.emit, record=False)
        return self._bench

    def speed(self, rc: RunContext, cell: Cell, server: Server) -> None:
        """Run the bench's speed phase on the cell's server; its SpeedMeasured (through `rc.emit`) is the
        result the store keeps."""
        from console.bench.acceptance import LiveLog, server_lock

        bench = self._bench_runner(rc)

        async def go() -> None:
            async with server_lock(server.base_url):
                async with bench.client(server, cell, cell.concurrency) as client:
                    async with LiveLog(server.log_path, bench.emit, bench.run_id, cell.id):
                        await bench.speed(client, server, cell)

        asyncio.run(go())

    def adapter(self, bench: Benchmark) -> EvalAdapter:
        from console.evals import adapter_for

        return adapter_for(bench, self.base_dir, offline=self.offline,  # type: ignore[no-any-return]
                           experiment=self.experiment)

    def full_items(self, bench: Benchmark) -> int:
        from console.evals import full_items

        return int(full_items(bench, self.base_dir))
