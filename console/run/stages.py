"""The eval part of `Runner` (a mixin, as `ApprovalFlow` is): a cell's smoke and full runs, each stage's
benchmarks side by side against the cell's server (`console.run.side_by_side`), every item committed through the
run's one sink as it finishes."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from console.evals.base import EvalItem, EvalResult, EvalTarget
from console.evals.smoke import estimate_full_run, judge_smoke
from console.events import EvalFinished, EvalItemDone, PhaseProgress, SmokeVerdictEvent
from console.experiment.cells import Cell
from console.experiment.schema import Benchmark
from console.run.side_by_side import side_by_side
from console.run.states import CellState
from console.serve.server import Server

S = CellState

if TYPE_CHECKING:
    from console.experiment.loader import LoadedExperiment
    from console.run.runner import Phases, RunContext, RunOptions
    from console.run.store import Store


class EvalStages:
    """Smoke and full runs of a cell's benchmarks (mixed into `Runner`)."""

    if TYPE_CHECKING:
        store: Store
        exp: LoadedExperiment
        opt: RunOptions
        rc: RunContext
        phases: Phases

        def emit(self, event: Any) -> None: ...
        def move(self, cell: Cell | str, new: CellState, reason: str | None = None) -> None: ...
        def busy(self, cell: Cell, phase: str) -> AbstractContextManager[None]: ...
        def request_approval(self, cell: Cell) -> None: ...
        def benches(self, cell: Cell) -> list[Benchmark]: ...

    def _target(self, cell: Cell, server: Server) -> EvalTarget:
        from console.serve.argv import resolve_model_path

        tok = resolve_model_path(cell.model.path, self.exp.base_dir, self.opt.models_dir)
        return EvalTarget(server.base_url, server.api_key, cell.model.name, tok)

    def run_stage(self, cell: Cell, server: Server, bench: Benchmark, stage: str, limit: int | None) -> EvalResult:
        done = self.store.done_items(cell.id, bench.id, stage)
        total = (limit or self.phases.full_items(bench)) * bench.epochs  # every epoch is an item

        def on_item(item: EvalItem) -> None:
            if item.item_id in self.store.done_items(cell.id, bench.id, stage):
                return  # committed already: a resumed run never scores an item twice
            self.emit(EvalItemDone(cell_id=cell.id, bench_id=bench.id, stage=stage, item_id=item.item_id,
                                   correct=item.correct, extracted=item.extracted, raw_output=item.raw_output,
                                   target=item.target, finish_reason=item.finish_reason,
                                   output_tokens=item.output_tokens))
            n = len(self.store.done_items(cell.id, bench.id, stage))
            self.emit(PhaseProgress(cell_id=cell.id, phase=f"{stage}:{bench.id}", done=n, total=total))

        # Announce the stage's size before its first item: the benchmarks of a stage run side by side and the
        # console sums their counts, so one that reports only at its end (inspect) must count from the start.
        self.emit(PhaseProgress(cell_id=cell.id, phase=f"{stage}:{bench.id}", done=len(done), total=total))
        out = self.rc.cell_dir(cell) / "evals" / bench.id / stage
        out.mkdir(parents=True, exist_ok=True)
        generation = bench.generation or self.exp.spec.generation
        t0 = time.monotonic()
        with self.busy(cell, f"{stage}:{bench.id}"):
            self.phases.adapter(bench).run(bench, self._target(cell, server), stage=stage, limit=limit,
                                            generation=generation, out_dir=out, skip_ids=done, on_item=on_item)
        # Score from the store: items committed by this and any earlier (killed) attempt, once each.
        items = [EvalItem(**{k: v for k, v in d.items() if k in EvalItem.__dataclass_fields__})
                 for d in self.store.items(cell.id, bench.id, stage)]
        result = EvalResult.from_items(bench.id, bench.framework, stage, items)
        # Wall time of this attempt (framework start-up included): set next to the estimate in `status`.
        self.emit(EvalFinished(cell_id=cell.id, bench_id=bench.id, stage=stage, result=result.to_dict(),
                               wall_s=time.monotonic() - t0, resumed_with=len(done)))
        return result

    def run_stages(self, cell: Cell, server: Server, benches: list[Benchmark],
                   stage: str) -> list[tuple[Benchmark, EvalResult | Exception]]:
        """This stage of every benchmark at once against the cell's server (console.run.side_by_side says why);
        each benchmark's result or the exception that failed it, in the experiment's order."""
        from console.evals.lmeval import stop_harnesses

        def job(bench: Benchmark) -> Callable[[], EvalResult]:
            limit = bench.smoke_items if stage == "smoke" else bench.full_items
            return lambda: self.run_stage(cell, server, bench, stage, limit)

        outcomes = side_by_side([job(b) for b in benches], on_abort=stop_harnesses, names=[b.id for b in benches])
        return list(zip(benches, outcomes, strict=True))

    def run_smoke(self, cell: Cell, server: Server, benches: list[Benchmark]) -> None:
        self.move(cell, S.SMOKE)
        tok_s = self._tok_s(cell)
        failed: list[str] = []
        crashed: list[str] = []
        for bench, outcome in self.run_stages(cell, server, benches, "smoke"):
            if isinstance(outcome, Exception):
                crashed.append(f"smoke of {bench.id} failed: {type(outcome).__name__}: {outcome}")
                continue
            verdict = judge_smoke(bench, outcome, estimate_full_run(bench, self.phases.full_items(bench), tok_s))
            self.emit(SmokeVerdictEvent(cell_id=cell.id, bench_id=bench.id, passed=verdict.passed,
                                        reasons=verdict.reasons, score=verdict.score,
                                        estimate=verdict.estimate.to_dict() if verdict.estimate else {},
                                        threshold=verdict.threshold, n=verdict.n, notes=verdict.notes))
            if not verdict.passed:
                failed.append(f"{bench.id}: {verdict.reasons[0]}")
        if crashed:
            self.move(cell, S.FAILED, "; ".join(crashed))
            return
        if failed:
            self.move(cell, S.SMOKE_FAILED, "; ".join(failed))
            return
        self.move(cell, S.SMOKE_PASSED)
        if self.opt.until == "full":
            self.request_approval(cell)

    def _tok_s(self, cell: Cell) -> float | None:
        m = self.store.measurements(cell.id, "speed")
        if not m:
            return None
        return float(m[-1][3].get("tok_s") or 0.0) or None

    def run_full(self, cell: Cell, server: Server, benches: list[str]) -> bool:
        """The full runs of these approved benchmarks, side by side; False when one failed (the cell is failed;
        what the others scored stays committed)."""
        self.move(cell, S.FULL)
        chosen = [b for b in self.benches(cell) if b.id in benches]
        crashed = [f"full run of {bench.id} failed: {type(outcome).__name__}: {outcome}"
                   for bench, outcome in self.run_stages(cell, server, chosen, "full") if isinstance(outcome, Exception)]
        if crashed:
            self.move(cell, S.FAILED, "; ".join(crashed))
            return False
        return True
