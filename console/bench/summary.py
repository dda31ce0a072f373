"""Tables from a run's store: what `specdeck bench` prints at the end (and can print again later).

Reads each cell's result documents from the store (`Store.documents`: what the phases' events carried); the
`cells/<cell>/*.json` files are exports of the same, read by nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from console.experiment.cells import Cell


def load_cell_results(run_dir: Path, cells: Sequence[Cell]) -> dict[str, dict[str, Any]]:
    """{cell id: {"speed": {...}, "acceptance": {...}, …}} for the documents the run's store holds."""
    from console.run.folder import RunFolder

    store = RunFolder(run_dir).read_store()
    try:
        return {c.id: store.documents(c.id) for c in cells}
    finally:
        store.close()


def render(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain aligned text table (numbers right-aligned)."""
    cells = [[_s(v) for v in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    def line(vals: Sequence[str], raw: Sequence[Any] | None = None) -> str:
        parts = []
        for i, v in enumerate(vals):
            num = raw is not None and isinstance(raw[i], int | float) and not isinstance(raw[i], bool)
            parts.append(v.rjust(widths[i]) if num else v.ljust(widths[i]))
        return "  ".join(parts).rstrip()
    out = [line(list(headers)), "  ".join("-" * w for w in widths)]
    out += [line(c, r) for c, r in zip(cells, rows, strict=True)]
    return "\n".join(out)


def _s(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if v != 0 and abs(v) < 0.1:
            return f"{v:.4f}"
        return f"{v:.2f}" if abs(v) < 100 else f"{v:.0f}"
    return str(v)


def ar_twin(cell: Cell, cells: Sequence[Cell]) -> Cell | None:
    """The AR cell of the same model, precision, context and concurrency."""
    return next((c for c in cells if c.is_baseline and c.model.id == cell.model.id
                 and c.model.precision == cell.model.precision and c.context.label == cell.context.label
                 and c.concurrency == cell.concurrency), None)


def _tok_s(data: dict[str, Any], cell_id: str) -> float | None:
    return ((data.get(cell_id, {}).get("speed") or {}).get("summary") or {}).get("tok_s")


def summary_table(cells: Sequence[Cell], data: dict[str, dict[str, Any]]) -> str:
    """tok/s (median, min–max), failures, speed-up vs the AR twin, acceptance length, server-log tok/s."""
    rows = []
    for c in cells:
        sp = data.get(c.id, {}).get("speed")
        if not sp or "summary" not in sp:
            why: dict[str, Any] = data.get(c.id, {}).get("failures") or {}
            reason = next((v.get("reason") for v in why.values()), None)
            rows.append([c.id, c.method, "-", "-", "-", "-", "-", f"not measured: {reason}" if reason else "-"])
            continue
        s = sp["summary"]
        twin = ar_twin(c, cells)
        base = _tok_s(data, twin.id) if twin else None
        speedup = f"{s['tok_s'] / base:.2f}x" if base and s.get("tok_s") else "-"
        tok = f"{s['tok_s']:.0f} ({s['tok_s_min']:.0f}–{s['tok_s_max']:.0f})" if s.get("tok_s") is not None else "-"
        mal = s.get("mean_acceptance_length")
        log_tok = s.get("server_log_gen_tok_s")
        note = f"{s['failures']} FAILED of {s['requests']}" if s.get("failures") else ""
        rows.append([c.id, c.method, tok, speedup, f"{mal:.2f}" if mal else "-",
                     f"{log_tok:.0f}" if log_tok else "-", s.get("requests"), note])
    return render(["cell", "method", "tok/s median (min–max)", "vs AR", "accept len", "log gen tok/s",
                   "requests", "failures"], rows)


def acceptance_table(cells: Sequence[Cell], data: dict[str, dict[str, Any]]) -> str:
    """Per-position acceptance from /metrics deltas (whole point), with the log's value and agreement."""
    rows = []
    for c in cells:
        if c.is_baseline:
            continue
        acc = data.get(c.id, {}).get("acceptance") or {}
        total = acc.get("total") or {}
        if not total:
            continue
        pos = " ".join(f"{r:.3f}" for r in total.get("per_position_rates") or [])
        agr = acc.get("agreement") or {}
        agrees = {True: "yes", False: "NO", None: "-"}[agr.get("agrees")]
        log_mal = agr.get("log_mean_acceptance_length")
        rows.append([c.id, total.get("mean_acceptance_length"), total.get("draft_acceptance_rate"),
                     total.get("num_drafts"), pos, log_mal, agrees])
    return render(["cell", "accept len", "draft acc rate", "drafts", "per position", "log accept len",
                   "agree ±0.05"], rows)


def category_table(cells: Sequence[Cell], data: dict[str, dict[str, Any]]) -> str:
    """Rows: category; columns: each measured cell's tok/s and acceptance length."""
    measured = [c for c in cells if (data.get(c.id, {}).get("speed") or {}).get("categories")]
    if not measured:
        return ""
    cats: list[str] = []
    per: dict[str, dict[str, dict[str, Any]]] = {}
    for c in measured:
        for row in data[c.id]["speed"]["categories"]["rows"]:
            cats.append(row["category"])
            per.setdefault(c.id, {})[row["category"]] = row
    cats = list(dict.fromkeys(cats))
    headers = ["category"]
    for c in measured:
        short = f"{c.technique.id} c{c.concurrency}"
        headers += [f"{short} tok/s", "acc len"]
    rows = []
    for cat in cats:
        r: list[Any] = [cat]
        for c in measured:
            row = per.get(c.id, {}).get(cat) or {}
            acc = row.get("acceptance") or {}
            tok = row.get("tok_s")
            fails = row.get("failures")
            r += [(f"{tok:.0f}" + (f" ({fails} failed)" if fails else "")) if tok is not None else "-",
                  acc.get("mean_acceptance_length")]
        rows.append(r)
    return render(headers, rows)


def determinism_table(cells: Sequence[Cell], data: dict[str, dict[str, Any]]) -> str:
    """One row per serving config: AR vs AR (control) and technique vs AR, the study's phrasing."""
    seen: set[tuple[str, str]] = set()
    rows = []
    for c in cells:
        d = data.get(c.id, {}).get("determinism")
        if not d or (d["model"], d["technique"]) in seen:
            continue
        seen.add((d["model"], d["technique"]))
        tech = d.get("technique_vs_ar") or {}
        rows.append([d["model"], d["technique"], d["ar_vs_ar"]["text"], tech.get("text", "(AR itself)"),
                     d["max_tokens"]])
    return render(["model", "technique", "AR vs AR", "technique vs AR", "max_tokens"], rows) if rows else ""


def niah_table(cells: Sequence[Cell], data: dict[str, dict[str, Any]]) -> str:
    seen: set[str] = set()
    rows = []
    for c in cells:
        n = data.get(c.id, {}).get("niah")
        key = n.get("serving_key") if n else None
        if not n or key in seen:
            continue
        seen.add(str(key))
        per = n.get("per_length") or {}
        rows.append([f"{c.model.id}.{c.technique.id}", ", ".join(f"{L}: {v['text']}" for L, v in per.items()) or "-",
                     "; ".join(n.get("skipped") or []) or ""])
    return render(["server", "found per context length (10/50/90 % depth)", "skipped"], rows) if rows else ""


def latency_table(cells: Sequence[Cell], data: dict[str, dict[str, Any]]) -> str:
    rows = []
    for c in cells:
        lat = data.get(c.id, {}).get("latency")
        if not lat:
            continue
        rows.append([c.id, lat["ttft_s"]["p50"], lat["itl_s"]["p50"], lat["tokens_per_chunk_mean"],
                     lat.get("streaming_tok_s"), "refused" if lat.get("streaming_tok_s_refused") else ""])
    if not rows:
        return ""
    return render(["cell (latency-only, streaming)", "TTFT p50 s", "ITL p50 s", "tokens/chunk",
                   "streaming tok/s", ""], rows)


def full_report(cells: Sequence[Cell], data: dict[str, dict[str, Any]]) -> str:
    parts = [("Speed (non-streaming, Σ completion_tokens / wall clock)", summary_table(cells, data)),
             ("Acceptance (from /metrics counter deltas)", acceptance_table(cells, data)),
             ("Per category", category_table(cells, data)),
             ("Determinism (greedy token ids)", determinism_table(cells, data)),
             ("Needle in a haystack", niah_table(cells, data)),
             ("Latency", latency_table(cells, data))]
    return "\n\n".join(f"== {title}\n{table}" for title, table in parts if table)
