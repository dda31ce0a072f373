"""`specdeck prepare` and the offline decision: runs go offline only when prepare recorded everything local
(or --offline, or nothing comes from the hub); a missing dataset names `specdeck prepare`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from console.evals import inspect_adapter, lmeval
from console.evals.base import EvalTarget
from console.evals.missing_data import missing_data_hint
from console.evals.registry import adapter_for
from console.experiment.loader import load_experiment
from console.experiment.schema import Benchmark
from console.hub import Hub
from console.prepare import needs_of, offline_decision, prepare
from tests.experiment_text import AR, benchmark, experiment, model, workload
from tests.unit.hubfakes import LLAMA_CONFIG, FakeApi, cache_repo, write_model_dir

TARGET = EvalTarget("http://127.0.0.1:8000", "sk-test", "tiny", None)
OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("SPECDECK_PREPARED_DIR", str(tmp_path / "prepared"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "datasets"))
    for var in OFFLINE_VARS:
        monkeypatch.delenv(var, raising=False)


def exp_file(tmp_path: Path, model_path: str, bench: str = "") -> Path:
    path = tmp_path / "exp.toml"
    entry = model(path=model_path, total_params_b=1, bytes_per_param=2, precision="bf16")
    path.write_text(experiment("prep", entry, AR, workload(concurrency=(1,)), device="H100 SXM") + bench)
    return path


LOCAL_BENCH = benchmark("toy", "lm-eval")
GPQA = benchmark("gpqa", "lm-eval", "gpqa_diamond_cot_zeroshot")


def hub_that_downloads(tmp_path: Path, repos: dict) -> Hub:
    cache = tmp_path / "hub"

    def snapshot(repo_id: str, **kwargs) -> str:
        files, gated, readable = repos[repo_id]
        if gated and not readable:
            import httpx2
            from huggingface_hub.errors import GatedRepoError  # the real type, raised like the real client
            raise GatedRepoError(f"Cannot access gated repo for url https://huggingface.co/{repo_id}.",
                                 response=httpx2.Response(403, request=httpx2.Request("GET", "https://x")))
        assert kwargs["allow_patterns"] and "*.safetensors" in kwargs["allow_patterns"]
        return str(cache_repo(cache, repo_id, {"config.json": json.dumps(LLAMA_CONFIG).encode(),
                                               "model.safetensors": b"\0" * 32}))

    return Hub(cache_dir=cache, api=FakeApi(repos), download=lambda *a, **k: "", snapshot=snapshot)


def fake_load_dataset(tmp_path: Path):
    calls = []

    def load(path: str, name: str | None = None):
        calls.append((path, name))
        org, repo = path.split("/")
        (tmp_path / "datasets" / f"{org}___{repo.lower()}" / (name or "default") / "0.0.0" / "h").mkdir(parents=True)

    load.calls = calls  # type: ignore[attr-defined]
    return load


def test_env_is_not_forced_offline_by_default():
    # before: both adapters set HF_HUB_OFFLINE=1 / HF_DATASETS_OFFLINE=1 unconditionally
    for env in (lmeval.env_for(TARGET), inspect_adapter.env_for(TARGET)):
        assert not any(var in env for var in OFFLINE_VARS)
    for env in (lmeval.env_for(TARGET, offline=True), inspect_adapter.env_for(TARGET, offline=True)):
        assert env["HF_HUB_OFFLINE"] == env["HF_DATASETS_OFFLINE"] == "1"


def test_adapter_for_passes_the_decision_to_the_frameworks_that_download():
    bench = Benchmark(id="g", framework="lm-eval", task="gpqa_diamond_cot_zeroshot", options=4)
    adapter = adapter_for(bench, offline=True, experiment="experiments/study.toml")
    assert adapter.offline is True and adapter.experiment == "experiments/study.toml"
    assert adapter_for(bench).offline is False
    builtin = adapter_for(Benchmark(id="t", framework="builtin", task="toy-mcq", options=4), offline=True)
    assert not hasattr(builtin, "offline")


def test_nothing_from_the_hub_runs_offline(tmp_path):
    exp = load_experiment(exp_file(tmp_path, str(write_model_dir(tmp_path / "m")), LOCAL_BENCH))
    assert needs_of(exp).empty
    offline, why = offline_decision(exp, False)
    assert offline and "nothing this experiment needs comes from the hub" in why


def test_hub_needs_without_prepare_are_not_forced_offline_and_name_prepare(tmp_path):
    exp = load_experiment(exp_file(tmp_path, "org/llama", GPQA))
    needs = needs_of(exp)
    assert needs.models == ("org/llama",) and needs.datasets == (("Idavidrein/gpqa", "gpqa_diamond"),)
    offline, why = offline_decision(exp, False)
    assert not offline and "specdeck prepare" in why
    assert offline_decision(exp, True)[0]  # --offline


def test_prepare_fetches_everything_then_runs_go_offline(tmp_path):
    exp = load_experiment(exp_file(tmp_path, "org/llama", GPQA))
    hub = hub_that_downloads(tmp_path, {"org/llama": ({"config.json": 10}, False, True)})
    load = fake_load_dataset(tmp_path)
    said: list[str] = []
    result = prepare(exp, hub, say=said.append, load_dataset=load)
    assert result.all_local, [i for i in result.items if not i.ok]
    assert load.calls == [("Idavidrein/gpqa", "gpqa_diamond")]
    assert hub.cached_model("org/llama").complete
    assert any("[1/2] model org/llama" in s for s in said)
    offline, why = offline_decision(exp, False)
    assert offline and "recorded everything local" in why
    # a second prepare fetches nothing again
    again = prepare(exp, hub, say=said.append, load_dataset=load)
    assert again.all_local and len(load.calls) == 1


def test_prepare_never_fails_silently_on_a_gated_model(tmp_path):
    exp = load_experiment(exp_file(tmp_path, "org/gated"))
    hub = hub_that_downloads(tmp_path, {"org/gated": ({"config.json": 10}, "manual", False)})
    said: list[str] = []
    result = prepare(exp, hub, say=said.append)
    item, = result.items
    assert not item.ok and "GatedRepoError" in item.detail and "`hf auth login`" in item.fix
    assert any("✗ model org/gated" in s for s in said)
    assert not offline_decision(exp, False)[0]  # the record says: not everything is local


def test_smoke_failing_on_a_missing_dataset_names_prepare():
    # the last line lm-eval 0.4.13 printed here for gpqa_diamond_cot_zeroshot with HF_DATASETS_OFFLINE=1
    # (datasets 5.2.0 load.py)
    log = "ConnectionError: Couldn't reach 'Idavidrein/gpqa' on the Hub (OfflineModeIsEnabled)"
    hint = missing_data_hint(log, "experiments/study-h100.toml")
    assert hint and "Idavidrein/gpqa" in hint and "`specdeck prepare experiments/study-h100.toml`" in hint
    assert "gated" in missing_data_hint("Dataset 'Idavidrein/gpqa' is a gated dataset on the Hub.")
    assert missing_data_hint("Traceback …\nValueError: something else") is None


def test_lmeval_error_carries_the_prepare_hint(tmp_path, monkeypatch):
    def fake_run_logged(argv, env, cwd, log_path):
        assert "HF_DATASETS_OFFLINE" in env  # the adapter was told the run is offline
        log_path.write_text("ConnectionError: Couldn't reach 'TIGER-Lab/MMLU-Pro' on the Hub (OfflineModeIsEnabled)\n")
        return 1, 0.0, 0.1

    monkeypatch.setattr(lmeval, "run_logged", fake_run_logged)
    bench = Benchmark(id="mmlu", framework="lm-eval", task="mmlu_pro", options=10)
    adapter = lmeval.LmEval(offline=True, experiment="exp.toml")
    from console.experiment.schema import Generation

    with pytest.raises(lmeval.LmEvalError, match=r"TIGER-Lab/MMLU-Pro .*`specdeck prepare exp.toml`"):
        adapter.run(bench, TARGET, stage="smoke", limit=5, generation=Generation(), out_dir=tmp_path / "o",
                    skip_ids=set(), on_item=lambda i: None)
