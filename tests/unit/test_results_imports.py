"""Importers: vllm bench serve JSON, lm-eval results, inspect logs — and the `specdeck import` command."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from console.cli import main
from console.results.columns import read_csv
from console.results.derive import accuracy_delta_table
from console.results.imports import (
    ImportFormatError,
    import_inspect,
    import_lm_eval,
    import_vllm_bench,
    inspect_items,
    lm_eval_items,
)
from console.results.naming import parse_name

IMP = Path(__file__).resolve().parents[1] / "fixtures" / "imports"
BENCH = IMP / "vllm_bench"


@pytest.fixture(scope="module")
def lm_rows() -> pd.DataFrame:
    return import_lm_eval(IMP / "lm_eval")


@pytest.fixture(scope="module")
def inspect_rows() -> pd.DataFrame:
    return import_inspect(IMP / "inspect")


@pytest.mark.parametrize("stem, expect", [
    ("gemma4_31b_mtp_nt8_summarization_c1", ("gemma4_31b", "mtp", 8, "summarization", 1, "gemma4_31b_mtp_nt8")),
    ("gemma4_31b_baseline_summarization_c1", ("gemma4_31b", "ar", None, "summarization", 1, "gemma4_31b_baseline")),
    ("gemma4_26b_dflash_nt15_question_answering_c16",
     ("gemma4_26b", "dflash", 15, "question_answering", 16, "gemma4_26b_dflash_nt15")),
    ("tiny-mtp_k4", ("tiny", "mtp", 4, None, None, "tiny-mtp_k4")),
    ("qwen3", ("qwen3", None, None, None, None, None)),
])
def test_parse_name(stem: str, expect: tuple[object, ...]) -> None:
    p = parse_name(stem)
    assert (p.model, p.technique, p.k, p.category, p.concurrency, p.variant) == expect


def test_vllm_bench_identity_from_file_name() -> None:
    rows = import_vllm_bench([BENCH / "gemma4_31b_mtp_nt8_summarization_c1.json",
                              BENCH / "gemma4_31b_baseline_summarization_c1.json"])
    speed = rows[rows["measurement"] == "speed"].set_index("technique")
    assert set(speed.index) == {"mtp", "ar"}
    mtp = speed.loc["mtp"]
    assert (mtp["model"], mtp["k"], mtp["category"], mtp["concurrency"]) == ("google/gemma-4-31B-it", 8,
                                                                              "summarization", 1)
    assert mtp["cell_id"] == "gemma4_31b_mtp_nt8" and mtp["tok_s_source"] == "streaming-import"
    # output_throughput, not the misleading peak (max_output_tokens_per_s was 32.0 with MTP vs 42.0 without)
    assert mtp["tok_s_median"] > 80 and speed.loc["ar", "tok_s_median"] < 42
    assert json.loads(mtp["serving_args"])["num_prompts"] == "-1"
    acc = rows[rows["measurement"] == "acceptance"].iloc[0]
    assert acc["acceptance_length"] == pytest.approx(4.05)
    assert json.loads(acc["per_position"])[0] == 0.8
    assert acc["draft_acceptance_rate"] == pytest.approx(0.38125)  # vLLM writes percent


def test_vllm_bench_metadata_wins_over_the_file_name(tmp_path: Path) -> None:
    data = json.loads((BENCH / "gemma4_26b_dflash_nt15_coding_c16.json").read_text())
    (tmp_path / "run_0007.json").write_text(json.dumps(data))
    row = import_vllm_bench([tmp_path / "run_0007.json"]).iloc[0]
    assert (row["technique"], row["k"], row["category"], row["concurrency"]) == ("dflash", 15, "coding", 16)
    assert row["device_name"] == "NVIDIA H100 80GB HBM3"
    assert json.loads(row["serving_args"])["max_model_len"] == "32768"


def test_vllm_bench_no_spec_fields_no_technique_is_ar_and_append_files(tmp_path: Path) -> None:
    base = json.loads((BENCH / "gemma4_31b_baseline_coding_c1.json").read_text())
    second = dict(base, max_concurrency=4, date="20260512-120000")
    (tmp_path / "appended.json").write_text(json.dumps(base) + "\n" + json.dumps(second) + "\n")
    rows = import_vllm_bench([tmp_path / "appended.json"])
    assert rows["technique"].tolist() == ["ar", "ar"] and rows["concurrency"].tolist() == [1, 4]
    assert (rows["measurement"] == "speed").all()


def test_vllm_bench_rejects_other_json(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text('{"hello": 1}')
    with pytest.raises(ImportFormatError, match="output_throughput"):
        import_vllm_bench([tmp_path / "x.json"])


def test_lm_eval_import_reads_flexible_extract_and_samples(lm_rows: pd.DataFrame) -> None:
    rows = lm_rows.set_index("technique")
    ar, mtp = rows.loc["ar"], rows.loc["mtp"]
    assert (ar["score"], ar["n"], ar["framework"], ar["benchmark"]) == (pytest.approx(8 / 12), 12, "lm-eval",
                                                                        "mcq_tiny")
    assert ar["stderr"] == pytest.approx(0.1421, abs=1e-4)
    assert (mtp["model"], mtp["k"], mtp["cell_id"]) == ("tiny", 4, "tiny-mtp_k4")
    assert ar["blanks"] == 0 and ar["extraction_failures"] == 0
    assert "flexible-extract" in ar["notes"]


def test_inspect_import_reads_metrics_metadata_and_truncations(inspect_rows: pd.DataFrame) -> None:
    rows = inspect_rows.set_index("technique")
    assert rows.loc["ar", "score"] == pytest.approx(8 / 12) and rows.loc["mtp", "score"] == pytest.approx(7 / 12)
    assert rows.loc["mtp", "cell_id"] == "tiny-mtp_k4" and rows.loc["mtp", "model"] == "tiny"
    assert rows.loc["mtp", "truncations"] == 1 and rows.loc["ar", "truncations"] == 0
    assert (rows["framework"] == "inspect").all()


def test_paired_mcnemar_on_imported_items(lm_rows: pd.DataFrame, inspect_rows: pd.DataFrame) -> None:
    rows = pd.concat([lm_rows, inspect_rows], ignore_index=True)
    items = pd.concat([lm_eval_items(IMP / "lm_eval"), inspect_items(IMP / "inspect")], ignore_index=True)
    table = accuracy_delta_table(rows, items).set_index("framework")
    for fw in ("lm-eval", "inspect"):
        r = table.loc[fw]
        assert (r["paired_n"], r["paired_b"], r["paired_c"]) == (12, 3, 2)
        assert r["paired_p"] == pytest.approx(1.0)
        assert r["delta"] == pytest.approx(-1 / 12) and bool(r["within_noise"])


def test_import_command_round_trip_and_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "master.csv"
    files = [str(p) for p in sorted(BENCH.glob("gemma4_31b_*_c1.json"))]
    assert main(["import", "vllm-bench", *files, "--out", str(out), "--set", "precision=bf16"]) == 0
    assert "10 added, 0 replaced" in capsys.readouterr().out
    assert main(["import", "vllm-bench", *files, "--out", str(out), "--set", "precision=bf16"]) == 0
    assert "0 added, 10 replaced, 10 rows in total" in capsys.readouterr().out
    assert main(["import", "lm-eval", str(IMP / "lm_eval"), "--out", str(out),
                 "--items-out", str(tmp_path / "items.csv")]) == 0
    assert "2 added" in capsys.readouterr().out
    master = read_csv(out)
    assert len(master) == 12 and set(master["source"]) == {"vllm-bench", "lm-eval"}
    assert (master.loc[master["source"] == "vllm-bench", "precision"] == "bf16").all()
    assert len(pd.read_csv(tmp_path / "items.csv")) == 24


def test_import_command_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["import", "vllm-bench", str(tmp_path / "nope.json"), "--out", str(tmp_path / "m.csv")]) == 2
    assert "no such file" in capsys.readouterr().err
    shutil.copy(BENCH / "gemma4_31b_baseline_coding_c1.json", tmp_path / "a.json")
    assert main(["import", "vllm-bench", str(tmp_path / "a.json"), "--out", str(tmp_path / "m.csv"),
                 "--set", "colour=red"]) == 2
    assert "not a master column" in capsys.readouterr().err
