"""console.models: tokenizer, determinism, caching, atomic writes, config shape, chat template, CLI."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from console.cli import main as cli_main  # noqa: E402
from console.models import (  # noqa: E402
    MODEL_NAMES,
    ModelDependencyError,
    build_models,
    corpus_passages,
    corpus_text,
    default_models_dir,
    default_recipes,
    list_models,
    recipe_hash,
)
from console.models import llama as llama_mod  # noqa: E402
from console.models.deps import require  # noqa: E402
from console.models.recipe import TRAIN_STEPS, TRAIN_STEPS_ENV, DrafterRecipe, TargetRecipe  # noqa: E402


def _hashes(model_dir: Path) -> dict[str, str]:
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(model_dir.iterdir())}


@pytest.fixture(scope="module", autouse=True)
def quick_training() -> Iterator[None]:
    """Two training steps instead of the demo's hundreds: these tests are about files, hashes and caching
    (subprocesses inherit the variable). Training itself is tested below and on the engine."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(TRAIN_STEPS_ENV, "2")
        yield


@pytest.fixture(scope="module")
def built(quick_training: None, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_models(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def tokenizer(built: dict[str, Path]):  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(built["tiny-target"]))


def test_names_and_layout(built: dict[str, Path]) -> None:
    assert set(built) == set(MODEL_NAMES)
    assert {"tiny-target", "tiny-draft-exact", "tiny-draft-noisy"} <= set(built)
    for path in built.values():
        names = {f.name for f in path.iterdir()}
        assert {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
                "tokenizer_config.json", "chat_template.jinja", "specdeck-recipe.json"} <= names  # fmt: skip
        assert not any(p.name.startswith(".") for p in path.parent.iterdir() if p.is_dir())


@pytest.mark.parametrize(
    "text",
    [
        "Hello, world!",
        "café — naïve 20 °C, 3.14 €",
        "def f(x):\n\treturn x ** 2  # ok\n",
        "  spaces  \n\n",
        "",
    ],
)
def test_tokenizer_round_trip(tokenizer, text: str) -> None:  # type: ignore[no-untyped-def]
    ids = tokenizer(text).input_ids
    assert ids[0] == tokenizer.bos_token_id == 1
    assert tokenizer.decode(ids, skip_special_tokens=True) == text


def test_tokenizer_vocab_and_corpus(tokenizer) -> None:  # type: ignore[no-untyped-def]
    assert len(tokenizer) == 512
    assert (tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id) == (0, 1, 2)
    for passage in corpus_passages()[:10]:
        ids = tokenizer(passage.text, add_special_tokens=False).input_ids
        assert tokenizer.decode(ids) == passage.text
        assert len(ids) < len(passage.text)  # merges were learned


def test_chat_template(tokenizer) -> None:  # type: ignore[no-untyped-def]
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    text = tokenizer.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
    assert text == "<s><|system|>\nBe brief.</s>\n<|user|>\nHi</s>\n<|assistant|>\n"
    closed = msgs + [{"role": "assistant", "content": "Hello."}]
    text = tokenizer.apply_chat_template(closed, tokenize=False)
    assert text.endswith("<|assistant|>\nHello.</s>\n")
    ids = tokenizer(text, add_special_tokens=False).input_ids
    assert ids.count(tokenizer.bos_token_id) == 1
    assert tokenizer.convert_tokens_to_ids("<|user|>") in ids
    with pytest.raises(Exception, match="roles are"):
        tokenizer.apply_chat_template([{"role": "tool", "content": "x"}], tokenize=False)


def test_config_shape(built: dict[str, Path]) -> None:
    from safetensors import safe_open

    cfg = json.loads((built["tiny-target"] / "config.json").read_text())
    assert cfg["architectures"] == ["LlamaForCausalLM"]
    assert (cfg["vocab_size"], cfg["hidden_size"], cfg["intermediate_size"]) == (512, 256, 512)
    assert (cfg["num_hidden_layers"], cfg["num_attention_heads"], cfg["num_key_value_heads"]) == (2, 4, 4)
    assert cfg["head_dim"] == cfg["hidden_size"] // cfg["num_attention_heads"] == 64
    assert cfg["max_position_embeddings"] >= 8192 + 600
    assert cfg["rope_parameters"]["rope_type"] == "default"
    assert cfg["dtype"] == "bfloat16" and cfg["tie_word_embeddings"] is False
    assert (cfg["bos_token_id"], cfg["eos_token_id"], cfg["pad_token_id"]) == (1, 2, 0)
    gen = json.loads((built["tiny-target"] / "generation_config.json").read_text())
    assert gen == {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0}
    with safe_open(str(built["tiny-target"] / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
        assert f.get_slice("model.layers.0.self_attn.q_proj.weight").get_shape() == [256, 256]
        assert str(f.get_tensor("lm_head.weight").dtype) == "torch.bfloat16"
    assert keys == set(llama_mod.weight_shapes(default_recipes()["tiny-target"].arch))


def test_drafters_derive_from_target(built: dict[str, Path]) -> None:
    target = llama_mod.load_weights(built["tiny-target"])
    exact = llama_mod.load_weights(built["tiny-draft-exact"])
    noisy = llama_mod.load_weights(built["tiny-draft-noisy"])
    assert all(exact[k].equal(target[k]) for k in target)
    scale = default_recipes()["tiny-draft-noisy"].noise_scale  # type: ignore[union-attr]
    t, n = target["lm_head.weight"].float(), noisy["lm_head.weight"].float()
    assert float((n - t).std() / t.std()) == pytest.approx(scale, rel=0.1)
    assert noisy["model.norm.weight"].equal(target["model.norm.weight"])  # constant tensors keep their value


def test_deterministic(built: dict[str, Path], tmp_path: Path) -> None:
    # A separate process: per-process hash seeds (Python's and the Rust tokenizer's) must not matter.
    code = "import sys; from pathlib import Path; from console.models import build_models; build_models(Path(sys.argv[1]))"
    subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], check=True, cwd=Path(__file__).resolve().parents[2]
    )
    for name, path in built.items():
        assert _hashes(tmp_path / name) == _hashes(path), name


def test_cache_hit_and_recipe_change(built: dict[str, Path], tmp_path: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(next(iter(built.values())).parent, models)
    before = {n: (models / n / "model.safetensors").stat().st_mtime_ns for n in built}
    messages: list[str] = []
    build_models(models, progress=messages.append)
    assert [m for m in messages if "up to date" in m] and not [m for m in messages if "building" in m]
    assert before == {n: (models / n / "model.safetensors").stat().st_mtime_ns for n in built}

    recipes = default_recipes()
    noisy = recipes["tiny-draft-noisy"]
    assert isinstance(noisy, DrafterRecipe)
    recipes["tiny-draft-noisy"] = dataclasses.replace(noisy, noise_seed=7)
    assert [s.state for s in list_models(models, recipes) if s.name == "tiny-draft-noisy"] == ["stale"]
    messages.clear()
    build_models(models, progress=messages.append, recipes=recipes)
    assert [m.split(":")[0] for m in messages if "building" in m] == ["tiny-draft-noisy"]
    assert all(s.state == "built" for s in list_models(models, recipes))

    messages.clear()
    build_models(models, force=True, progress=messages.append)
    assert len([m for m in messages if "building (" in m]) == len(MODEL_NAMES)  # 4 forced, 1 stale


def test_crash_leaves_no_half_model(
    built: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = tmp_path / "models"
    shutil.copytree(next(iter(built.values())).parent, models)
    shutil.rmtree(models / "tiny-draft-noisy")
    (models / "tiny-draft-exact" / "specdeck-recipe.json").unlink()  # incomplete → counts as missing
    old = _hashes(models / "tiny-target")

    def boom(*_a: object, **_k: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(llama_mod, "save_weights", boom)
    with pytest.raises(OSError, match="disk full"):
        build_models(models, force=True)
    assert _hashes(models / "tiny-target") == old  # the complete old model is untouched
    assert not (models / "tiny-draft-noisy").exists()
    assert not [p for p in models.iterdir() if p.name.startswith(".") and p.is_dir()]
    monkeypatch.undo()
    states = {s.name: s.state for s in list_models(models)}
    assert states["tiny-draft-exact"] == states["tiny-draft-noisy"] == "missing"
    build_models(models)
    assert all(s.state == "built" for s in list_models(models))


def test_recipe_hash_covers_parameters() -> None:
    base = TargetRecipe()
    assert recipe_hash(base) == recipe_hash(TargetRecipe())
    assert recipe_hash(dataclasses.replace(base, train_steps=10)) != recipe_hash(base)
    assert recipe_hash(DrafterRecipe(target=base, noise_scale=0.1)) != recipe_hash(DrafterRecipe(target=base))
    trained = dataclasses.replace(base, train_steps=10)
    assert recipe_hash(DrafterRecipe(target=trained)) != recipe_hash(DrafterRecipe(target=base))


def test_training_changes_weights_and_is_recorded(built: dict[str, Path], tmp_path: Path) -> None:
    record = json.loads((built["tiny-target"] / "specdeck-recipe.json").read_text())
    assert record["recipe"]["train_steps"] == 2 and record["training"]["steps"] == 2
    untrained = build_models(tmp_path, recipes={"t": TargetRecipe(train_steps=0)})["t"]
    assert "training" not in json.loads((untrained / "specdeck-recipe.json").read_text())
    a = llama_mod.load_weights(untrained)
    b = llama_mod.load_weights(built["tiny-target"])
    assert not a["lm_head.weight"].equal(b["lm_head.weight"])
    assert "trained for 2 steps" in (built["tiny-target"] / "README.md").read_text()


def test_train_steps_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TRAIN_STEPS_ENV, "0")
    assert TargetRecipe().train_steps == 0
    monkeypatch.delenv(TRAIN_STEPS_ENV)
    assert TargetRecipe().train_steps == TRAIN_STEPS
    monkeypatch.setenv(TRAIN_STEPS_ENV, "many")
    with pytest.raises(ValueError, match="whole number"):
        TargetRecipe()


def test_default_models_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SPECDECK_MODELS_DIR", str(tmp_path))
    assert default_models_dir() == tmp_path
    monkeypatch.delenv("SPECDECK_MODELS_DIR")
    assert default_models_dir() == Path.home() / ".cache" / "specdeck" / "models"


def test_corpus_is_varied() -> None:
    passages = corpus_passages()
    assert 20_000 < len(corpus_text().encode()) < 100_000
    assert len(passages) >= 40
    assert {"prose", "code", "numbers", "list", "explain", "dialogue"} <= {p.category for p in passages}
    assert all(p.text.strip() for p in passages)


def test_missing_dependency_names_the_fix() -> None:
    with pytest.raises(ModelDependencyError, match=r"pip install 'specdeck\[cpu\]'"):
        require("specdeck_no_such_module")


def test_import_is_light() -> None:
    code = "import sys, console.models, console.commands.models; assert 'torch' not in sys.modules, 'torch'; " \
           "assert 'transformers' not in sys.modules, 'transformers'"  # fmt: skip
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli(built: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    models = str(next(iter(built.values())).parent)
    assert cli_main(["models", "build", "--dir", models]) == 0
    out = capsys.readouterr().out
    assert "up to date" in out and f"@models/tiny-target = {built['tiny-target']}" in out
    assert cli_main(["models", "list", "--dir", models]) == 0
    out = capsys.readouterr().out
    assert all(f"{name}  " in out for name in MODEL_NAMES) and "missing" not in out and "MiB" in out


def test_reuse_from_skips_training_and_keeps_the_record(built: dict[str, Path], tmp_path: Path) -> None:
    said: list[str] = []
    out = build_models(tmp_path / "other", progress=said.append, reuse_from=[built["tiny-target"].parent])
    assert not any("training the target" in m for m in said), said
    assert _hashes(out["tiny-target"]) == _hashes(built["tiny-target"])
    assert _hashes(out["tiny-draft-noisy"]) == _hashes(built["tiny-draft-noisy"])
