"""The widened demo target computes the trained tiny target's function (console/models/widen.py)."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from console.models import build_models, corpus_passages, list_models  # noqa: E402
from console.models import llama as llama_mod  # noqa: E402
from console.models.build import RECIPE_FILE  # noqa: E402
from console.models.recipe import (  # noqa: E402
    TARGET_NAME,
    WIDE_NAME,
    TargetRecipe,
    WideRecipe,
    default_recipes,
    recipe_hash,
)
from console.models.widen import WideningError, check_shapes, widen_weights  # noqa: E402

# A smaller widening than the demo's (same construction, every dimension grown, the demo's hidden 256 → 1024 so
# the norm scale √¼ = ½ is exact in bf16): quick on a CPU in transformers.
SMALL_WIDE = {"hidden_size": 1024, "num_attention_heads": 16, "intermediate_size": 1024, "num_hidden_layers": 4}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    target = TargetRecipe(train_steps=2)  # as in test_models: the construction, not the training, is under test
    recipes = {TARGET_NAME: target, "wide": WideRecipe(target=target, **SMALL_WIDE)}
    return build_models(tmp_path_factory.mktemp("widen"), recipes=recipes)


def _greedy(model_dir: Path, prompts: list[list[int]], new: int) -> tuple[list[list[int]], list[torch.Tensor]]:
    """Greedy continuations, and the logits over each prompt (teacher-forced), in float32."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32).eval()
    out, logits = [], []
    with torch.no_grad():
        for ids in prompts:
            seq = model.generate(torch.tensor([ids]), max_new_tokens=new, do_sample=False,
                                 attention_mask=torch.ones(1, len(ids), dtype=torch.long))
            out.append(seq[0, len(ids):].tolist())
            logits.append(model(torch.tensor([ids])).logits[0])
    return out, logits


def test_widened_greedy_outputs_agree_with_the_tiny_target(models: dict[str, Path]) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(models[TARGET_NAME]))
    prompts = [tok(p.text[:200]).input_ids for p in corpus_passages()[:8]]
    small, small_logits = _greedy(models[TARGET_NAME], prompts, 16)
    wide, wide_logits = _greedy(models["wide"], prompts, 16)
    same = sum(a == b for a, b in zip(small, wide, strict=True))
    assert same >= 7, f"only {same}/8 greedy continuations agree"
    # the same function up to float summation order (measured: ~1e-5 on logits of magnitude ~5)
    worst = max(float((a - b).abs().max()) for a, b in zip(small_logits, wide_logits, strict=True))
    assert worst < 1e-3, worst


def test_the_extra_parts_are_exactly_zero(models: dict[str, Path]) -> None:
    small = llama_mod.load_weights(models[TARGET_NAME])
    wide = llama_mod.load_weights(models["wide"])
    q = wide["model.layers.0.self_attn.q_proj.weight"]
    assert q[:256, :256].equal(small["model.layers.0.self_attn.q_proj.weight"])
    assert not q[256:].any() and not q[:, 256:].any()  # new heads read nothing
    assert not wide["model.layers.0.mlp.gate_proj.weight"][512:].any()
    for n in (2, 3):  # extra layers write nothing to the residual stream
        assert not wide[f"model.layers.{n}.self_attn.o_proj.weight"].any()
        assert not wide[f"model.layers.{n}.mlp.down_proj.weight"].any()
    norm = wide["model.layers.1.input_layernorm.weight"].float()
    assert norm[:256].equal(small["model.layers.1.input_layernorm.weight"].float() * 0.5)  # × √(256 / 1024)
    assert not norm[256:].any()
    cfg = json.loads((models["wide"] / "config.json").read_text())
    assert cfg["rms_norm_eps"] == pytest.approx(1e-5 * 256 / 1024)
    assert (cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_hidden_layers"]) == (1024, 16, 4)


def test_widening_is_deterministic(models: dict[str, Path]) -> None:
    small = llama_mod.load_weights(models[TARGET_NAME])
    recipe = WideRecipe(target=TargetRecipe(train_steps=2), **SMALL_WIDE)
    again = widen_weights(small, recipe.target.arch, recipe.arch)
    built = llama_mod.load_weights(models["wide"])
    assert set(again) == set(built) and all(again[k].equal(built[k]) for k in built)


def test_the_demo_shape() -> None:
    wide = default_recipes()[WIDE_NAME]
    assert isinstance(wide, WideRecipe)
    a = wide.arch
    assert (a.hidden_size, a.num_attention_heads, a.intermediate_size, a.num_hidden_layers) == (1024, 16, 4096, 4)
    params = sum(math.prod(s) for s in llama_mod.weight_shapes(a).values())
    assert 65e6 < params < 70e6  # ≈ 68 M, ≈ 136 MB in bf16 (272 MB served in float32)


def test_a_cache_of_the_first_demo_shape_is_rebuilt(models: dict[str, Path], tmp_path: Path) -> None:
    """A models dir holding the first demo's 12-layer wide-target (202 M) is stale under today's recipe, and a
    build replaces it with today's shape without retraining the target."""
    target = TargetRecipe(train_steps=2)
    first = WideRecipe(target=target, num_hidden_layers=12)
    models_dir = tmp_path / "models"
    shutil.copytree(models[TARGET_NAME], models_dir / TARGET_NAME)
    shutil.copytree(models["wide"], models_dir / WIDE_NAME)  # stands in for the old bytes: only the record counts
    record = json.loads((models_dir / WIDE_NAME / RECIPE_FILE).read_text())
    (models_dir / WIDE_NAME / RECIPE_FILE).write_text(json.dumps(record | {"recipe_hash": recipe_hash(first)}))
    today = {TARGET_NAME: target, WIDE_NAME: WideRecipe(target=target)}
    assert {s.name: s.state for s in list_models(models_dir, today)} == {TARGET_NAME: "built", WIDE_NAME: "stale"}
    said: list[str] = []
    build_models(models_dir, recipes=today, progress=said.append)
    assert [m.split(":")[0] for m in said if "building" in m] == [WIDE_NAME]
    cfg = json.loads((models_dir / WIDE_NAME / "config.json").read_text())
    assert (cfg["num_hidden_layers"], cfg["hidden_size"]) == (WideRecipe().num_hidden_layers, 1024)


def test_shapes_that_cannot_hold_the_model_are_refused() -> None:
    small = TargetRecipe().arch
    with pytest.raises(WideningError, match="only grow"):
        check_shapes(small, dataclasses.replace(small, hidden_size=128, rms_norm_eps=small.rms_norm_eps * 2))
    with pytest.raises(WideningError, match="rms_norm_eps"):
        check_shapes(small, dataclasses.replace(small, hidden_size=512))
    with pytest.raises(WideningError, match="head_dim"):
        check_shapes(small, dataclasses.replace(small, head_dim=32))
