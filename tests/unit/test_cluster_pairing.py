"""Honest pairing (#15 item 4): a speed-up or an accuracy Δ uses an AR baseline measured on the same device only."""

from __future__ import annotations

from pathlib import Path

from console.cluster import pairing
from console.cluster.pairing import ACCURACY_KEYS, SPEED_KEYS, by_device, pair_all, pair_with_baseline

H100 = "NVIDIA H100 80GB HBM3"
PCIE = "NVIDIA H100 PCIe"
A100 = "NVIDIA A100-SXM4-80GB"


def speed(technique: str, device: str | None, run: str = "r1", ts: str = "2026-12-01T10:00:00", **kw):
    row = {"run_id": run, "cell_id": f"m.fp8.{technique}.short.c1@{device}", "model": "m", "precision": "fp8",
           "technique": technique, "context": "short", "concurrency": 1, "category": None,
           "device_name": device, "timestamp": ts, "tok_s_median": 100.0}
    row.update(kw)
    return row


def test_keys_are_the_results_layers_keys():
    from console.results import derive

    assert SPEED_KEYS == derive.SPEED_KEYS and ACCURACY_KEYS == derive.ACCURACY_KEYS and pairing.AR == derive.AR


def test_same_device_pairs_and_another_device_never_does():
    mtp_h100, mtp_a100 = speed("mtp", H100), speed("mtp", A100)
    ar_h100 = speed("ar", H100)
    rows = [mtp_h100, mtp_a100, ar_h100]
    got = {p.row["cell_id"]: p for p in pair_all(rows)}
    assert got[mtp_h100["cell_id"]].baseline is ar_h100
    lone = got[mtp_a100["cell_id"]]
    assert lone.baseline is None
    assert "no AR baseline on NVIDIA A100-SXM4-80GB" in lone.note and H100 in lone.note


def test_rays_h100_label_is_not_enough_sxm_and_pcie_do_not_pair():
    assert pair_with_baseline(speed("mtp", PCIE), [speed("ar", H100)]).baseline is None


def test_names_fold_case_spacing_and_vendor():
    assert pair_with_baseline(speed("mtp", "nvidia  h100 80GB HBM3"), [speed("ar", "H100 80GB HBM3")]).baseline


def test_unknown_device_pairs_only_with_unknown_and_says_so():
    p = pair_with_baseline(speed("mtp", None), [speed("ar", H100), speed("ar", "")])
    assert p.baseline is not None and p.baseline["device_name"] == "" and "device unknown" in p.note
    assert pair_with_baseline(speed("mtp", H100), [speed("ar", None)]).baseline is None


def test_same_run_first_then_newest_and_keys_must_agree():
    here = speed("ar", H100, run="r1", ts="2026-01-01")
    newer = speed("ar", H100, run="r0", ts="2026-12-31")
    other_ctx = speed("ar", H100, run="r1", context="8k")
    assert pair_with_baseline(speed("mtp", H100), [newer, here, other_ctx]).baseline is here
    p = pair_with_baseline(speed("mtp", H100, run="r2"), [here, newer])
    assert p.baseline is newer and p.note == "baseline from run r0"


def test_baseline_model_for_diffusion_and_accuracy_keys():
    diff = {"run_id": "r", "model": "dg", "baseline_model": "g26", "precision": "fp8", "technique": "diffusion",
            "benchmark": "gpqa", "framework": "lm-eval", "device_name": H100}
    ar = {"run_id": "r", "model": "g26", "precision": "fp8", "technique": "ar", "benchmark": "gpqa",
          "framework": "lm-eval", "device_name": H100}
    assert pair_with_baseline(diff, [ar], ACCURACY_KEYS).baseline is ar
    assert pair_with_baseline(diff, [{**ar, "framework": "inspect"}], ACCURACY_KEYS).baseline is None


def test_mixed_fleet_is_reported_per_device():
    rows = [speed("ar", H100), speed("mtp", "nvidia h100 80gb hbm3"), speed("ar", A100)]
    groups = by_device(rows)
    assert list(groups) == [H100, A100] and len(groups[H100]) == 2


# --- the results layer adopts the rule ------------------------------------------------------------------------
STUDY = Path(__file__).resolve().parents[1] / "fixtures" / "study" / "study_tables.csv"


def test_results_tables_never_pair_across_devices():
    from console.results.columns import read_csv
    from console.results.derive import accuracy_delta_table, speedup_table

    study = read_csv(STUDY)
    assert speedup_table(study)["speedup"].notna().sum() == 7  # 5 MTP + 2 diffusion, all on the study's H100
    moved = study.copy()
    moved.loc[moved["technique"] == "ar", "device_name"] = A100
    speed = speedup_table(moved)
    assert speed["speedup"].isna().all()
    assert speed["note"].str.contains(f"on {H100} \\(one exists on {A100}: not paired", regex=True).all()
    acc = accuracy_delta_table(moved)
    assert acc["delta"].isna().all() and acc["note"].str.contains("not paired across devices").all()
    folded = study.copy()
    folded.loc[folded["technique"] == "ar", "device_name"] = "nvidia  h100 80gb hbm3"
    assert speedup_table(folded)["speedup"].notna().sum() == 7
