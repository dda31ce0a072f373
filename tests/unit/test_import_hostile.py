"""#16 items 7 and 8: imports never corrupt the master table; streaming latency percentiles are kept."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from console.cli import main
from console.results.columns import merge_master, read_csv, write_csv

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "tests" / "fixtures" / "imports" / "vllm_bench"
GOOD = BENCH / "gemma4_31b_mtp_nt8_coding_c1.json"


def _import(files: list[Path], out: Path, capsys) -> tuple[int, str, str]:
    code = main(["import", "vllm-bench", *map(str, files), "--out", str(out)])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


@pytest.mark.parametrize("value", [None, "fast", float("nan"), -5.0, float("inf"), 0, True],
                         ids=["null", "string", "nan", "negative", "inf", "zero", "bool"])
def test_a_bad_output_throughput_never_replaces_a_good_row(tmp_path, capsys, value) -> None:
    out = tmp_path / "master.csv"
    assert _import([GOOD], out, capsys)[0] == 0
    before = out.read_bytes()
    bad = tmp_path / GOOD.name
    data = json.loads(GOOD.read_text())
    data["output_throughput"] = value
    bad.write_text(json.dumps(data))  # json writes NaN / Infinity, which `vllm bench` could too
    code, stdout, err = _import([bad], out, capsys)
    assert code == 2 and "replaced" not in stdout
    assert str(bad) in err and "`output_throughput`" in err and "nothing was imported" in err
    assert out.read_bytes() == before


@pytest.mark.parametrize("key,value", [("spec_decode_acceptance_length", "long"), ("median_ttft_ms", -1),
                                       ("spec_decode_per_position_acceptance_rates", [0.5, 7]),
                                       ("max_concurrency", 0)])
def test_other_kept_figures_are_checked_too(tmp_path, capsys, key, value) -> None:
    bad = tmp_path / GOOD.name
    data = json.loads(GOOD.read_text())
    data[key] = value
    bad.write_text(json.dumps(data))
    code, _, err = _import([bad], tmp_path / "m.csv", capsys)
    assert code == 2 and f"`{key.split('[')[0]}" in err and not (tmp_path / "m.csv").exists()


@pytest.mark.parametrize("text,kind", [("[1, 2]", "a number"), ("3", "a number"), ("null", "null"),
                                       ('"x"', "a string"), ("[[]]", "a list")])
def test_top_level_json_of_the_wrong_shape_is_a_clear_error(tmp_path, capsys, text, kind) -> None:
    bad = tmp_path / "r.json"
    bad.write_text(text)
    code, _, err = _import([bad], tmp_path / "m.csv", capsys)
    assert code == 2 and "Traceback" not in err
    assert f"the JSON is {kind}, not an object" in err and str(bad) in err


def test_a_list_of_bench_objects_is_read(tmp_path, capsys) -> None:
    both = tmp_path / "gemma4_31b_mtp_nt8_coding_c1.json"
    both.write_text(json.dumps([json.loads(GOOD.read_text())]))
    assert _import([both], tmp_path / "m.csv", capsys)[0] == 0


@pytest.mark.parametrize("content", [b'{"a": 1}', b"not,a,master\n1,2,3\n", b"\x89PNG\r\n\x00\x00"],
                         ids=["json", "other-csv", "binary"])
def test_out_that_is_not_a_master_csv_is_refused(tmp_path, capsys, content) -> None:
    out = tmp_path / "results.json"
    out.write_bytes(content)
    code, _, err = _import([GOOD], out, capsys)
    assert code == 2 and "is not a master CSV" in err
    assert out.read_bytes() == content


def test_rows_without_key_columns_are_kept_not_collapsed(tmp_path, capsys) -> None:
    out = tmp_path / "master.csv"
    hand = pd.DataFrame([{"model": "a", "measurement": "speed", "tok_s_median": 1.0},
                         {"model": "b", "measurement": "speed", "tok_s_median": 2.0},
                         {"model": "c", "run_id": "r", "tok_s_median": 3.0}])
    write_csv(hand, out)
    assert _import([GOOD], out, capsys)[0] == 0
    master = read_csv(out)
    assert set(master["model"].dropna()) >= {"a", "b", "c"}
    assert len(master) == 3 + 2
    merged = merge_master([hand], existing_csv=out)  # the same hand rows again: kept side by side, not merged
    assert len(merged.frame) == 5 + 3 and merged.replaced == 0


def test_latency_percentiles_are_kept_and_labelled_streaming(tmp_path, capsys) -> None:
    out = tmp_path / "master.csv"
    data = json.loads(GOOD.read_text()) | {"p90_ttft_ms": 12.5, "median_ttft_ms": 9.5, "p99_itl_ms": 31.0}
    f = tmp_path / GOOD.name
    f.write_text(json.dumps(data))
    assert _import([f], out, capsys)[0] == 0
    speed = read_csv(out).query("measurement == 'speed'").iloc[0]
    assert (speed["ttft_ms_median"], speed["ttft_ms_p99"], speed["itl_ms_p99"], speed["tpot_ms_median"]) == \
        (9.5, 14.0, 31.0, 9.0)
    assert speed["latency_source"] == "streaming" and speed["tok_s_source"] == "streaming-import"
    assert json.loads(speed["latency_ms"])["p90_ttft_ms"] == 12.5


def test_bad_json_in_lm_eval_names_the_file(tmp_path, capsys) -> None:
    folder = tmp_path / "lm"
    folder.mkdir()
    (folder / "results_x.json").write_text("[1, 2")
    code = main(["import", "lm-eval", str(folder), "--out", str(tmp_path / "m.csv")])
    err = capsys.readouterr().err
    assert code == 2 and "results_x.json:1: not JSON" in err
    (folder / "results_x.json").write_text("3")
    assert main(["import", "lm-eval", str(folder), "--out", str(tmp_path / "m.csv")]) == 2
    assert "not an lm-eval results file" in capsys.readouterr().err
    shutil.rmtree(folder)
