"""Latency phase: streaming is latency-only, and a streaming tok/s for a speculative cell is refused."""

from __future__ import annotations

import pytest

from console.bench.client import BenchClient
from console.bench.latency import (
    LATENCY_LABEL,
    StreamingThroughputRefused,
    check_streaming_throughput,
    measure_latency,
)
from console.experiment.schema import SPECULATIVE_METHODS

from .test_bench_fake_vllm import FakeVllm, fake_vllm  # noqa: F401 - fixture


@pytest.mark.parametrize("method", sorted(SPECULATIVE_METHODS | {"diffusion"}))
def test_streaming_tok_s_is_refused_for_speculative_cells(method: str) -> None:
    with pytest.raises(StreamingThroughputRefused, match="bursts") as exc:
        check_streaming_throughput(method)
    assert "3×" in str(exc.value) and "non-streaming" in str(exc.value)


def test_ar_may_have_a_streaming_tok_s() -> None:
    check_streaming_throughput("ar")


async def test_latency_result_is_labelled_and_refuses_for_spec(fake_vllm: FakeVllm) -> None:  # noqa: F811
    fake_vllm.speculative = True
    async with BenchClient(fake_vllm.url, "tiny") as client:
        res = await measure_latency(client, ["a prompt", "another"], 16, cell_id="c", method="draft_model",
                                    want_streaming_tok_s=True)
    d = res.to_dict()
    assert d["label"] == LATENCY_LABEL and d["failures"] == 0
    assert d["streaming_tok_s"] is None and "refused" in d["streaming_tok_s_refused"]
    assert d["tokens_per_chunk_mean"] == 4.0  # the bursts a streaming meter would flatten
    assert d["ttft_s"]["n"] == 2 and d["itl_s"]["n"] == 2 * 3
    assert res.timings[0].completion_tokens == 16


async def test_ar_streaming_tok_s_when_asked(fake_vllm: FakeVllm) -> None:  # noqa: F811
    async with BenchClient(fake_vllm.url, "tiny") as client:
        res = await measure_latency(client, ["p"], 8, cell_id="c", method="ar", want_streaming_tok_s=True)
    assert res.refused is None and res.streaming_tok_s and res.streaming_tok_s > 0
    assert res.to_dict()["tokens_per_chunk_mean"] == 1.0
