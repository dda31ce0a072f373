"""A model declares its precisions once, as a table, and they sweep as an axis (#11 §4)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from console.experiment.loader import SpecError, load_experiment
from console.serve.argv import serving_args

ROOT = Path(__file__).resolve().parents[2]
FULL = ROOT / "experiments/study-full.toml"

MODEL = """\
[experiment]
name = "p"

[[models]]
id = "m"
path = "org/m"
total_params_b = 8
serving = {{ kv_cache_dtype = "fp8" }}
drafters = {{ mtp = "org/m-draft" }}
{extra}
[models.precisions]
bf16 = {{ bytes_per_param = 2 }}
fp8 = {{ quantization = "fp8", bytes_per_param = 1 }}
awq = {{ path = "org/m-AWQ", bytes_per_param = 0.5, drafters = {{ mtp = "org/m-draft-awq" }} }}

[[techniques]]
id = "ar"
method = "ar"

[[techniques]]
id = "mtp"
method = "mtp"
k = 2

[workload]
contexts = [{{ label = "s", tokens = 8 }}]
concurrency = [1]
{cells}
"""


def load(write_toml, extra: str = "", cells: str = ""):  # type: ignore[no-untyped-def]
    return load_experiment(write_toml(MODEL.format(extra=extra, cells=cells)))


def test_each_precision_is_a_model_variant(write_toml) -> None:
    cells = {c.id: c for c in load(write_toml).cells}
    assert sorted(cells) == sorted(f"m.{p}.{t}.s.c1" for p in ("bf16", "fp8", "awq") for t in ("ar", "mtp"))
    fp8, awq, bf16 = cells["m.fp8.ar.s.c1"], cells["m.awq.mtp.s.c1"], cells["m.bf16.ar.s.c1"]
    assert (fp8.model.bytes_per_param, awq.model.bytes_per_param, bf16.model.bytes_per_param) == (1, 0.5, 2)
    args = serving_args(fp8)
    assert args[args.index("--quantization") + 1] == "fp8" and args[args.index("--model") + 1] == "org/m"
    args = serving_args(awq)
    assert "--quantization" not in args and args[args.index("--model") + 1] == "org/m-AWQ"
    assert awq.drafter == "org/m-draft-awq" and cells["m.fp8.mtp.s.c1"].drafter == "org/m-draft"
    assert all(c.serving.kv_cache_dtype == "fp8" for c in cells.values())  # the model's serving still applies
    assert len({c.serving_key for c in cells.values()}) == 6


def test_matrix_precisions_axis_and_rules(write_toml) -> None:
    exp = load(write_toml, cells='\n[[cells.matrix]]\nprecisions = ["fp8", "awq"]\ntechniques = ["mtp"]\n'
                                 '\n[[overrides]]\nmatch = { precision = "awq" }\nserving = { max_num_seqs = 8 }\n')
    assert sorted(c.id for c in exp.cells) == ["m.awq.mtp.s.c1", "m.fp8.mtp.s.c1"]
    assert {c.id: c.serving.max_num_seqs for c in exp.cells} == {"m.awq.mtp.s.c1": 8, "m.fp8.mtp.s.c1": None}
    with pytest.raises(SpecError, match="no chosen model has precision 'int4'"):
        load(write_toml, cells='\n[[cells.matrix]]\nprecisions = ["int4"]\n')


@pytest.mark.parametrize("extra, message", [
    ('precision = "fp8"\nbytes_per_param = 1', "either `precision` + `bytes_per_param` or a `precisions` table"),
])
def test_table_or_single_precision_not_both(write_toml, extra: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        load(write_toml, extra=extra)
    assert message in str(info.value.problems[0])


def test_a_model_without_either_says_what_to_set(write_toml) -> None:
    text = ('[experiment]\nname = "p"\n[[models]]\nid = "m"\npath = "x"\ntotal_params_b = 1\n'
            '[[techniques]]\nid = "ar"\nmethod = "ar"\n')
    with pytest.raises(SpecError) as info:
        load_experiment(write_toml(text))
    assert "set precision and bytes_per_param" in str(info.value.problems[0])


def test_study_full_is_the_whole_campaign_in_150_lines() -> None:
    assert len(FULL.read_text(encoding="utf-8").splitlines()) <= 150
    exp = load_experiment(FULL)
    assert len(exp.cells) >= 100
    precisions = Counter(c.model.precision for c in exp.cells)
    assert {"bf16", "fp8", "int8", "qat", "gptq", "awq", "nvfp4"} <= set(precisions)
    assert {c.method for c in exp.cells} == {"ar", "mtp", "dflash", "diffusion"}
    assert any(c.context.tokens >= 240_000 and c.serving.max_model_len >= 250_000 for c in exp.cells)  # 256K
    assert {"exaone45-32b", "nex-n2", "vibethinker-3b"} <= {c.model.id for c in exp.cells}
    diffusion = next(c for c in exp.cells if c.method == "diffusion" and c.model.precision == "fp8")
    assert "--quantization" not in serving_args(diffusion) and "FP8" in diffusion.model.path
    text = FULL.read_text(encoding="utf-8")
    for line in text.splitlines():  # every hub id outside the write-ups is marked
        if ("path = " in line or "drafters = " in line) and "google/gemma-4-" not in line and "z-lab/" not in line:
            assert "(unverified)" in line, line
