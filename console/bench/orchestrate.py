"""The bench phase runner: cells grouped by server, phases in order; results travel as events to the run's store.

Cells that share a serving config share one server start. For each model, AR servers run first so that
the determinism phase has AR's token ids when the technique servers come up (one live server at a time);
if the selection has no AR cell for a model, its AR server is brought up for the determinism phase only.
Every phase of a server holds that server's lock, so acceptance deltas see no traffic but their own.
"""

from __future__ import annotations

import asyncio
import fnmatch
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from console.bench.acceptance import AcceptanceProbe, LiveLog, server_lock
from console.bench.categories import CategorySet, load_categories
from console.bench.client import Api, BenchClient
from console.bench.determinism import (
    DeterminismResult,
    Generation,
    compare,
    determinism_event,
    generate,
    progress_emitter,
)
from console.bench.latency import measure_latency
from console.bench.niah import run_niah
from console.bench.prompts import CorpusTokens, PromptLengthError
from console.bench.speed import SpeedConfig, measure_categories, measure_speed
from console.events import Event, PhaseFailed, ResultRecorded
from console.experiment.cells import Cell
from console.experiment.loader import LoadedExperiment
from console.serve.pool import ServerPool
from console.serve.server import Server, ServerStartError

PHASES = ("speed", "categories", "latency", "determinism", "niah")
DEFAULT_PHASES = ("speed", "categories", "determinism", "niah")


@dataclass(frozen=True)
class BenchOptions:
    """What `specdeck bench` runs; workload numbers default to the experiment's [workload]."""

    phases: tuple[str, ...] = DEFAULT_PHASES
    cells: str | None = None
    """Glob over cell ids, or several separated by commas; None = every cell."""
    api: Api = "completions"
    repeats: int | None = None
    requests_per_repeat: int | None = None
    warmup_requests: int | None = None
    max_tokens: int | None = None
    """Output tokens per request (ignore_eos); None = workload.output_tokens."""
    categories: str | None = None
    """None/"bundled": the project's set; else a SPEED-Bench qualitative .jsonl (or its folder)."""
    category_prompts: int | None = 4
    """Prompts per category (first k in file order); None = all."""
    category_all_concurrency: bool = False
    """Categories at every concurrency (default: c=1 cells only, first context only)."""
    latency_requests: int = 4
    streaming_tok_s: bool = False
    """Ask for a streaming tok/s in the latency phase (refused for speculative cells, with the reason)."""
    determinism_prompts: int | None = None
    """None: the experiment's [determinism] prompts."""
    determinism_max_tokens: int | None = None
    """None: the experiment's [determinism] max_tokens."""
    log_interval_s: float | None = None
    """The servers' VLLM_LOG_STATS_INTERVAL; when set, the speed phase waits a tick so log and counters
    cover the same interval and checks their agreement."""
    release_servers: bool = True

    def __post_init__(self) -> None:
        bad = [p for p in self.phases if p not in PHASES]
        if bad:
            raise ValueError(f"unknown phase {', '.join(bad)}: choose from {', '.join(PHASES)}")


def cell_selected(cell_id: str, globs: str | None) -> bool:
    """Whether `cell_id` matches one of the comma-separated globs (everything when None)."""
    if not globs:
        return True
    return any(fnmatch.fnmatchcase(cell_id, g.strip()) for g in globs.split(",") if g.strip())


def model_key(cell: Cell) -> str:
    return f"{cell.model.id}.{cell.model.precision}"


def plan_groups(cells: Sequence[Cell]) -> list[list[Cell]]:
    """Cells grouped by serving key, models in order, AR groups first within a model."""
    groups: dict[str, list[Cell]] = {}
    for c in cells:
        groups.setdefault(c.serving_key, []).append(c)
    order = list(dict.fromkeys(model_key(c) for c in cells))
    return sorted(groups.values(), key=lambda g: (order.index(model_key(g[0])), not g[0].is_baseline))


def determinism_prompts(catset: CategorySet, n: int) -> list[str]:
    """N prompts round-robin over the categories (coding, humanities, math, …), deterministic."""
    groups = list(catset.by_category().values())
    out: list[str] = []
    i = 0
    while len(out) < n and any(i < len(g) for g in groups):
        out.extend(g[i].prompt for g in groups if i < len(g))
        i += 1
    return out[:n]


class BenchRunner:
    """Runs the chosen phases for the chosen cells; `await run()` returns the cells' folders."""

    def __init__(self, exp: LoadedExperiment, run_dir: Path, pool: ServerPool, options: BenchOptions,
                 emit: Callable[[Event], None] | None = None, *, record: bool = True) -> None:
        """`emit` sees every event; with `record` (the default: `specdeck bench`) the bench records them in
        the run folder's store and events.jsonl through its own sink. The runner passes `record=False`: its
        `emit` records already (one sink per run)."""
        self.exp = exp
        self.run_dir = Path(run_dir)
        self.run_id = self.run_dir.name
        self.pool = pool
        self.opt = options
        self.emit_cb = emit or (lambda e: None)
        self.sink: Any = None
        if record:
            from console.run.sink import EventSink

            self.sink = EventSink(self.run_dir)
        self.cells = [c for c in exp.cells if cell_selected(c.id, options.cells)]
        if not self.cells:
            raise ValueError(f"no cell matches {options.cells!r}: `specdeck validate FILE` lists the ids")
        self.ar_generations: dict[str, list[Generation]] = {}
        self.prompt_cache: dict[tuple[str, int, int], tuple[list[str], list[int]]] = {}
        self.corpora: dict[str, CorpusTokens] = {}
        self._catset: CategorySet | None = None
        self._determinism_results: dict[tuple[str, str], DeterminismResult] = {}

    def emit(self, event: Event) -> None:
        if not event.run_id:
            event = replace(event, run_id=self.run_id)
        if self.sink is not None:
            self.sink.apply(event)
        self.emit_cb(event)

    def record(self, cell: Cell, doc: str, parts: dict[str, Any]) -> None:
        """A part of the cell's result document: the event carries it to the run's store, whose sink also
        exports the document as `cells/<cell>/<doc>.json` for people (read by nothing)."""
        self.emit(ResultRecorded(cell_id=cell.id, doc=doc, parts=parts))

    def cell_dir(self, cell: Cell) -> Path:
        path = self.run_dir / "cells" / cell.id
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def catset(self) -> CategorySet:
        if self._catset is None:
            self._catset = load_categories(self.opt.categories)
        return self._catset

    def speed_config(self, cell: Cell) -> SpeedConfig:
        w = self.exp.spec.workload
        return SpeedConfig(context_tokens=cell.context.tokens, concurrency=cell.concurrency,
                           max_tokens=self.opt.max_tokens or w.output_tokens, repeats=self.opt.repeats or w.repeats,
                           requests_per_repeat=self.opt.requests_per_repeat or w.requests_per_repeat,
                           warmup_requests=w.warmup_requests if self.opt.warmup_requests is None
                           else self.opt.warmup_requests)

    def groups(self) -> list[list[Cell]]:
        groups = plan_groups(self.cells)
        if "determinism" not in self.opt.phases:
            return groups
        have_ar = {model_key(g[0]) for g in groups if g[0].is_baseline}
        extra: list[list[Cell]] = []
        for g in groups:
            mk = model_key(g[0])
            if not g[0].is_baseline and mk not in have_ar:
                ar = next((c for c in self.exp.cells if c.is_baseline and model_key(c) == mk), None)
                if ar is not None:
                    extra.append([ar])
                    have_ar.add(mk)
        return plan_groups([c for g in extra + groups for c in g])

    async def run(self) -> list[Path]:
        selected = {c.id for c in self.cells}
        for group in self.groups():
            await self.run_group(group, selected)
        return [self.cell_dir(c) for c in self.cells]

    def fail(self, cells: Sequence[Cell], phase: str, reason: str, fix: str = "") -> None:
        for c in cells:
            self.emit(PhaseFailed(cell_id=c.id, phase=phase, reason=reason, fix=fix))  # → failures.json

    async def run_group(self, group: list[Cell], selected: set[str]) -> None:
        first = group[0]
        measured = [c for c in group if c.id in selected]
        try:
            server = await asyncio.to_thread(self.pool.acquire, first)
        except ServerStartError as exc:
            self.fail(measured or group, "serving", f"{exc.reason}: {exc.message}", exc.fix)
            return
        try:
            async with server_lock(server.base_url):
                await self.run_phases(server, group, measured)
        finally:
            if self.opt.release_servers:
                await asyncio.to_thread(self.pool.release, first.serving_key)

    def client(self, server: Server, cell: Cell, concurrency: int) -> BenchClient:
        return BenchClient(server.base_url, cell.model.name, server.api_key, self.opt.api,
                           max_connections=max(1, concurrency))

    def probe(self, client: BenchClient, server: Server, cell: Cell) -> AcceptanceProbe:
        return AcceptanceProbe(client, server.log_path, speculative=not cell.is_baseline,
                               log_interval_s=self.opt.log_interval_s)

    async def prompts_for(self, client: BenchClient, cell: Cell, tokens: int, n: int) -> tuple[list[str], list[int]]:
        key = (cell.model.path, tokens, n)
        if key not in self.prompt_cache:
            corpus = self.corpora.setdefault(cell.model.path, CorpusTokens(client))
            corpus.tok = client
            ps = await corpus.prompt_set(tokens, n)
            self.prompt_cache[key] = (list(ps.prompts), list(ps.counted))
        return self.prompt_cache[key]

    async def run_phases(self, server: Server, group: list[Cell], measured: list[Cell]) -> None:
        phases = self.opt.phases
        conc = max(c.concurrency for c in group)
        async with self.client(server, group[0], conc) as client:
            for cell in measured:
                async with LiveLog(server.log_path, self.emit, self.run_id, cell.id):
                    if "speed" in phases:
                        await self.guard(cell, "speed", self.speed(client, server, cell))
                    if "categories" in phases and self.wants_categories(cell):
                        await self.guard(cell, "categories", self.categories(client, server, cell))
                    if "latency" in phases:
                        await self.guard(cell, "latency", self.latency(client, cell))
            if "determinism" in phases:
                await self.guard(group[0], "determinism", self.determinism(client, group, measured))
            if "niah" in phases and measured:
                await self.guard(measured[0], "niah", self.niah(client, measured))

    async def guard(self, cell: Cell, phase: str, work: Any) -> None:
        """Run a phase; a failure is recorded for the cell (and the other phases go on)."""
        try:
            await work
        except (PromptLengthError, OSError, RuntimeError, ValueError, KeyError) as exc:
            self.fail([cell], phase, f"{type(exc).__name__}: {exc}")

    def wants_categories(self, cell: Cell) -> bool:
        first_ctx = self.exp.spec.workload.contexts[0].label
        return cell.context.label == first_ctx and (self.opt.category_all_concurrency or cell.concurrency == 1)

    async def speed(self, client: BenchClient, server: Server, cell: Cell) -> None:
        cfg = self.speed_config(cell)
        prompts, counted = await self.prompts_for(client, cell, cfg.context_tokens, cfg.prompts_needed)
        result = await measure_speed(client, self.probe(client, server, cell), prompts, cfg, cell_id=cell.id,
                                     method=cell.method, run_id=self.run_id, emit=self.emit,
                                     check_log=self.opt.log_interval_s is not None,
                                     prompt_tokens_counted=counted)
        detail = result.to_dict()
        del detail["summary"]  # the summary travels as the SpeedMeasured measure_speed emitted
        self.record(cell, "speed", detail)
        self.record(cell, "acceptance", result.acceptance_dict())

    async def categories(self, client: BenchClient, server: Server, cell: Cell) -> None:
        chosen = self.catset.select(self.opt.category_prompts)
        groups = {k: [p.prompt for p in v] for k, v in chosen.by_category().items()}
        max_tokens = self.opt.max_tokens or self.exp.spec.workload.output_tokens
        results = await measure_categories(client, self.probe(client, server, cell), groups, concurrency=cell.concurrency,
                                           max_tokens=max_tokens, cell_id=cell.id, run_id=self.run_id,
                                           emit=self.emit)
        meta = {"source": chosen.source, "warnings": list(chosen.warnings), "max_tokens": max_tokens,
                "concurrency": cell.concurrency, "prompts_per_category": self.opt.category_prompts}
        self.record(cell, "speed", {"categories": {**meta, "rows": [r.to_dict() for r in results]}})
        self.record(cell, "acceptance", {"categories": {**meta, "rows": {
            r.category: (r.acceptance.to_dict() if r.acceptance is not None else None) for r in results}}})

    async def latency(self, client: BenchClient, cell: Cell) -> None:
        max_tokens = self.opt.max_tokens or self.exp.spec.workload.output_tokens
        prompts, _ = await self.prompts_for(client, cell, cell.context.tokens, self.opt.latency_requests)
        result = await measure_latency(client, prompts, max_tokens, cell_id=cell.id, method=cell.method,
                                       want_streaming_tok_s=self.opt.streaming_tok_s, run_id=self.run_id,
                                       emit=self.emit)
        self.record(cell, "latency", result.to_dict())

    async def determinism(self, client: BenchClient, group: list[Cell], measured: list[Cell]) -> None:
        spec = self.exp.spec.determinism
        max_tokens = self.opt.determinism_max_tokens or spec.max_tokens
        first = group[0]
        mk = model_key(first)
        prompts = determinism_prompts(self.catset, self.opt.determinism_prompts or spec.prompts)
        on = progress_emitter(self.emit, self.run_id, first.id, "determinism", len(prompts))
        if first.is_baseline:
            a = await generate(client, prompts, max_tokens, on_done=on)
            b = await generate(client, prompts, max_tokens, on_done=on)
            self.ar_generations[mk] = a
            result = DeterminismResult(mk, first.technique.id, len(prompts), max_tokens, compare(a, b))
            self.emit(determinism_event(result.control_summary, "control", self.run_id, first.id))
        else:
            ar = self.ar_generations.get(mk)
            if ar is None:
                raise RuntimeError(f"no AR generations for {mk}: the experiment has no AR technique for this model")
            t = await generate(client, prompts, max_tokens, on_done=on)
            ar_result = self._ar_result(mk)
            result = DeterminismResult(mk, first.technique.id, len(prompts), max_tokens,
                                       ar_result.control if ar_result else (), compare(ar, t))
            self.emit(determinism_event(result.technique_summary, "technique", self.run_id, first.id))
        self._determinism_results[(mk, first.technique.id)] = result
        for c in measured:
            self.record(c, "determinism", {**result.to_dict(), "serving_key": first.serving_key,
                                           "shared_by": [x.id for x in group]})

    def _ar_result(self, mk: str) -> DeterminismResult | None:
        return next((r for (m, _), r in self._determinism_results.items() if m == mk and not r.technique_vs_ar),
                    None)

    async def niah(self, client: BenchClient, measured: list[Cell]) -> None:
        spec = self.exp.spec.niah
        cell = measured[0]
        corpus = self.corpora.setdefault(cell.model.path, CorpusTokens(client))
        corpus.tok = client
        result = await run_niah(client, corpus, spec.context_tokens, spec.depths, technique=cell.technique.id,
                                max_model_len=cell.serving.max_model_len, run_id=self.run_id, cell_id=cell.id,
                                emit=self.emit)
        for c in measured:
            self.record(c, "niah", {**result.to_dict(), "serving_key": cell.serving_key})
