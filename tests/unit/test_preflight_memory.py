"""Memory-fit arithmetic against published figures (config.json values as published on the hub)."""

from __future__ import annotations

import json

import pytest

from console.preflight.memory import GIB, context_limit, fit, kv_shape, weights_bytes

# meta-llama/Meta-Llama-3-8B config.json (the fields the KV estimate reads)
LLAMA3_8B = {"architectures": ["LlamaForCausalLM"], "hidden_size": 4096, "num_attention_heads": 32,
             "num_key_value_heads": 8, "num_hidden_layers": 32, "max_position_embeddings": 8192,
             "torch_dtype": "bfloat16"}
# mistralai/Mistral-7B-v0.1 config.json: every layer attends over a 4,096-token window
MISTRAL_7B = {"architectures": ["MistralForCausalLM"], "hidden_size": 4096, "num_attention_heads": 32,
              "num_key_value_heads": 8, "num_hidden_layers": 32, "sliding_window": 4096,
              "max_position_embeddings": 32768, "torch_dtype": "bfloat16"}
# google/gemma-3-27b-it: a multimodal config whose text part has 5 local (1,024-token) layers to 1 global
GEMMA3_27B = {"architectures": ["Gemma3ForConditionalGeneration"],
              "text_config": {"model_type": "gemma3_text", "hidden_size": 5376, "num_attention_heads": 32,
                              "num_key_value_heads": 16, "head_dim": 128, "num_hidden_layers": 62,
                              "sliding_window": 1024, "sliding_window_pattern": 6,
                              "max_position_embeddings": 131072},
              "torch_dtype": "bfloat16"}
H100_NVML_TOTAL = 85_520_809_984  # what NVML reports for an H100 80GB HBM3 (79.6 GiB)


def test_llama3_8b_holds_128_kib_of_kv_per_token():
    # 32 layers × 8 KV heads × 128 head_dim × 2 (K and V) × 2 bytes (bf16) = 131,072 bytes
    shape = kv_shape(LLAMA3_8B)
    assert shape.bytes_per_token == 32 * 8 * 128 * 2 * 2 == 128 * 1024
    assert shape.bytes_per_sequence(8192) == 8192 * 128 * 1024  # 1 GiB for one 8K sequence


def test_fp8_kv_cache_halves_it():
    assert kv_shape(LLAMA3_8B, kv_cache_dtype="fp8").bytes_per_token == 64 * 1024


def test_mistral_rolling_buffer_saves_8x_at_32k():
    # Mistral 7B paper, "Rolling Buffer Cache": at 32k tokens the window of 4,096 "reduces the cache memory
    # usage by 8x". With one token in flight vLLM keeps window − 1 + 1 tokens per layer.
    shape = kv_shape(MISTRAL_7B)
    assert shape.bytes_per_token == 128 * 1024
    full = 32768 * shape.bytes_per_token
    assert full / shape.bytes_per_sequence(32768, batched_tokens=1) == pytest.approx(8.0)
    # with vLLM's chunked prefill the window keeps the in-flight tokens too (SlidingWindowSpec)
    assert shape.bytes_per_sequence(32768, batched_tokens=2048) == (4096 - 1 + 2048) * 128 * 1024
    # a short sequence never exceeds its own length
    assert shape.bytes_per_sequence(1000) == 1000 * 128 * 1024


def test_gemma3_local_global_layers_from_the_text_config():
    shape = kv_shape(GEMMA3_27B)
    windows = [layer.window for layer in shape.layers]
    assert len(windows) == 62 and windows.count(None) == 10 and windows.count(1024) == 52  # layers 6, 12, … 60
    per_layer = 2 * 16 * 128 * 2
    assert shape.bytes_per_token == 62 * per_layer
    # at 128K context only the 10 global layers grow: 52 local layers hold 1,023 + 1 tokens
    assert shape.bytes_per_sequence(131072, batched_tokens=1) == (10 * 131072 + 52 * 1024) * per_layer
    assert context_limit(GEMMA3_27B) == 131072


def test_gemma4_global_layers_own_shape_and_shared_kv():
    config = {"model_type": "gemma4_text", "hidden_size": 2560, "num_attention_heads": 8, "num_key_value_heads": 2,
              "head_dim": 256, "global_head_dim": 512, "num_global_key_value_heads": 1, "num_hidden_layers": 12,
              "sliding_window": 512, "layer_types": ["sliding_attention"] * 5 + ["full_attention"]
              + ["sliding_attention"] * 5 + ["full_attention"], "num_kv_shared_layers": 6}
    shape = kv_shape(config)
    assert len(shape.layers) == 6  # the last 6 reuse earlier layers' KV
    assert [layer.elements for layer in shape.layers] == [2 * 2 * 256] * 5 + [2 * 1 * 512]
    assert any("share" in n for n in shape.notes)


def test_linear_attention_layers_hold_no_per_token_kv():
    config = {"hidden_size": 2048, "num_attention_heads": 16, "num_key_value_heads": 2, "head_dim": 256,
              "num_hidden_layers": 4, "layer_types": ["linear_attention"] * 3 + ["full_attention"]}
    shape = kv_shape(config)
    assert shape.bytes_per_token == 2 * 2 * 256 * 2
    assert any("fixed state" in n for n in shape.notes)


def test_llama3_8b_fits_an_h100_and_the_largest_context_is_the_models_own(tmp_path):
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"metadata": {"total_size": 16_060_522_496}}))
    weights, how = weights_bytes(tmp_path, 8.03, 2)
    assert (weights, how) == (16_060_522_496, "safetensors index")
    result = fit(budget=0.9 * H100_NVML_TOTAL, weights=weights, drafter=0, shapes=[kv_shape(LLAMA3_8B)],
                 max_model_len=8192, seqs=16, context_limit=context_limit(LLAMA3_8B))
    assert result.verdict == "fits"
    # KV space ≈ 54.7 GiB → ~448K tokens: every 8K sequence fits, so the model's own limit is the answer
    assert result.kv_space / result.kv_per_token == pytest.approx(448_308, rel=1e-3)
    assert result.largest_len_one == result.largest_len_all == 8192


def test_too_long_a_context_does_not_start_and_the_largest_that_fits_is_named():
    # Llama 3.1 8B (128K context) bf16 on a 24 GB card at util 0.9: 21.6 GiB − 15 GiB weights − 2 GiB
    result = fit(budget=0.9 * 24 * GIB, weights=16_060_522_496, drafter=0, shapes=[kv_shape(LLAMA3_8B)],
                 max_model_len=131072, seqs=4, context_limit=131072)
    assert result.verdict == "does_not_start"
    expected = int(result.kv_space // (128 * 1024)) // 16 * 16
    assert result.largest_len_one == pytest.approx(expected, abs=16)
    assert result.largest_len_all == pytest.approx(expected // 4, abs=16)
    assert result.largest_len_one < 131072


def test_fewer_full_sequences_than_max_num_seqs_starts_but_queues():
    # 20 GiB of KV space holds 20 × 8K sequences of 1 GiB, not 32
    result = fit(budget=40 * GIB, weights=18 * GIB, drafter=0, shapes=[kv_shape(LLAMA3_8B)],
                 max_model_len=8192, seqs=32, overhead=2 * GIB, context_limit=8192)
    assert result.verdict == "no_full_concurrency"
    assert result.largest_len_one == 8192
    assert result.largest_len_all == pytest.approx(20 * 1024 // 32 * 8, abs=16)


def test_online_quantization_counts_params_not_the_bf16_checkpoint(tmp_path):
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"metadata": {"total_size": 62_000_000_000}}))
    assert weights_bytes(tmp_path, 31, 1, online_quantization=True) == (31e9, "online quantization: params × bytes")
    assert weights_bytes(None, 31, 2) == (62e9, "params × bytes per param")
