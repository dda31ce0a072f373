"""k curves and Pareto frontiers from master rows: plain computations, then the report and its PNGs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from console.results.columns import normalize
from console.results.frontiers import config_of, pareto_mask, speed_accuracy, user_vs_total
from console.results.report import build, markdown_report, terminal_report
from console.results.sweeps import best_k, k_curves

RUN = "r1"


def speed(tech: str, method: str, k: int | None, ctx: str, c: int, tok: float, sweep: str | None = None,
          run: str = RUN) -> dict:
    return {"run_id": run, "cell_id": f"m.bf16.{tech}.{ctx}.c{c}", "model": "m", "precision": "bf16",
            "technique": method, "k": k, "sweep": sweep, "context": ctx, "context_tokens": 128 if ctx == "short" else 1024,
            "concurrency": c, "category": "all", "measurement": "speed", "tok_s_median": tok,
            "tok_s_min": tok * 0.95, "tok_s_max": tok * 1.05, "tok_s_source": "nonstreaming", "source": "specdeck"}


def accept(tech: str, method: str, k: int, ctx: str, c: int, rates: list[float], sweep: str | None = None) -> dict:
    return {"run_id": RUN, "cell_id": f"m.bf16.{tech}.{ctx}.c{c}", "model": "m", "precision": "bf16",
            "technique": method, "k": k, "sweep": sweep, "context": ctx, "concurrency": c, "category": "all",
            "measurement": "acceptance", "acceptance_length": 1 + sum(rates), "per_position": json.dumps(rates),
            "source": "specdeck"}


def score(tech: str, method: str, bench: str, value: float, n: int = 100) -> dict:
    return {"run_id": RUN, "cell_id": f"m.bf16.{tech}.short.c1", "model": "m", "precision": "bf16",
            "technique": method, "measurement": "accuracy", "benchmark": bench, "framework": "builtin",
            "n": n, "score": value, "source": "specdeck"}


# tok/s at c=1 rise then fall with k (a sweet spot at k = 4); at c=16 the best k is shorter.
CURVE_C1 = {1: 100.0, 2: 150.0, 4: 210.0, 6: 190.0, 8: 170.0}
CURVE_C16 = {1: 400.0, 2: 430.0, 4: 380.0, 6: 330.0, 8: 300.0}


@pytest.fixture
def rows() -> pd.DataFrame:
    out = [speed("ar", "ar", None, "short", 1, 60.0), speed("ar", "ar", None, "short", 16, 500.0)]
    for k, tok in CURVE_C1.items():
        out.append(speed(f"draft-k{k}", "draft_model", k, "short", 1, tok, sweep="draft"))
        out.append(accept(f"draft-k{k}", "draft_model", k, "short", 1, [0.9 ** (i + 1) for i in range(k)], "draft"))
    for k, tok in CURVE_C16.items():
        out.append(speed(f"draft-k{k}", "draft_model", k, "short", 16, tok, sweep="draft"))
    # not swept: a lone technique with k makes no curve, even with another of the same method and k
    out.append(speed("noisy-k4", "draft_model", 4, "short", 1, 120.0))
    out.append(speed("ngram-k4", "ngram", 4, "short", 1, 80.0))
    out.append(speed("ngram-k4", "ngram", 4, "short", 16, 700.0))
    return normalize(pd.DataFrame(out))


def test_k_curves_mark_the_best_k_per_context_and_concurrency(rows: pd.DataFrame) -> None:
    curves = k_curves(rows)
    assert set(curves["sweep"]) == {"draft"}
    c1 = curves[curves["concurrency"] == 1].sort_values("k")
    assert c1["k"].tolist() == [1, 2, 4, 6, 8] and c1["tok_s"].tolist() == list(CURVE_C1.values())
    assert c1.loc[c1["best"], "k"].tolist() == [4]
    c16 = curves[curves["concurrency"] == 16]
    assert c16.loc[c16["best"], "k"].tolist() == [2]
    # speed-up against AR of the same context and concurrency, and acceptance per position beside each point
    k4 = c1[c1["k"] == 4].iloc[0]
    assert k4["speedup"] == pytest.approx(210 / 60)
    assert json.loads(k4["per_position"]) == pytest.approx([0.9, 0.81, 0.729, 0.6561])
    assert math.isnan(c16.iloc[0]["acceptance_length"])  # not measured there: missing, never invented
    summary = best_k(curves)
    assert summary.set_index("concurrency")["best_k"].to_dict() == {1: 4, 16: 2}
    assert summary.iloc[0]["ks"] == "1, 2, 4, 6, 8"


def test_best_k_says_whether_the_repeats_separate_it() -> None:
    """The demo's k curve changed its best k from run to run (one repeat each): the summary names the runner-up,
    the margin, and whether the spread of the repeats separates them."""
    def curve(points: dict[int, tuple[float, float, float]]) -> pd.Series:
        rows = [dict(speed(f"n-k{k}", "draft_model", k, "short", 1, med, sweep="n"), tok_s_min=lo, tok_s_max=hi)
                for k, (lo, med, hi) in points.items()]
        return best_k(k_curves(normalize(pd.DataFrame(rows)))).iloc[0]

    clear = curve({2: (20, 21, 22), 4: (28, 29, 30), 8: (25, 26, 27)})
    assert clear["best_k"] == 4 and clear["next_k"] == 8 and clear["call"] == "yes"
    assert clear["margin"] == pytest.approx(29 / 26 - 1)
    overlap = curve({2: (25, 29.8, 31), 4: (26, 29.5, 32), 8: (27, 29.4, 30)})
    assert overlap["best_k"] == 2 and overlap["call"] == "no: overlap"
    one = curve({2: (26.1, 26.1, 26.1), 4: (29.3, 29.3, 29.3), 8: (31.5, 31.5, 31.5)})  # run B of the demo
    assert one["best_k"] == 8 and one["call"] == "? one repeat"
    assert one["margin"] == pytest.approx(31.5 / 29.3 - 1)


def test_imported_rows_form_a_curve_per_method(rows: pd.DataFrame) -> None:
    imp = [dict(speed(f"x{k}", "mtp", k, "short", 1, tok), source="vllm-bench", cell_id=f"gemma_mtp_nt{k}")
           for k, tok in ((4, 90.0), (8, 120.0))]
    curves = k_curves(normalize(pd.DataFrame(imp)))
    assert curves["sweep"].tolist() == ["mtp", "mtp"] and curves.loc[curves["best"], "k"].tolist() == [8]


def test_pareto_mask() -> None:
    xs = [1.0, 2.0, 3.0, 2.0, 3.0, math.nan]
    ys = [5.0, 4.0, 1.0, 3.0, 1.0, 9.0]
    assert pareto_mask(xs, ys) == [True, True, True, False, True, False]  # ties both stay; NaN never


def test_config_of() -> None:
    assert config_of("tiny.bf16.draft-exact-k4.short.c16") == "tiny.bf16.draft-exact-k4"
    assert config_of("gemma4_31b_mtp_nt8_coding_c1") == "gemma4_31b_mtp_nt8_coding_c1"


def test_speed_accuracy_frontier_per_benchmark(rows: pd.DataFrame) -> None:
    acc = [score("ar", "ar", "mcq", 0.80), score("draft-k4", "draft_model", "mcq", 0.80),
           score("draft-k1", "draft_model", "mcq", 0.78), score("noisy-k4", "draft_model", "mcq", 0.82),
           score("ar", "ar", "ko", 0.70), score("draft-k4", "draft_model", "ko", 0.60)]
    pts = speed_accuracy(pd.concat([rows, normalize(pd.DataFrame(acc))], ignore_index=True))
    mcq = pts[pts["benchmark"] == "mcq"].set_index("config")
    assert mcq.loc["m.bf16.draft-k4", "tok_s"] == 210.0  # tok/s at c=1, not c=16
    assert mcq["frontier"].to_dict() == {"m.bf16.ar": False, "m.bf16.draft-k4": True, "m.bf16.draft-k1": False,
                                         "m.bf16.noisy-k4": True}
    ko = pts[pts["benchmark"] == "ko"].set_index("config")
    assert ko["frontier"].all()  # AR is more accurate, draft faster: both on the frontier
    assert set(pts["stage"]) == {"full"}


def test_speed_accuracy_falls_back_to_smoke_scores(rows: pd.DataFrame) -> None:
    smoke = [dict(score("ar", "ar", "mcq", 0.6, n=5), measurement="smoke")]
    pts = speed_accuracy(pd.concat([rows, normalize(pd.DataFrame(smoke))], ignore_index=True))
    assert pts["stage"].tolist() == ["smoke"] and pts["frontier"].tolist() == [True]


def test_user_vs_total_frontier(rows: pd.DataFrame) -> None:
    pts = user_vs_total(rows).set_index("cell_id")
    assert pts.loc["m.bf16.ar.short.c16", "per_user_tok_s"] == pytest.approx(500 / 16)
    assert pts.loc["m.bf16.ar.short.c16", "total_tok_s"] == 500
    front = set(pts.index[pts["frontier"]])
    # c=1: the fastest single user (draft k4, 210) ; c=16: the highest total (ngram, 700)
    assert front == {"m.bf16.draft-k4.short.c1", "m.bf16.ngram-k4.short.c16"}


def test_report_shows_curves_and_frontiers(rows: pd.DataFrame, tmp_path: Path) -> None:
    acc = normalize(pd.DataFrame([score("ar", "ar", "mcq", 0.8), score("draft-k4", "draft_model", "mcq", 0.8)]))
    d = build(pd.concat([rows, acc], ignore_index=True))
    text = terminal_report(d, width=160)
    assert "k sweep: tok/s against k" in text and "Best k" in text and "★" in text
    assert "Pareto: speed × accuracy" in text and "Pareto: per-user × total tok/s" in text
    best = text.split("Best k\n")[1].splitlines()
    assert any(line.split()[:5] == ["draft", "short", "1", "all", "4"] for line in best), best
    md, pngs = markdown_report(d, tmp_path / "r.md")
    names = {p.name for p in pngs}
    assert {"k_sweep.png", "pareto_speed_accuracy.png", "pareto_user_total.png"} <= names
    body = md.read_text()
    assert "![k sweep: tok/s against k](r_plots/k_sweep.png)" in body and "◆ frontier" in body
