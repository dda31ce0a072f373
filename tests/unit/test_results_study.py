"""The study's and the thread's published numbers, reproduced by the results layer."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from console.results.columns import read_csv
from console.results.derive import accuracy_delta_table, delta_summary, speedup_table
from console.results.guide import GuideRuleError, workload_guide
from console.results.imports import import_vllm_bench
from console.results.report import collapse_categories
from console.results.roofline import ceiling_tok_s, lookup_bandwidth, roofline_table, tomllib

FIX = Path(__file__).resolve().parents[1] / "fixtures"
STUDY = FIX / "study" / "study_tables.csv"


@pytest.fixture(scope="module")
def study() -> pd.DataFrame:
    return read_csv(STUDY)


def test_mtp_speedups_match_the_study(study: pd.DataFrame) -> None:
    table = speedup_table(study)
    mtp = table[table["technique"] == "mtp"].set_index("model")["speedup"].round(2).to_dict()
    assert mtp == {"gemma-4-12b": 1.70, "gemma-4-26b-a4b": 1.72, "gemma-4-31b": 2.62,
                   "qwen3.6-27b": 1.86, "qwen3.6-35b-a3b": 1.43}
    assert (table.loc[table["technique"] == "mtp", "baseline_tok_s"].tolist() == [117, 226, 68, 79, 217])


def test_diffusion_is_compared_with_its_ar_analogue(study: pd.DataFrame) -> None:
    table = speedup_table(study)
    diff = table[(table["technique"] == "diffusion") & (table["context"] == "short")].iloc[0]
    assert diff["baseline_cell_id"] == "gemma-4-26b-a4b.fp8.ar.short.c1"
    assert round(diff["speedup"], 1) == 3.8  # "roughly 4x"


def test_mean_delta_and_noise_verdicts_match_the_study(study: pd.DataFrame) -> None:
    deltas = accuracy_delta_table(study)
    mtp = deltas[deltas["technique"] == "mtp"]
    assert len(mtp) == 10
    assert mtp["within_noise"].all()
    assert ((mtp["se"] > 0.02) & (mtp["se"] < 0.04)).all()  # "per-cell standard error around 0.03"
    summary = delta_summary(deltas).set_index(["technique", "framework"])
    assert round(summary.loc[("mtp", "lm-eval"), "mean_delta"], 3) == -0.011
    assert round(summary.loc[("mtp", "inspect"), "mean_delta"], 3) == 0.005
    assert summary.loc[("mtp", "lm-eval"), "within_noise"] == 5


def test_largest_mtp_deviations_flip_sign(study: pd.DataFrame) -> None:
    d = accuracy_delta_table(study)
    d = d[d["technique"] == "mtp"]
    assert round(d["delta"].max(), 3) == 0.030 and round(d["delta"].min(), 3) == -0.031


def test_diffusion_gpqa_loss_has_no_verdict_without_n(study: pd.DataFrame) -> None:
    d = accuracy_delta_table(study)
    row = d[(d["technique"] == "diffusion") & (d["benchmark"] == "gpqa_diamond")].iloc[0]
    assert round(row["delta"], 2) == -0.20
    assert pd.isna(row["within_noise"]) and row["verdict"].startswith("n/a")


def test_missing_baseline_is_nan_with_a_note(study: pd.DataFrame) -> None:
    lone = study[(study["technique"] == "mtp") & (study["measurement"] == "speed")].copy()
    table = speedup_table(lone)
    assert table["speedup"].isna().all()
    assert table["note"].str.startswith("no AR baseline").all()


def test_roofline_known_example(study: pd.DataFrame) -> None:
    bw, key = lookup_bandwidth("NVIDIA H100 80GB HBM3")
    assert (bw, key) == (3.35, "H100 80GB HBM3")
    assert lookup_bandwidth("NVIDIA H100 PCIe")[0] == 2.0
    assert lookup_bandwidth("NVIDIA H200")[0] == 4.8
    assert math.isnan(lookup_bandwidth("NVIDIA GH200 480GB")[0])  # whole words only: not an H200
    assert ceiling_tok_s(3.35, 31, 1) == pytest.approx(108.06, abs=0.01)
    roof = roofline_table(study).set_index("cell_id")
    assert roof.loc["gemma-4-31b.fp8.ar.short.c1", "pct_of_ceiling"] == pytest.approx(62.9, abs=0.05)
    assert "above the AR ceiling" in roof.loc["gemma-4-31b.fp8.mtp.short.c1", "note"]
    pcie = roofline_table(study, {"H100 80GB HBM3": 2.0}).set_index("cell_id")
    assert pcie.loc["gemma-4-31b.fp8.ar.short.c1", "ceiling_tok_s"] == pytest.approx(2e12 / 31e9)


def test_workload_guide_reproduces_the_study(study: pd.DataFrame) -> None:
    rules = tomllib.loads((FIX / "study" / "guide.toml").read_text())["guide"]
    guide = workload_guide(study, rules).set_index("workload")
    hard = guide.loc["Hard reasoning (science / math)"]
    assert (hard["model"], hard["technique"]) == ("gemma-4-31b", "mtp")
    assert "within noise" in hard["reason"]
    bal = guide.loc["General speed-accuracy balance"]
    assert (bal["model"], bal["technique"]) == ("gemma-4-26b-a4b", "mtp")
    kor = guide.loc["Korean understanding"]
    assert (kor["model"], kor["technique"]) == ("gemma-4-26b-a4b", "ar")
    bulk = guide.loc["Low-latency bulk (accuracy loss acceptable)"]
    assert (bulk["technique"], bulk["tok_s"]) == ("diffusion", 864)


def test_guide_balance_and_rule_errors(study: pd.DataFrame) -> None:
    g = workload_guide(study, [{"name": "b", "objective": "balance", "benchmark": "gpqa_diamond",
                                "framework": "lm-eval", "technique": ["ar", "mtp"]}])
    assert g.iloc[0]["model"] == "gemma-4-26b-a4b"
    with pytest.raises(GuideRuleError) as err:
        workload_guide(study, [{"name": "x", "objective": "fastest"},
                               {"name": "y", "objective": "max_speed_with_max_loss", "benchmark": "gpqa_diamond",
                                "colour": "red"}])
    msg = str(err.value)
    assert "must be one of" in msg and "needs `max_loss`" in msg and "unknown key(s) colour" in msg


def test_guide_long_documents_from_niah_rows() -> None:
    rows = pd.DataFrame([
        {"run_id": "r", "cell_id": "a", "model": "m", "technique": "ar", "measurement": "niah",
         "context": "256k", "benchmark": "niah", "n": 3, "score": 1.0},
        {"run_id": "r", "cell_id": "d", "model": "dm", "technique": "diffusion", "measurement": "niah",
         "context": "256k", "benchmark": "niah", "n": 3, "score": 2 / 3},
    ])
    g = workload_guide(rows, [{"name": "Long documents", "objective": "max_score", "measurement": "niah",
                               "benchmark": "niah", "context": "256k"}])
    assert g.iloc[0]["technique"] == "ar"


THREAD_C1 = {  # (model, technique) -> (tok/s, speed-up) at concurrency 1
    ("google/gemma-4-31B-it", "mtp"): (125.3, 3.11), ("google/gemma-4-31B-it", "dflash"): (122.1, 3.03),
    ("google/gemma-4-26B-A4B-it", "mtp"): (264.2, 1.49), ("google/gemma-4-26B-A4B-it", "dflash"): (306.4, 1.73),
}


def test_thread_speedups_through_the_vllm_bench_import() -> None:
    rows = import_vllm_bench(sorted((FIX / "imports" / "vllm_bench").glob("*.json")))
    table = speedup_table(collapse_categories(rows))
    c1 = table[table["concurrency"] == 1].set_index(["model", "technique"])
    for key, (tok, ratio) in THREAD_C1.items():
        assert round(c1.loc[key, "tok_s"], 1) == tok
        assert round(c1.loc[key, "speedup"], 2) == ratio
    assert c1["baseline_tok_s"].round(1).tolist().count(40.3) == 2
    assert c1["baseline_tok_s"].round(1).tolist().count(177.1) == 2
    c16 = table[table["concurrency"] == 16].set_index(["model", "technique"])["tok_s"].round(0).to_dict()
    assert c16[("google/gemma-4-31B-it", "mtp")] == 953 and c16[("google/gemma-4-26B-A4B-it", "dflash")] == 1957


def test_guide_keeps_two_techniques_of_one_method_and_k_apart() -> None:
    """draft-exact-k4 and draft-noisy-k4 are both draft_model k=4: the guide picks the faster one by name, at its
    own tok/s (it reported their mean, 31.8 tok/s, as 'draft_model k=4' in the demo's report)."""
    def speed(tech_id: str, tok_s: float) -> dict:
        return {"run_id": "r", "cell_id": f"wide.fp32.{tech_id}.short.c1", "model": "wide", "precision": "fp32",
                "technique": "draft_model", "k": 4, "measurement": "speed", "context": "short",
                "concurrency": 1, "tok_s_median": tok_s}
    rows = pd.DataFrame([speed("draft-exact-k4", 37.3), speed("draft-noisy-k4", 26.3)])
    g = workload_guide(rows, [{"name": "Fastest", "objective": "max_speed"}]).iloc[0]
    assert g["tok_s"] == pytest.approx(37.3)
    assert g["best"] == "wide fp32 draft_model k=4 (draft-exact-k4)"


def test_equal_perfect_scores_are_within_noise() -> None:
    """The demo's toy scores 1.000 with AR and with every drafter: SE = 0 on both sides, so |Δ| < 2·SE_Δ cannot
    hold, and the report said "outside noise" for a Δ of +0.000. A Δ of 0 is within noise; a real gap is not."""
    def acc(tech: str, score: float) -> dict:
        return {"run_id": "r", "cell_id": f"wide.fp32.{tech}.short.c1", "model": "wide", "precision": "fp32",
                "technique": "ar" if tech == "ar" else "draft_model", "k": None if tech == "ar" else 4,
                "measurement": "accuracy", "context": "short", "concurrency": 1, "benchmark": "toy-mcq",
                "framework": "builtin", "score": score, "n": 20}
    table = accuracy_delta_table(pd.DataFrame([acc("ar", 1.0), acc("draft-exact-k4", 1.0)]))
    assert table.iloc[0]["verdict"] == "within noise" and bool(table.iloc[0]["within_noise"])
    table = accuracy_delta_table(pd.DataFrame([acc("ar", 1.0), acc("draft-exact-k4", 0.5)]))
    assert table.iloc[0]["verdict"] == "outside noise"
