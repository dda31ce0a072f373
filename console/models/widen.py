"""A function-preserving widening of the trained tiny target: a big target that computes the same function.

The demo needs a target whose forward pass costs much more than its drafters' (the tiny models), as a real
target does; otherwise every draft step costs what a target step costs and speculative decoding can only
lose. Training a big model on a CPU is out of the question, so the trained 2-layer target is *widened*:

- hidden ``h → H``: embeddings, ``lm_head`` and every projection keep the old weights in their top-left block,
  zeros elsewhere, so the residual stream is the old one followed by ``H − h`` zeros;
- RMSNorm: the zeros divide the mean square by ``H / h``, so each norm weight is multiplied by ``√(h / H)``
  and ``rms_norm_eps`` by ``h / H`` — then ``w·x / √(mean(x²) + eps)`` is exactly the old value;
- heads ``n → N`` (head_dim kept): the new heads' q/k/v rows are zero, so they attend uniformly over zero
  values and output zero; ``o_proj`` reads them through zero columns;
- intermediate ``i → I``: zero gate/up rows give ``silu(0)·0 = 0``, read by zero ``down_proj`` columns;
- layers ``L → L'``: the extra layers (after the trained ones) have zero ``o_proj`` and ``down_proj``, so they
  add nothing to the residual stream, yet vLLM computes all of them: a full layer's cost each.

Nothing is random: the same tiny target gives the same bytes. In bf16 the wider matmuls sum in another
order, so the greedy outputs agree on most prompts, not all (tests/unit/test_widen.py; docs/models.md).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from console.errors import SpecdeckError
from console.models.deps import require
from console.models.llama import weight_shapes
from console.models.recipe import ArchRecipe

if TYPE_CHECKING:
    import torch


class WideningError(SpecdeckError, ValueError):
    """A wide shape that cannot hold the small model (every dimension must grow or stay)."""

    fix = "pick a wide shape whose hidden size, heads, layers and MLP width are each ≥ the small model's"


def check_shapes(small: ArchRecipe, wide: ArchRecipe) -> None:
    """Raise ``WideningError`` unless ``wide`` can hold ``small`` exactly."""
    pairs = {
        "hidden_size": (small.hidden_size, wide.hidden_size),
        "intermediate_size": (small.intermediate_size, wide.intermediate_size),
        "num_hidden_layers": (small.num_hidden_layers, wide.num_hidden_layers),
        "num_attention_heads": (small.num_attention_heads, wide.num_attention_heads),
    }
    bad = [f"{k} {a} → {b}" for k, (a, b) in pairs.items() if b < a]
    if bad:
        raise WideningError(f"a widening can only grow the model: {', '.join(bad)}")
    for key in ("vocab_size", "head_dim", "rope_theta", "max_position_embeddings", "tie_word_embeddings"):
        if getattr(small, key) != getattr(wide, key):
            raise WideningError(f"{key} must stay {getattr(small, key)} (got {getattr(wide, key)})")
    if small.num_key_value_heads != small.num_attention_heads or wide.num_key_value_heads != wide.num_attention_heads:
        raise WideningError("only multi-head attention (kv heads = heads) is widened")
    ratio = small.rms_norm_eps * small.hidden_size / wide.hidden_size
    if not math.isclose(wide.rms_norm_eps, ratio, rel_tol=1e-9):
        raise WideningError(f"rms_norm_eps must be {ratio:g} (= {small.rms_norm_eps:g} × {small.hidden_size} / "
                            f"{wide.hidden_size}) for the norms to stay exact (got {wide.rms_norm_eps:g})")


def widened_arch(small: ArchRecipe, hidden: int, heads: int, intermediate: int, layers: int) -> ArchRecipe:
    """The wide shape for ``small`` (eps scaled so the norms stay exact)."""
    import dataclasses

    return dataclasses.replace(
        small, hidden_size=hidden, num_attention_heads=heads, num_key_value_heads=heads,
        intermediate_size=intermediate, num_hidden_layers=layers,
        rms_norm_eps=small.rms_norm_eps * small.hidden_size / hidden)


def widen_weights(weights: dict[str, torch.Tensor], small: ArchRecipe, wide: ArchRecipe) -> dict[str, torch.Tensor]:
    """The wide model's tensors (bf16, like the input): the small weights in the top-left blocks, zeros
    elsewhere, norm weights × √(h / H), extra layers with zero ``o_proj`` / ``down_proj``."""
    check_shapes(small, wide)
    th = require("torch")
    scale = math.sqrt(small.hidden_size / wide.hidden_size)
    out: dict[str, torch.Tensor] = {}
    for name, shape in weight_shapes(wide).items():
        layer = _layer_of(name)
        src = weights.get(name) if layer is None or layer < small.num_hidden_layers else None
        if src is None:
            # An extra layer: zero everywhere but the norms, so o_proj and down_proj are zero and it adds
            # nothing; the norm weights are ones (their output only meets zero matrices).
            out[name] = th.ones(shape, dtype=weights["model.norm.weight"].dtype) * scale \
                if name.endswith("norm.weight") else th.zeros(shape, dtype=weights["model.norm.weight"].dtype)
            continue
        big = th.zeros(shape, dtype=src.dtype)
        if name.endswith("norm.weight"):
            big[: src.shape[0]] = (src.to(th.float32) * scale).to(src.dtype)
        else:
            big[: src.shape[0], : src.shape[1]] = src
        out[name] = big
    return out


def _layer_of(name: str) -> int | None:
    parts = name.split(".")
    return int(parts[2]) if len(parts) > 3 and parts[1] == "layers" else None
