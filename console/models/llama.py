"""The tiny Llama's files: ``config.json``, ``generation_config.json`` and seeded bf16 weights.

Weights are drawn tensor by tensor (sorted by name) from one ``torch.Generator`` seeded with the recipe's seed,
so the same recipe gives the same bytes on any machine with the same torch. Drafters add Gaussian noise of
``scale × std(tensor)`` to the target's bf16 weights, again from a seeded generator.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from console.models.deps import require
from console.models.recipe import ArchRecipe

if TYPE_CHECKING:
    import torch

WEIGHTS_FILE = "model.safetensors"


def weight_shapes(arch: ArchRecipe) -> dict[str, tuple[int, ...]]:
    """Name → shape of every tensor of ``LlamaForCausalLM`` for ``arch`` (untied lm_head)."""
    h, i, v = arch.hidden_size, arch.intermediate_size, arch.vocab_size
    q = arch.num_attention_heads * arch.head_dim
    kv = arch.num_key_value_heads * arch.head_dim
    shapes: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (v, h), "model.norm.weight": (h,)}
    if not arch.tie_word_embeddings:
        shapes["lm_head.weight"] = (v, h)
    for n in range(arch.num_hidden_layers):
        p = f"model.layers.{n}."
        shapes |= {
            p + "input_layernorm.weight": (h,),
            p + "post_attention_layernorm.weight": (h,),
            p + "self_attn.q_proj.weight": (q, h),
            p + "self_attn.k_proj.weight": (kv, h),
            p + "self_attn.v_proj.weight": (kv, h),
            p + "self_attn.o_proj.weight": (h, q),
            p + "mlp.gate_proj.weight": (i, h),
            p + "mlp.up_proj.weight": (i, h),
            p + "mlp.down_proj.weight": (h, i),
        }
    return dict(sorted(shapes.items()))


def init_weights(arch: ArchRecipe, seed: int) -> dict[str, torch.Tensor]:
    """Seeded random weights: N(0, init_std) for matrices, ones for RMSNorm scales; bf16."""
    th = require("torch")
    gen = th.Generator().manual_seed(seed)
    dtype = getattr(th, arch.dtype)
    weights: dict[str, torch.Tensor] = {}
    for name, shape in weight_shapes(arch).items():
        if name.endswith("norm.weight"):
            weights[name] = th.ones(shape, dtype=dtype)
        else:
            weights[name] = (th.randn(shape, generator=gen) * arch.init_std).to(dtype)
    return weights


def add_noise(weights: dict[str, torch.Tensor], scale: float, seed: int) -> dict[str, torch.Tensor]:
    """A noisy copy: each tensor + N(0, 1) × ``scale`` × its own std (constant tensors stay as they are)."""
    th = require("torch")
    if scale == 0.0:
        return {name: t.clone() for name, t in weights.items()}
    gen = th.Generator().manual_seed(seed)
    noisy: dict[str, torch.Tensor] = {}
    for name in sorted(weights):
        t = weights[name]
        base = t.to(th.float32)
        std = float(base.std()) if base.numel() > 1 else 0.0
        if std == 0.0:
            noisy[name] = t.clone()
            continue
        noise = th.randn(base.shape, generator=gen) * (scale * std)
        noisy[name] = (base + noise).to(t.dtype)
    return noisy


def save_weights(weights: dict[str, torch.Tensor], model_dir: Path) -> Path:
    """Write ``model.safetensors`` (contiguous tensors, format metadata as HF writes it)."""
    save_file = require("safetensors.torch").save_file
    path = model_dir / WEIGHTS_FILE
    save_file({k: v.contiguous() for k, v in sorted(weights.items())}, str(path), metadata={"format": "pt"})
    return path


def load_weights(model_dir: Path) -> dict[str, torch.Tensor]:
    """Read ``model.safetensors`` back (used to derive drafters from an already built target)."""
    load_file = require("safetensors.torch").load_file
    return dict(load_file(str(model_dir / WEIGHTS_FILE)))


def config_dict(arch: ArchRecipe, token_ids: dict[str, int]) -> dict[str, Any]:
    """``config.json`` contents, produced by transformers' own ``LlamaConfig`` so every key is current."""
    transformers = require("transformers")
    cfg = transformers.LlamaConfig(
        vocab_size=arch.vocab_size,
        hidden_size=arch.hidden_size,
        intermediate_size=arch.intermediate_size,
        num_hidden_layers=arch.num_hidden_layers,
        num_attention_heads=arch.num_attention_heads,
        num_key_value_heads=arch.num_key_value_heads,
        head_dim=arch.head_dim,
        max_position_embeddings=arch.max_position_embeddings,
        rope_theta=arch.rope_theta,
        rms_norm_eps=arch.rms_norm_eps,
        initializer_range=arch.init_std,
        tie_word_embeddings=arch.tie_word_embeddings,
        torch_dtype=arch.dtype,
        **token_ids,
    )
    cfg.architectures = ["LlamaForCausalLM"]
    data: dict[str, Any] = cfg.to_dict()
    rope = data.get("rope_parameters") or {}
    if (
        rope.get("rope_theta", arch.rope_theta) != arch.rope_theta
        or rope.get("rope_type", "default") != "default"
    ):
        raise RuntimeError(f"unexpected rope settings from transformers: {rope}")
    return data


def generation_config_dict(token_ids: dict[str, int]) -> dict[str, Any]:
    """``generation_config.json``: token ids only, so vLLM's sampling defaults are not overridden."""
    return dict(sorted(token_ids.items()))


def write_json(path: Path, data: dict[str, Any]) -> Path:
    """Stable JSON (sorted keys, indent 2, trailing newline)."""
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path
