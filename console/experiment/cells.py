"""Cells: one model × technique × context × concurrency, with its serving settings resolved."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from itertools import product
from typing import Any

from console import methods
from console.experiment.rules import rule_matches, unmatched
from console.experiment.schema import (
    SERVING_DEFAULTS,
    Context,
    Experiment,
    ModelSpec,
    Serving,
    Technique,
)


def config_of(cell_id: Any) -> str:
    """A cell's serving configuration: its id without context and concurrency
    (`tiny.bf16.draft-exact-k4.short.c1` → `tiny.bf16.draft-exact-k4`); other ids stay whole."""
    text = str(cell_id)
    parts = text.split(".")
    return ".".join(parts[:-2]) if len(parts) >= 5 and parts[-1].startswith("c") else text


@dataclass(frozen=True)
class Cell:
    """A unit of measurement: what the speed phase times and the evals score, with the exact serving
    settings it ran under (disclosed in every report)."""

    model: ModelSpec
    technique: Technique
    context: Context
    concurrency: int
    serving: Serving
    drafter: str | None = None
    sweep: str | None = None
    """The technique id as written when its k is swept (`draft-exact` for `draft-exact-k4`), else None."""

    @property
    def id(self) -> str:
        """Stable, readable: model.precision.technique.context.cN, e.g. gemma4-31b.fp8.mtp-k8.8k.c16."""
        return (
            f"{self.model.id}.{self.model.precision}.{self.technique.id}."
            f"{self.context.label}.c{self.concurrency}"
        )

    @property
    def method(self) -> str:
        return self.technique.method

    @property
    def is_baseline(self) -> bool:
        return self.technique.method == "ar"

    def serving_identity(self) -> dict[str, object]:
        """What decides whether two cells can share one server: everything but context and concurrency."""
        return {
            "model": self.model.path,
            "served_name": self.model.name,
            "attach": self.model.attach.model_dump() if self.model.attach else None,
            "technique": self.technique.model_dump(exclude={"id", "serving"}),
            "drafter": self.drafter,
            "serving": self.serving.model_dump(exclude={"startup_timeout_s"}),
        }

    @property
    def serving_key(self) -> str:
        blob = json.dumps(self.serving_identity(), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def match_fields(self) -> dict[str, str]:
        return match_fields(self.model, self.technique, self.context, self.concurrency, self.sweep)


def match_fields(model: ModelSpec, technique: Technique, context: Context, concurrency: int,
                 sweep: str | None = None) -> dict[str, str]:
    """The values exclude and override rules match against (`technique` also matches a k sweep's own id)."""
    return {
        "model": model.id,
        "technique": technique.id,
        "sweep": sweep or technique.id,
        "method": technique.method,
        "precision": model.precision,
        "context": context.label,
        "concurrency": str(concurrency),
    }


def sweep_id(base: str, k: int) -> str:
    """The id of one point of a k sweep: `draft-exact` at k = 4 → `draft-exact-k4`."""
    return f"{base}-k{k}"


def expand_k(techniques: list[Technique]) -> tuple[dict[str, Technique], dict[str, str], list[CellError]]:
    """Techniques by id with every k sweep (`k = [1, 2, 4]`) expanded into one technique per value, id
    `<id>-k<k>`, in the order written; also expanded id → the sweep's own id, and id clashes."""
    out: dict[str, Technique] = {}
    sweeps: dict[str, str] = {}
    errors: list[CellError] = []
    for i, t in enumerate(techniques):
        if not isinstance(t.k, list):
            out.setdefault(t.id, t)
            continue
        for k in t.k:
            tid = sweep_id(t.id, k)
            if tid in out or any(o.id == tid for o in techniques):
                errors.append(CellError(("techniques", i, "k"), f"the k sweep of {t.id!r} makes id {tid!r}, "
                                        "which another technique already has: rename one of them"))
                continue
            out[tid] = t.model_copy(update={"id": tid, "k": k})
            sweeps[tid] = t.id
    return out, sweeps, errors


def drafter_for(model: ModelSpec, technique: Technique, sweep: str | None = None) -> str | None:
    """The drafter a cell uses: the model's entry for the technique id (or its k sweep's id), then for the
    method, then the technique's own `draft_model`."""
    return (model.drafters.get(technique.id) or (model.drafters.get(sweep) if sweep else None)
            or model.drafters.get(technique.method) or technique.draft_model)


class CellError(ValueError):
    """A cell that cannot be formed; `path` points into the experiment file."""

    def __init__(self, path: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.path = path


def resolve_serving(exp: Experiment, model: ModelSpec, technique: Technique, values: dict[str, str]) -> Serving:
    serving = SERVING_DEFAULTS.layered(exp.serving).layered(model.serving).layered(technique.serving)
    for override in exp.overrides:
        if rule_matches(override.match, values):
            serving = serving.layered(override.serving)
    return serving


def expand_cells(exp: Experiment) -> tuple[list[Cell], list[CellError]]:
    """All cells of an experiment in a stable order, and every problem found while forming them."""
    models = {v.key: v for m in exp.models for v in m.variants()}
    techniques, sweeps, errors = expand_k(list(exp.techniques))
    contexts = {c.label: c for c in exp.workload.contexts}
    combos: list[tuple[str, str, str, int]] = []

    def pick(kind: str, names: list[str], known: dict, path: tuple[str | int, ...]) -> list[str]:
        """Resolve references; a model may be named `id` (every precision) or `id.precision`."""
        out: list[str] = []
        for name in names:
            if name in known:
                out.append(name)
                continue
            hits = [k for k in known if kind == "model" and k.split(".", 1)[0] == name]
            hits += [k for k in known if kind == "technique" and sweeps.get(k) == name]
            if hits:
                out.extend(hits)
                continue
            shown = (sorted({k.split(".", 1)[0] for k in known} | set(known)) if kind == "model"
                     else list(dict.fromkeys(sweeps.get(k, k) for k in known)))
            errors.append(CellError(path, f"unknown {kind} {name!r}: declared are {', '.join(shown)}"))
        return out

    if exp.cells.explicit is not None:
        for i, ec in enumerate(exp.cells.explicit):
            base = ("cells", "explicit", i)
            for m in pick("model", [ec.model], models, (*base, "model")):
                for t in pick("technique", [ec.technique], techniques, (*base, "technique")):
                    for c in pick("context", [ec.context], contexts, (*base, "context")):
                        combos.append((m, t, c, ec.concurrency))
    else:
        for i, mx in enumerate(exp.cells.matrix):
            base = ("cells", "matrix", i)
            ms = pick("model", mx.models or list(models), models, (*base, "models"))
            if mx.precisions:
                labels = {models[m].precision for m in ms}
                for label in mx.precisions:
                    if label not in labels:
                        errors.append(CellError((*base, "precisions"), f"no chosen model has precision {label!r}: "
                                                f"they have {', '.join(sorted(str(x) for x in labels))}"))
                ms = [m for m in ms if models[m].precision in mx.precisions]
            ts = pick("technique", mx.techniques or list(techniques), techniques, (*base, "techniques"))
            cs = pick("context", mx.contexts or list(contexts), contexts, (*base, "contexts"))
            ns = mx.concurrency or list(exp.workload.concurrency)
            combos.extend(product(ms, ts, cs, ns))
    if errors:
        return [], errors

    cells: list[Cell] = []
    seen: set[str] = set()
    universe = [match_fields(models[m], techniques[t], contexts[c], n, sweeps.get(t)) for m, t, c, n in combos]
    errors += _unmatched_rules(exp, universe)
    for model_id, tech_id, ctx_label, conc in combos:
        model, tech, ctx = models[model_id], techniques[tech_id], contexts[ctx_label]
        values = match_fields(model, tech, ctx, conc, sweeps.get(tech_id))
        if exp.cells.explicit is None and any(rule_matches(r, values) for r in exp.cells.exclude):
            continue
        drafter = drafter_for(model, tech, sweeps.get(tech_id))
        if methods.needs_drafter(tech.method) and not drafter:
            errors.append(
                CellError(
                    ("techniques", [t.id for t in exp.techniques].index(sweeps.get(tech.id, tech.id))),
                    f"technique {tech.id!r} ({tech.method}) needs a drafter for model {model.id!r}: add "
                    f"drafters.{tech.id} = \"…\" to that model, draft_model to the technique, or an "
                    f"exclude rule {{ model = \"{model.id}\", technique = \"{tech.id}\" }}",
                )
            )
            continue
        cell = Cell(
            model=model,
            technique=tech,
            context=ctx,
            concurrency=conc,
            serving=resolve_serving(exp, model, tech, values),
            drafter=drafter,
            sweep=sweeps.get(tech.id),
        )
        if cell.id in seen:
            continue
        seen.add(cell.id)
        cells.append(cell)
    if not cells and not errors:
        errors.append(CellError(("cells",), "no cells left: every combination is excluded"))
    return cells, errors


def _unmatched_rules(exp: Experiment, universe: list[dict[str, str]]) -> list[CellError]:
    """Exclude rules that drop nothing and override rules that reach no cell (typos change sweeps)."""
    errors: list[CellError] = []
    if exp.cells.explicit is not None:
        if exp.cells.exclude:
            errors.append(CellError(("cells", "exclude"), "exclude is ignored when `explicit` lists the cells: "
                                    "remove the exclude rules or the explicit list"))
        return errors
    for i, rule in enumerate(exp.cells.exclude):
        miss = unmatched(rule, universe, "this exclude rule")
        if miss:
            errors.append(CellError(("cells", "exclude", i, *([miss[0]] if miss[0] else [])), miss[1]))
    kept = [v for v in universe if not any(rule_matches(r, v) for r in exp.cells.exclude)]
    for i, override in enumerate(exp.overrides):
        miss = unmatched(override.match, kept, "this override")
        if miss:
            errors.append(CellError(("overrides", i, "match", *([miss[0]] if miss[0] else [])), miss[1]))
    return errors
