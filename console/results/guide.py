"""Workload guide: which configuration to deploy for which job, from rules written in the experiment TOML.

```toml
[[guide]]
name = "Hard reasoning (science / math)"
objective = "max_score"          # max_score | max_speed | max_speed_with_max_loss | balance
benchmark = "gpqa_diamond"       # accuracy rows scored on this benchmark (and framework, if given)
framework = "lm-eval"
context = "short"                # speed rows used for tok/s: this context …
concurrency = 1                  # … and this concurrency (default 1)
```

A configuration is model × precision × technique × k. Objectives:
- ``max_score``: the model/precision with the highest score; among its techniques whose score is within
  noise of that best (|Δ| < 2·SE_Δ), the fastest — speculative decoding should not cost accuracy, so the
  speed is free when the data cannot tell the scores apart.
- ``max_speed``: the fastest configuration (that has a score, when a benchmark is named).
- ``max_speed_with_max_loss``: the fastest configuration whose score is at most ``max_loss`` below the best
  score (``loss_vs = "best"``, default) or below its own AR baseline (``loss_vs = "baseline"``).
- ``balance``: the largest (score / best score) × (tok/s / best tok/s).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from console.errors import SpecdeckError
from console.experiment.schema import GuideRule
from console.results.columns import eq, normalize
from console.results.derive import standard_error
from console.results.frontiers import config_of

OBJECTIVES = ("max_score", "max_speed", "max_speed_with_max_loss", "balance")
RULE_KEYS = set(GuideRule.model_fields)
"""One schema for `[[guide]]`: what `specdeck validate` accepts in an experiment, the report applies."""
CONFIG = ["model", "precision", "technique", "k", "technique_id"]
"""What tells two configurations apart. `technique_id` (the experiment's own id, from the cell id) keeps two
techniques of one method and k apart (`draft-exact-k4` and `draft-noisy-k4` are both draft_model k=4); it is
empty where one technique id per method and k was measured (see `_with_technique_ids`)."""


class GuideRuleError(SpecdeckError, ValueError):
    """A `[[guide]]` rule that cannot be applied; the message says which rule and how to fix it."""

    fix = "change each [[guide]] rule as its line says, then run the report again"


def validate_rules(rules: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Check every rule and return them all as plain dicts; raises one error listing every problem."""
    problems, out = [], []
    for i, rule in enumerate(rules, 1):
        where = f"[[guide]] #{i} ({rule.get('name', 'unnamed')})"
        unknown = sorted(set(rule) - RULE_KEYS)
        if unknown:
            problems.append(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(RULE_KEYS))}")
        if not rule.get("name"):
            problems.append(f"{where}: `name` is required")
        objective = rule.get("objective")
        if objective not in OBJECTIVES:
            problems.append(f"{where}: `objective` must be one of {', '.join(OBJECTIVES)} (got {objective!r})")
        if objective == "max_speed_with_max_loss" and not isinstance(rule.get("max_loss"), int | float):
            problems.append(f"{where}: max_speed_with_max_loss needs `max_loss` (e.g. 0.05)")
        if rule.get("loss_vs", "best") not in ("best", "baseline"):
            problems.append(f"{where}: `loss_vs` must be \"best\" or \"baseline\"")
        if objective in ("max_score", "balance", "max_speed_with_max_loss") and not rule.get("benchmark"):
            problems.append(f"{where}: {objective} needs `benchmark`")
        out.append(dict(rule))
    if problems:
        raise GuideRuleError("\n".join(problems))
    return out


def technique_id(cell_id: Any) -> str:
    """The technique part of a specdeck cell id (`tiny.bf16.draft-exact-k4.short.c1` → `draft-exact-k4`);
    empty for ids of other shapes (imported rows)."""
    config = config_of(cell_id)
    return config.rsplit(".", 1)[-1] if config != str(cell_id) else ""


def _with_technique_ids(df: pd.DataFrame) -> pd.DataFrame:
    """`technique_id` where it tells configurations apart: only for a model × precision × method × k that more
    than one technique id measured; empty elsewhere, so rows whose ids differ in shape (a study's accuracy rows
    `m.fp8.ar`, its speed rows `m.fp8.ar.short.c1`) still meet."""
    df = df.assign(technique_id=[technique_id(c) for c in df["cell_id"]])
    method = df[CONFIG[:-1]].astype("string").fillna("").agg("|".join, axis=1)
    ids = df["technique_id"].where(df["technique_id"] != "")
    many = ids.groupby(method).transform("nunique") > 1
    return df.assign(technique_id=df["technique_id"].where(many, ""))


def _label(cfg: Mapping[str, Any]) -> str:
    k = cfg.get("k")
    tech = str(cfg.get("technique"))
    if k is not None and not pd.isna(k):
        tech += f" k={int(k)}"
    if cfg.get("technique_id") and cfg["technique_id"] != tech.replace(" k=", "-k"):
        tech += f" ({cfg['technique_id']})"
    return f"{cfg.get('model')} {cfg.get('precision') if not pd.isna(cfg.get('precision')) else ''} {tech}".replace(
        "  ", " ")


def _configs(df: pd.DataFrame, rule: Mapping[str, Any]) -> pd.DataFrame:
    """One row per configuration with its score (n, se) for the rule's benchmark and its tok/s."""
    measurement = rule.get("measurement", "accuracy")
    df = _with_technique_ids(df)
    scored = df[eq(df["measurement"], measurement)]
    if rule.get("benchmark"):
        scored = scored[eq(scored["benchmark"], rule["benchmark"], case=False)]
    if rule.get("framework"):
        scored = scored[eq(scored["framework"], rule["framework"], case=False)]
    if rule.get("context") and measurement != "accuracy":
        scored = scored[eq(scored["context"], rule["context"])]
    speed = df[eq(df["measurement"], "speed")]
    conc = rule.get("concurrency", 1)
    if eq(speed["concurrency"], conc).any():
        speed = speed[eq(speed["concurrency"], conc)]
    context = rule.get("context")
    if context is None and len(speed):
        order = speed.assign(_t=speed["context_tokens"].astype("Float64").fillna(-1.0))
        context = order.sort_values("_t", kind="stable")["context"].iloc[0]
    if context is not None and not pd.isna(context):
        speed = speed[eq(speed["context"], context)]
    techniques = rule.get("technique")
    if techniques:
        wanted = [techniques] if isinstance(techniques, str) else list(techniques)
        scored, speed = scored[scored["technique"].isin(wanted)], speed[speed["technique"].isin(wanted)]

    def key(frame: pd.DataFrame) -> pd.Series:
        return frame[CONFIG].astype("string").fillna("").agg("|".join, axis=1)

    out: dict[str, dict[str, Any]] = {}
    if len(scored):
        scored = scored.assign(_key=key(scored), _ts=pd.to_datetime(scored["timestamp"], utc=True, errors="coerce"))
        for k, g in scored.sort_values("_ts", kind="stable").groupby("_key", sort=False):
            last = g.iloc[-1]
            p, n = float(last["score"]), float(last["n"]) if pd.notna(last["n"]) else math.nan
            st = float(last["stderr"]) if pd.notna(last["stderr"]) else math.nan
            out[str(k)] = {**{c: last[c] for c in CONFIG}, "baseline_model": last["baseline_model"],
                           "score": p, "n": n, "se": standard_error(p, n, st), "tok_s": math.nan}
    if len(speed):
        speed = speed.assign(_key=key(speed))
        for k, g in speed.groupby("_key", sort=False):
            entry = out.setdefault(str(k), {**{c: g.iloc[0][c] for c in CONFIG},
                                            "baseline_model": g.iloc[0]["baseline_model"],
                                            "score": math.nan, "n": math.nan, "se": math.nan})
            entry["tok_s"] = float(g["tok_s_median"].astype("Float64").mean())
    return pd.DataFrame(list(out.values()))


def _fmt(x: float, spec: str) -> str:
    return "?" if x is None or math.isnan(x) else format(x, spec)


def _apply(rule: Mapping[str, Any], cfg: pd.DataFrame) -> tuple[pd.Series | None, str]:
    objective = rule["objective"]
    bench = rule.get("benchmark") or rule.get("measurement", "")
    if cfg.empty:
        return None, "no configuration has the data this rule needs"
    has_score = cfg[cfg["score"].notna()]
    has_speed = cfg[cfg["tok_s"].notna()]
    if objective == "max_speed":
        pool = has_speed[has_speed["score"].notna()] if rule.get("benchmark") else has_speed
        if pool.empty:
            return None, "no configuration has a tok/s figure" + (f" and a {bench} score" if rule.get("benchmark") else "")
        best = pool.loc[pool["tok_s"].idxmax()]
        return best, f"fastest: {_fmt(best['tok_s'], '.1f')} tok/s"
    if has_score.empty:
        return None, f"no configuration has a {bench} score"
    top = has_score.loc[has_score["score"].idxmax()]
    if objective == "max_score":
        same = has_score[(has_score["model"] == top["model"]) & (has_score["precision"].fillna("") ==
                                                                 ("" if pd.isna(top["precision"]) else top["precision"]))]
        ties = []
        for _, r in same.iterrows():
            d = top["score"] - r["score"]
            se_d = math.sqrt(r["se"] ** 2 + top["se"] ** 2)
            if d == 0 or (not math.isnan(se_d) and abs(d) < 2 * se_d):
                ties.append(r)
        pool = pd.DataFrame(ties)
        fast = pool[pool["tok_s"].notna()]
        best = fast.loc[fast["tok_s"].idxmax()] if len(fast) else top
        reason = f"highest {bench}: {_label(top)} {top['score']:.3f}"
        if best is not top and not best.equals(top):
            reason += (f"; {best['technique']} scores {best['score']:.3f}, within noise of it, "
                       f"at {_fmt(best['tok_s'], '.1f')} tok/s")
        elif not math.isnan(best["tok_s"]):
            reason += f" at {best['tok_s']:.1f} tok/s"
        return best, reason
    both = has_score[has_score["tok_s"].notna()]
    if both.empty:
        return None, f"no configuration has both a {bench} score and a tok/s figure"
    if objective == "balance":
        b = both.assign(_v=both["score"] / both["score"].max() * both["tok_s"] / both["tok_s"].max())
        best = b.loc[b["_v"].idxmax()]
        return best, (f"best score×speed: {bench} {best['score']:.3f} ({best['score'] / both['score'].max():.0%} "
                      f"of best) at {best['tok_s']:.1f} tok/s ({best['tok_s'] / both['tok_s'].max():.0%} of fastest)")
    max_loss = float(rule["max_loss"])
    if rule.get("loss_vs", "best") == "baseline":
        ar = has_score[eq(has_score["technique"], "ar")].set_index("model")["score"]
        ref = both.apply(lambda r: ar.get(r["baseline_model"] if pd.notna(r["baseline_model"]) else r["model"],
                                          math.nan), axis=1)
        what = "its AR baseline"
    else:
        ref = pd.Series(top["score"], index=both.index)
        what = f"the best ({top['score']:.3f})"
    loss = ref - both["score"]
    pool = both[loss <= max_loss + 1e-12]
    if pool.empty:
        return None, f"no configuration within {max_loss} of {what}"
    best = pool.loc[pool["tok_s"].idxmax()]
    return best, (f"fastest within {max_loss} of {what}: {best['tok_s']:.1f} tok/s, {bench} {best['score']:.3f} "
                  f"(loss {loss[best.name]:+.3f})")


def workload_guide(df: pd.DataFrame, rules: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per rule: the workload, the configuration it picks and why (or why none qualifies)."""
    df = normalize(df)
    rows = []
    for rule in validate_rules(rules):
        best, reason = _apply(rule, _configs(df, rule))
        why = rule.get("why") or rule.get("description")
        if why:
            reason += f" — {why}"
        rows.append({
            "workload": rule["name"], "objective": rule["objective"],
            "best": "—" if best is None else _label(best),
            "model": None if best is None else best["model"],
            "technique": None if best is None else best["technique"],
            "score": math.nan if best is None else best["score"],
            "tok_s": math.nan if best is None else best["tok_s"], "reason": reason,
        })
    return pd.DataFrame(rows, columns=["workload", "objective", "best", "model", "technique", "score", "tok_s",
                                       "reason"])
