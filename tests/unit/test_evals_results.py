"""Result normalisation: blanks, extraction failures and truncations are counted and scored wrong, never
dropped; the built-in runner's response handling; the smoke gate on the trap."""

from __future__ import annotations

import math
from pathlib import Path

import httpx
import pytest

from console.evals.base import EvalItem, EvalResult, EvalTarget
from console.evals.builtin import BuiltinMCQ, EvalRequestError, chat_body, item_from_response
from console.evals.data import MCQItem
from console.evals.smoke import judge_smoke
from console.experiment.schema import Benchmark, Generation

MCQ = MCQItem("toy-000", "Which is largest?", ("5", "6", "8", "4"), "C", "Which is largest? (A)5 (B)6 (C)8 (D)4")


def response(content: str | None, finish: str = "stop", tokens: int = 9, reasoning: str | None = None) -> dict:
    message: dict = {"role": "assistant", "content": content}
    if reasoning is not None:
        message["reasoning_content"] = reasoning
    return {"choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"completion_tokens": tokens}}


def test_item_from_response_last_and_first() -> None:
    data = response("(D) is smallest. Answer: (C)")
    last = item_from_response(MCQ, data, "last")
    first = item_from_response(MCQ, data, "first")
    assert (last.extracted, last.correct, last.target) == ("C", True, "C")
    assert (first.extracted, first.correct) == ("D", False)
    assert (last.finish_reason, last.output_tokens) == ("stop", 9)


def test_reasoning_content_is_kept_but_not_read() -> None:
    item = item_from_response(MCQ, response("Answer: (C)", reasoning="maybe (A)?"), "last")
    assert item.raw_output == "<think>maybe (A)?</think>Answer: (C)"
    assert item.extracted == "C"
    assert item_from_response(MCQ, response("Answer: (C)", reasoning="maybe (A)?"), "first").extracted == "A"


def test_normalisation_counts_everything() -> None:
    items = [
        item_from_response(MCQ, response("Answer: (C)"), "last"),                    # right
        item_from_response(MCQ, response("Answer: (A)"), "last"),                    # wrong
        item_from_response(MCQ, response(""), "last"),                               # blank
        item_from_response(MCQ, response(None), "last"),                             # blank (null content)
        item_from_response(MCQ, response("I think the"), "last"),                    # extraction failure
        item_from_response(MCQ, response("<think>(C) is", "length", 64), "last"),   # truncated, no body
    ]
    r = EvalResult.from_items("toy-mcq", "builtin", "smoke", items)
    assert (r.n, r.blanks, r.extraction_failures, r.truncations) == (6, 2, 2, 1)
    assert r.score == pytest.approx(1 / 6)
    assert r.stderr == pytest.approx(math.sqrt((1 / 6) * (5 / 6) / 6))
    assert all(i.correct is False for i in items[1:])


def bench(extractor: str = "last") -> Benchmark:
    return Benchmark(id="toy-mcq", framework="builtin", task="toy-mcq", options=4, extractor=extractor)  # type: ignore[arg-type]


def test_smoke_gate_catches_the_trap() -> None:
    outs = ["(D) is smallest. Answer: (C)", "(A) is smallest. Answer: (C)", "(B) is smallest. Answer: (C)"] * 2
    for extractor, passed in (("last", True), ("first", False)):
        items = [item_from_response(MCQ, response(o), extractor) for o in outs[:5]]
        verdict = judge_smoke(bench(extractor), EvalResult.from_items("toy-mcq", "builtin", "smoke", items))
        assert verdict.passed is passed
        if not passed:
            assert "not above chance" in verdict.reasons[0] and "first-letter" in verdict.reasons[0]
            assert verdict.notes


def test_truncation_fails_smoke() -> None:
    items = [EvalItem(str(i), "Answer: (C", "C", True, "C", "length", 64) for i in range(5)]
    verdict = judge_smoke(bench(), EvalResult.from_items("toy-mcq", "builtin", "smoke", items))
    assert not verdict.passed and any("truncated" in r for r in verdict.reasons)


def test_chat_body_carries_generation() -> None:
    body = chat_body("tiny", "Q", Generation(temperature=0.6, top_p=0.95, max_tokens=32768))
    assert (body["temperature"], body["top_p"], body["max_tokens"], body["stream"]) == (0.6, 0.95, 32768, False)
    assert body["messages"] == [{"role": "user", "content": "Q"}]


class FakeServer:
    """An httpx MockTransport standing in for /v1/chat/completions."""

    def __init__(self, fail: bool = False) -> None:
        self.seen: list[dict] = []
        self.fail = fail

    def __call__(self, request: httpx.Request) -> httpx.Response:
        import json

        body = json.loads(request.content)
        self.seen.append(body)
        if self.fail:
            return httpx.Response(500, text="EngineDeadError")
        return httpx.Response(200, json=response("(A) is smallest. Answer: (C)"))


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeServer:
    server = FakeServer()
    real = httpx.AsyncClient

    def client(*args: object, **kwargs: object) -> httpx.AsyncClient:
        kwargs["transport"] = httpx.MockTransport(server)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(httpx, "AsyncClient", client)
    return server


def test_builtin_honours_limit_and_skip_ids(fake: FakeServer, tmp_path: Path) -> None:
    got: list[EvalItem] = []
    result = BuiltinMCQ(concurrency=2).run(
        bench(), EvalTarget("http://x", "key", "tiny"), stage="smoke", limit=5,
        generation=Generation(temperature=0, top_p=1, max_tokens=32), out_dir=tmp_path,
        skip_ids={"toy-000", "toy-003"}, on_item=got.append)
    assert sorted(i.item_id for i in got) == ["toy-001", "toy-002", "toy-004"]
    assert result.n == 3 and len(fake.seen) == 3
    assert all(b["max_tokens"] == 32 and b["model"] == "tiny" for b in fake.seen)
    assert (tmp_path / "items.jsonl").read_text().count("\n") == 3


async def test_builtin_inside_a_running_loop(fake: FakeServer, tmp_path: Path) -> None:
    result = BuiltinMCQ().run(bench(), EvalTarget("http://x", None, "tiny"), stage="smoke", limit=2,
                              generation=Generation(), out_dir=tmp_path, skip_ids=set(), on_item=lambda i: None)
    assert result.n == 2


def test_builtin_server_errors_stop_the_stage(fake: FakeServer, tmp_path: Path) -> None:
    fake.fail = True
    with pytest.raises(EvalRequestError, match="HTTP 500"):
        BuiltinMCQ(retries=1).run(bench(), EvalTarget("http://x", None, "tiny"), stage="smoke", limit=2,
                                  generation=Generation(), out_dir=tmp_path, skip_ids=set(),
                                  on_item=lambda i: None)
