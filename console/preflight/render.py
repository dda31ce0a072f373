"""Preflight for people: one table per section, a mark per check, the fix under it, and the verdict."""

from __future__ import annotations

import textwrap

from console.preflight.checks import FAIL, Report
from console.units import gpu_hours

WIDTH = 118


def render(report: Report, verbose: bool = False) -> str:
    out = [f"preflight {report.experiment} ({report.file})", ""]
    for section in report.sections:
        out.append(f"── {section.title} " + "─" * max(0, WIDTH - len(section.title) - 4))
        for check in section.checks:
            lead = f"  {check.mark} {check.name:<13} "
            out += textwrap.wrap(check.what, WIDTH, initial_indent=lead, subsequent_indent=" " * len(lead))
            if check.fix and (check.status != "ok" or verbose):
                out += textwrap.wrap(f"fix: {check.fix}", WIDTH, initial_indent=" " * len(lead),
                                     subsequent_indent=" " * (len(lead) + 5))
        out.append("")
    out.append(campaign_table(report))
    counts = report.counts()
    verdict = ("NOT READY: fix every ✗ above before the first start" if not report.ok else
               "ready" + (" (the ? items could not be confirmed here)" if counts["unknown"] else ""))
    out.append(f"{counts['ok']} ✓  {counts[FAIL]} ✗  {counts['unknown']} ?  — {verdict}")
    return "\n".join(out)


def campaign_table(report: Report) -> str:
    """GPU-hours per phase and the biggest items, so the operator sees where the hours go."""
    cost = report.cost
    if not cost:
        return ""
    totals = cost["gpu_hours"]
    lines = ["campaign estimate:"]
    for phase in ("speed", "smoke", "full"):
        rows = [r for r in cost["lines"] if r["phase"] == phase]
        if rows:
            shown = gpu_hours(totals[phase]) if phase in totals else "not priced"
            lines.append(f"  {phase:<6} {len(rows):>4} runs  {shown:>14}")
    lines.append(f"  {'total':<6} {'':>4}       {gpu_hours(cost['total_gpu_hours']) if totals else 'not priced':>14}"
                 + (f"   (+ {sum(cost['unpriced'].values())} runs without a tok/s)" if cost["unpriced"] else ""))
    priced = sorted((r for r in cost["lines"] if r["gpu_hours"]), key=lambda r: -r["gpu_hours"])[:5]
    if priced:
        lines.append("  largest: " + "; ".join(
            f"{r['cell_id']} {r['benchmark'] or r['phase']} {r['phase']} {gpu_hours(r['gpu_hours'])}" for r in priced))
    return "\n".join(lines) + "\n"
