"""console/methods.py is the one table of what specdeck knows per method; everything else reads it."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import get_args

import pytest

from console import methods
from console.bench.latency import StreamingThroughputRefused, check_streaming_throughput
from console.cli import main
from console.experiment import minimums, schema
from console.experiment.loader import SpecError, load_experiment
from console.experiment.minimums import cell_minimum, engine_findings
from console.results import plots
from console.results.naming import TECHNIQUES, parse_name
from console.serve.argv import diffusion_config, serving_args
from tests.experiment_text import context, experiment, model, workload

ROOT = Path(__file__).resolve().parents[2]
STUDY = ROOT / "experiments/study-h100.toml"


def test_schema_drafter_and_speculative_sets_come_from_the_table() -> None:
    assert set(get_args(schema.Method)) == set(methods.METHODS)
    assert schema.METHODS_NEEDING_DRAFTER == {"draft_model", "eagle", "eagle3", "medusa", "dflash"}
    assert schema.SPECULATIVE_METHODS == {"mtp", "draft_model", "eagle", "eagle3", "medusa", "dflash", "ngram",
                                          "suffix"}


@pytest.mark.parametrize("method, kwargs, expect", [
    ("ar", {}, None),
    ("ngram", {}, None),
    ("mtp", {"paths": ["Qwen/Qwen3.6-27B"]}, None),                       # qwen3_5_mtp: in every wheel read
    ("mtp", {"paths": ["google/gemma-4-31B-it", "google/gemma-4-31B-it-assistant"]}, "0.21.0"),
    ("mtp", {"method_name": "gemma4_mtp"}, "0.21.0"),
    ("dflash", {}, "0.20.0"),
    ("dflash", {"config_keys": ["attention_backend"]}, "0.21.0"),
    ("diffusion", {"paths": ["google/diffusiongemma-26B-A4B-it"]}, "0.24.0"),
])
def test_min_vllm_from_the_wheels(method: str, kwargs: dict, expect: str | None) -> None:
    assert methods.min_vllm(method, **kwargs) == expect


def test_version_comparison_reads_dev_builds() -> None:
    assert methods.version_below("0.20.2rc1.dev49+g9b4e83934", "0.21.0")
    assert not methods.version_below("0.32.0", "0.24.0")
    assert methods.version_below("0.9.2", "0.20.0")  # numeric, not string, order


def test_study_cells_need_their_minimums() -> None:
    cells = {c.id: c for c in load_experiment(STUDY).cells}
    assert cell_minimum(cells["gemma4-31b.bf16.dflash-k15.short.c1"]).version == "0.21.0"
    assert cell_minimum(cells["gemma4-31b.fp8.mtp-k8.short.c1"]).version == "0.21.0"
    assert cell_minimum(cells["qwen36-27b.fp8.mtp-k8.short.c1"]) is None
    assert cell_minimum(cells["diffusiongemma-26b-a4b.fp8.diffusion.short.c1"]).version == "0.24.0"


def test_engine_findings_old_absent_and_current() -> None:
    cells = load_experiment(STUDY).cells
    old = engine_findings(cells, engine="vllm 0.20.2")
    assert [f.severity for f in old] == ["error"] * 3  # Gemma 4 MTP and DFlash's key (0.21.0), diffusion (0.24.0)
    assert "0.21.0" in old[0].message and "0.21.0" in old[1].message and "0.24.0" in old[2].message
    assert all("Fix: install vllm>=" in f.message for f in old)
    assert engine_findings(cells, engine="vllm 0.24.0") == []
    none = engine_findings(cells, engine="")
    assert [f.severity for f in none] == ["note"] and "no vLLM installed" in none[0].message


def test_suffix_needs_arctic_inference(write_toml) -> None:
    exp = load_experiment(write_toml(_exp('[[techniques]]\nid = "sfx"\nmethod = "suffix"\nk = 8\n')))
    missing = engine_findings(exp.cells, engine="vllm 0.32.0", has_package=lambda _: False)
    assert len(missing) == 1 and "pip install arctic-inference" in missing[0].message
    assert engine_findings(exp.cells, engine="vllm 0.32.0", has_package=lambda _: True) == []


def test_vllm_ref_version_is_a_checked_minimum(write_toml) -> None:
    exp = load_experiment(write_toml(_exp('[[techniques]]\nid = "ar"\nmethod = "ar"\n'
                                          'serving = { vllm_ref = "0.30.0" }\n')))
    (finding,) = engine_findings(exp.cells, engine="vllm 0.29.0")
    assert "0.30.0" in finding.message and "vllm_ref" in finding.message
    prose = load_experiment(write_toml(_exp('[[techniques]]\nid = "ar"\nmethod = "ar"\n'
                                            'serving = { vllm_ref = "a PR build" }\n'), name="p.toml"))
    assert engine_findings(prose.cells, engine="vllm 0.1.0") == []


def test_validate_fails_on_an_old_engine(monkeypatch, capsys) -> None:
    monkeypatch.setattr(minimums, "installed_engine", lambda: "vllm 0.23.0")
    assert main(["validate", "-q", str(STUDY)]) == 1
    assert "vllm 0.23.0 is older than 0.24.0" in capsys.readouterr().err.replace("\n  ", " ")
    monkeypatch.setattr(minimums, "installed_engine", lambda: None)
    assert main(["validate", "-q", str(STUDY)]) == 0
    assert "no vLLM installed here" in capsys.readouterr().out


def test_method_name_must_be_a_vllm_spelling(write_toml) -> None:
    ok = load_experiment(write_toml(_exp('[[techniques]]\nid = "m"\nmethod = "mtp"\nk = 2\n'
                                         'method_name = "qwen3_next_mtp"\n')))
    assert '"method":"qwen3_next_mtp"' in " ".join(serving_args(ok.cells[0]))
    with pytest.raises(SpecError) as info:
        load_experiment(write_toml(_exp('[[techniques]]\nid = "m"\nmethod = "dflash"\nk = 2\n'
                                        'draft_model = "d"\nmethod_name = "eagle3"\n'), name="b.toml"))
    assert "not a vLLM spelling of 'dflash'" in str(info.value.problems[0])


def test_diffusion_config_only_with_a_canvas(write_toml) -> None:
    """Fix 1: no --diffusion-config unless the technique sets a canvas; vLLM then reads config.json's."""
    plain = load_experiment(write_toml(_exp('[[techniques]]\nid = "d"\nmethod = "diffusion"\n'))).cells[0]
    assert diffusion_config(plain) is None and "--diffusion-config" not in serving_args(plain)
    canvas = load_experiment(write_toml(_exp('[[techniques]]\nid = "d"\nmethod = "diffusion"\nk = 64\n'),
                                        name="c.toml")).cells[0]
    assert diffusion_config(canvas) == {"canvas_length": 64}
    with pytest.raises(SpecError, match="need the canvas"):
        load_experiment(write_toml(_exp('[[techniques]]\nid = "d"\nmethod = "diffusion"\n'
                                        'config = { max_denoising_steps = 8 }\n'), name="e.toml"))


def test_study_diffusion_follows_vllms_recipe() -> None:
    cell = next(c for c in load_experiment(STUDY).cells if c.method == "diffusion")
    args = serving_args(cell)
    assert "--diffusion-config" not in args and "--quantization" not in args
    assert args[args.index("--max-num-seqs") + 1] == "4"
    assert args[args.index("--generation-config") + 1] == "vllm"
    assert "FP8" in cell.model.path


def test_readers_of_the_table() -> None:
    for m in methods.METHODS.values():
        assert plots._color(m.name) == m.color
        for word in m.file_words:
            assert TECHNIQUES[word] == m.name
        if m.bursty:
            with pytest.raises(StreamingThroughputRefused):
                check_streaming_throughput(m.name)
    check_streaming_throughput("ar")
    assert parse_name("gemma4_31b_dflash15_coding_c1").k == 15
    assert parse_name("qwen3_suffix_c4").technique == "suffix"


def test_no_other_module_lists_methods() -> None:
    """A speculative method's name appears as a string literal only in console/methods.py."""
    names = {m for m in methods.METHODS if m not in ("ar", "mtp", "diffusion")}  # words with other meanings
    offenders = []
    for path in (ROOT / "console").rglob("*.py"):
        if path.name == "methods.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in names:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value!r}")
    assert offenders == []


def _exp(techniques: str) -> str:
    return experiment("t", model(path="org/m", total_params_b=1, bytes_per_param=2, precision="bf16"), techniques,
                      workload((context("s", 8),), (1,)))


def test_frameworks_one_table() -> None:
    from console.evals.frameworks import FRAMEWORKS
    from console.evals.registry import adapter_for

    assert set(get_args(schema.Benchmark.model_fields["framework"].annotation)) == set(FRAMEWORKS)
    lm = schema.Benchmark(id="b", framework="lm-eval", task="t")
    assert adapter_for(lm, concurrency=16).num_concurrent == 4  # lm-eval's default cap
    assert adapter_for(lm.model_copy(update={"concurrency": 16})).num_concurrent == 16
    assert FRAMEWORKS["inspect"].packages_for("inspect_evals/gpqa_diamond") == ("inspect-ai", "inspect-evals")
