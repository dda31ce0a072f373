"""The master schema: normalization, CSV round trip, merge de-duplication, and the documented reference."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pandas.testing as pdt

from console.results.columns import (
    COLUMNS,
    NAMES,
    NATURAL_KEY,
    column_reference_markdown,
    empty_frame,
    merge_master,
    normalize,
    read_csv,
    write_csv,
)

ROOT = Path(__file__).resolve().parents[2]


def _row(**kw: object) -> dict[str, object]:
    base: dict[str, object] = {"run_id": "r1", "cell_id": "tiny.bf16.ar.short.c1", "model": "tiny",
                               "technique": "ar", "context": "short", "concurrency": 1, "measurement": "speed",
                               "tok_s_median": 330.5, "tok_s_source": "nonstreaming",
                               "timestamp": "2026-11-23T10:00:00Z"}
    base.update(kw)
    return base


def test_schema_has_the_required_columns() -> None:
    required = {"run_id", "cell_id", "model", "total_params_b", "active_params_b", "bytes_per_param", "precision",
                "technique", "k", "context", "context_tokens", "concurrency", "category", "measurement",
                "tok_s_median", "tok_s_min", "tok_s_max", "tok_s_source", "acceptance_length", "per_position",
                "draft_acceptance_rate", "benchmark", "framework", "n", "score", "stderr", "blanks",
                "extraction_failures", "truncations", "serving_args", "vllm_version", "device_name", "source",
                "timestamp"}
    assert required <= set(NAMES)
    assert len(NAMES) == len(set(NAMES))
    assert all(c.meaning and c.dtype in ("string", "Float64", "Int64") for c in COLUMNS)
    assert set(NATURAL_KEY) <= set(NAMES)


def test_empty_frame_and_normalize_order_and_types() -> None:
    assert list(empty_frame().columns) == list(NAMES)
    df = normalize(pd.DataFrame([{"extra": 1, "k": "8", "concurrency": 16.0, "per_position": [0.8, 0.5],
                                  "serving_args": {"b": 2, "a": 1}, "timestamp": "2026-05-12 10:00:00",
                                  "model": "  m  ", "precision": ""}]))
    assert list(df.columns) == list(NAMES) + ["extra"]
    assert df.loc[0, "k"] == 8 and str(df["k"].dtype) == "Int64"
    assert df.loc[0, "per_position"] == "[0.8, 0.5]"
    assert df.loc[0, "serving_args"] == '{"a": 1, "b": 2}'
    assert df.loc[0, "timestamp"] == "2026-05-12T10:00:00+00:00"
    assert df.loc[0, "model"] == "m" and pd.isna(df.loc[0, "precision"])


def test_csv_round_trip_is_exact(tmp_path: Path) -> None:
    df = normalize(pd.DataFrame([
        _row(tok_s_median=0.1 + 0.2, per_position=[1 / 3, 0.25], serving_args={"max_model_len": 2048}),
        _row(measurement="accuracy", benchmark="mcq", framework="builtin", n=100, score=0.61, stderr=None,
             notes='quoted, "comma"'),
    ]))
    back = read_csv(write_csv(df, tmp_path / "m.csv"))
    pdt.assert_frame_equal(back, df)
    assert back.loc[0, "tok_s_median"] == 0.1 + 0.2


def test_merge_deduplicates_on_the_natural_key_keeping_the_newest(tmp_path: Path) -> None:
    csv = tmp_path / "master.csv"
    first = merge_master([pd.DataFrame([_row(), _row(concurrency=16, tok_s_median=700.0)])], csv)
    assert (first.added, first.replaced, len(first.frame)) == (2, 0, 2)
    write_csv(first.frame, csv)
    newer = _row(tok_s_median=340.0, timestamp="2026-11-23T11:00:00Z")
    older = _row(concurrency=16, tok_s_median=1.0, timestamp="2026-11-22T00:00:00Z")
    other = _row(run_id="r2")
    res = merge_master([pd.DataFrame([newer, older, other])], csv)
    assert (res.added, res.replaced, len(res.frame)) == (1, 1, 3)
    by = res.frame.set_index(["run_id", "concurrency"])["tok_s_median"]
    assert by[("r1", 1)] == 340.0 and by[("r1", 16)] == 700.0 and by[("r2", 1)] == 330.5


def test_merge_of_nothing_returns_the_existing_rows(tmp_path: Path) -> None:
    csv = write_csv(pd.DataFrame([_row()]), tmp_path / "m.csv")
    res = merge_master([empty_frame()], csv)
    assert (res.added, res.replaced, len(res.frame)) == (0, 0, 1)


def test_docs_column_reference_is_in_sync() -> None:
    doc = (ROOT / "docs" / "results.md").read_text()
    body = doc.split("<!-- columns:begin -->")[1].split("<!-- columns:end -->")[0]
    assert body.strip() == column_reference_markdown().strip(), (
        "docs/results.md is stale: paste column_reference_markdown() between the columns markers")
