"""Rules that select cells (`[cells] exclude`, `[[overrides]] match`) must select something.

A typo in a rule changes a sweep silently: `match = { precision = "bf61" }` serves 30 cells at the wrong
settings, `exclude = [{ context = "8K" }]` keeps the slowest cells. So a rule that matches no cell is an
error naming the field that matched nothing and the closest value that exists.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Iterable, Mapping, Sequence

from console.experiment.schema import Experiment, Rule

PLURAL = {"model": "models", "technique": "techniques", "method": "methods", "precision": "precisions",
          "context": "contexts", "concurrency": "concurrency values"}


def rule_matches(rule: Rule, values: Mapping[str, str]) -> bool:
    """True when every field the rule sets matches (glob patterns; concurrency exactly; `technique` also
    matches a k sweep's own id)."""
    for key, pattern in rule.model_dump(exclude_none=True).items():
        keys = (key, "sweep") if key == "technique" and "sweep" in values else (key,)
        if not any(fnmatch.fnmatchcase(values[k], str(pattern)) for k in keys):
            return False
    return True


def _known(field: str, universe: Iterable[Mapping[str, str]]) -> list[str]:
    keys = (field, "sweep") if field == "technique" else (field,)
    return list(dict.fromkeys(v[k] for v in universe for k in keys if k in v))


def unmatched(rule: Rule, universe: Sequence[Mapping[str, str]], what: str) -> tuple[str | None, str] | None:
    """None when the rule matches at least one of `universe`; else (the field to blame, the message)."""
    if any(rule_matches(rule, v) for v in universe):
        return None
    fields = rule.model_dump(exclude_none=True)
    for field, pattern in fields.items():
        known = _known(field, universe)
        if any(fnmatch.fnmatchcase(k, str(pattern)) for k in known):
            continue
        close = difflib.get_close_matches(str(pattern), known, n=1, cutoff=0.5)
        if not close:  # case slips ("8K" for "8k") are the commonest typo and difflib scores them low
            close = [k for k in known if k.lower() == str(pattern).lower()][:1]
        hint = f"; did you mean {close[0]!r}?" if close else ""
        shown = ", ".join(known[:12]) + (", …" if len(known) > 12 else "")
        return field, f"{what} matches no cell: no {field} is {pattern!r}{hint} ({PLURAL[field]}: {shown})"
    together = " and ".join(f"{f} = {p!r}" for f, p in fields.items())
    return None, f"{what} matches no cell: no cell has {together} together; fix or remove the rule"


def _did_you_mean(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5) or [k for k in known if k.lower() == name.lower()]
    return f"; did you mean {close[0]!r}?" if close else ""


def guide_problems(spec: Experiment) -> list[tuple[tuple[str | int, ...], str]]:
    """`[[guide]]` rules naming a benchmark or a context the experiment does not declare: such a rule
    would pick from no rows. Returns (key path, message) pairs."""
    out: list[tuple[tuple[str | int, ...], str]] = []
    benchmarks = list(dict.fromkeys([b.id for b in spec.benchmarks] + [b.task for b in spec.benchmarks]))
    contexts = [c.label for c in spec.workload.contexts]
    for i, g in enumerate(spec.guide):
        scored_on_benchmark = g.measurement in (None, "accuracy")
        if g.benchmark and scored_on_benchmark and g.benchmark.lower() not in {b.lower() for b in benchmarks}:
            shown = ", ".join(b.id for b in spec.benchmarks) or "none declared"
            out.append((("guide", i, "benchmark"), f"no benchmark {g.benchmark!r}{_did_you_mean(g.benchmark, benchmarks)} "
                        f"(benchmark ids or tasks: {shown})"))
        if g.context and g.context not in contexts:
            out.append((("guide", i, "context"), f"no context {g.context!r}{_did_you_mean(g.context, contexts)} "
                        f"(contexts: {', '.join(contexts)})"))
    return out
