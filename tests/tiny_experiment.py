"""The small experiment on the 2-layer tiny target that the console's real-engine tests and
benchmarks/gpu_busy.py serve: one model, AR (and optionally ngram), one short context at c=1, a short speed
workload and a short full run of the built-in toy quiz. One text, so the three cannot drift apart."""

from __future__ import annotations

NGRAM_K4 = """
[[techniques]]
id = "ngram-k4"
method = "ngram"
k = 4
config = { prompt_lookup_max = 4, prompt_lookup_min = 2 }
"""


def tiny_experiment_toml(name: str, comment: str, *, ngram: bool = False, output_tokens: int = 64,
                         repeats: int = 1, requests_per_repeat: int = 2, full_items: int = 8) -> str:
    """The experiment file's text: cells tiny.bf16.ar.short.c1 (and tiny.bf16.ngram-k4.short.c1 with ngram)."""
    return f"""\
# {comment}
[experiment]
name = "{name}"
device = "cpu"
[serving]
max_model_len = 2048
dtype = "bfloat16"
cpu_kvcache_space_gib = 1
enable_prefix_caching = false
startup_timeout_s = 900
[[models]]
id = "tiny"
path = "@models/tiny-target"
served_name = "tiny"
total_params_b = 0.00157
bytes_per_param = 2
precision = "bf16"
toy = true
[[techniques]]
id = "ar"
method = "ar"
{NGRAM_K4 if ngram else ""}
[workload]
contexts = [{{ label = "short", tokens = 128 }}]
output_tokens = {output_tokens}
concurrency = [1]
repeats = {repeats}
requests_per_repeat = {requests_per_repeat}
warmup_requests = 1
[generation]
temperature = 0.0
top_p = 1.0
max_tokens = 64
[[benchmarks]]
id = "toy-mcq"
framework = "builtin"
task = "toy-mcq"
options = 4
smoke_items = 5
full_items = {full_items}
expected_output_tokens = 24
"""
