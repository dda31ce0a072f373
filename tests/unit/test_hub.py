"""console.hub against a local hub cache laid out as huggingface_hub lays it out, and a fake remote side."""

from __future__ import annotations

import json

import pytest

from console.hub import Hub, is_hub_id
from tests.unit.hubfakes import LLAMA_CONFIG, FakeApi, cache_repo, fake_download


def config_bytes() -> bytes:
    return json.dumps(LLAMA_CONFIG).encode()


@pytest.fixture
def hub(tmp_path):
    api = FakeApi({
        "org/open": ({"config.json": 500, "model.safetensors": 3_000_000_000, "original/consolidated.pth": 9_000},
                     False, True),
        "org/gated": ({"config.json": 500, "model.safetensors": 2_000}, "manual", False),
        "org/gated-ok": ({"config.json": 500, "model.safetensors": 2_000}, "auto", True),
    })
    return Hub(cache_dir=tmp_path / "hub", api=api, download=fake_download(
        {"org/open": LLAMA_CONFIG, "org/gated-ok": LLAMA_CONFIG}, tmp_path / "dl"), snapshot=lambda *a, **k: "")


def test_a_complete_snapshot_is_found_through_refs_main(hub, tmp_path):
    snap = cache_repo(tmp_path / "hub", "org/llama", {"config.json": config_bytes(), "model.safetensors": b"\0" * 64})
    cached = hub.cached_model("org/llama")
    assert cached.complete and cached.snapshot == snap and cached.size_bytes == 64


def test_a_sharded_snapshot_missing_a_shard_is_incomplete(hub, tmp_path):
    index = {"metadata": {"total_size": 128}, "weight_map": {"a": "model-00001-of-00002.safetensors",
                                                             "b": "model-00002-of-00002.safetensors"}}
    cache_repo(tmp_path / "hub", "org/sharded", {"config.json": config_bytes(),
                                                 "model.safetensors.index.json": json.dumps(index).encode(),
                                                 "model-00001-of-00002.safetensors": b"\0" * 64})
    cached = hub.cached_model("org/sharded")
    assert not cached.complete and cached.missing == ("model-00002-of-00002.safetensors",)


def test_a_repo_that_is_not_cached_is_not_complete(hub):
    cached = hub.cached_model("org/absent")
    assert cached.snapshot is None and not cached.complete


def test_remote_open_repo_reports_the_download_size_of_what_a_server_loads(hub):
    remote = hub.remote("org/open")
    assert remote.status == "ok"
    assert remote.size_bytes == 500 + 3_000_000_000  # the .pth copy is not fetched
    assert remote.config["architectures"] == ["LlamaForCausalLM"]


def test_gated_repo_without_access_says_request_access_then_log_in(hub):
    remote = hub.remote("org/gated")
    assert remote.status == "gated"
    assert "request access at https://huggingface.co/org/gated" in remote.fix
    assert "`hf auth login`" in remote.fix
    assert "Cannot access gated repo" in remote.detail  # huggingface_hub's own GatedRepoError message


def test_gated_repo_with_access_is_readable(hub):
    remote = hub.remote("org/gated-ok")
    assert remote.status == "ok" and remote.gated == "auto"


def test_unknown_repo_reads_as_a_typo(hub):
    remote = hub.remote("org/gemma-4-31b-itt")
    assert remote.status == "not_found"
    assert "check the spelling" in remote.fix


def test_no_network_reads_as_unreachable(tmp_path):
    hub = Hub(cache_dir=tmp_path, api=FakeApi(unreachable=True), download=lambda *a, **k: "", snapshot=lambda *a, **k: "")
    remote = hub.remote("org/open")
    assert remote.status == "unreachable" and "Name or service not known" in remote.detail


def test_dataset_gated_fix_points_at_the_dataset_page(tmp_path):
    api = FakeApi({"Idavidrein/gpqa": ({"gpqa_diamond.csv": 1000}, "auto", False)})
    hub = Hub(cache_dir=tmp_path, api=api, download=lambda *a, **k: "", snapshot=lambda *a, **k: "")
    remote = hub.remote("Idavidrein/gpqa", "dataset")
    assert remote.status == "gated"
    assert "https://huggingface.co/datasets/Idavidrein/gpqa" in remote.fix


def test_datasets_cache_lookup_follows_the_datasets_library_layout(tmp_path, monkeypatch, hub):
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "datasets"))
    assert hub.cached_dataset("TIGER-Lab/MMLU-Pro") is None
    # datasets 5.2.0: <cache>/<org>___<snake_case name>/<config>/<version>/<hash>/
    built = tmp_path / "datasets" / "TIGER-Lab___mmlu-pro" / "default" / "0.0.0" / "abc123"
    built.mkdir(parents=True)
    assert hub.cached_dataset("TIGER-Lab/MMLU-Pro") == built
    assert hub.cached_dataset("Idavidrein/gpqa", "gpqa_diamond") is None


def test_hub_ids_and_local_paths(tmp_path):
    assert is_hub_id("google/gemma-4-31B-it")
    assert not is_hub_id(str(tmp_path))
    assert not is_hub_id("gemma-4")
