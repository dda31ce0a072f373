"""A fake vLLM OpenAI server (aiohttp) for the bench's unit tests, and the client tests that use it.

It speaks just enough: /v1/completions (non-streaming and SSE with include_usage and per-chunk token ids),
/tokenize and /detokenize (one token per character, BOS in front), /metrics (request and spec-decode
counters), and it writes `SpecDecoding metrics:` lines to a log file like vLLM does. Knobs make it fail,
return short responses, or diverge from "AR" at a chosen token.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from console.bench.client import BenchClient, parse_completion, request_body, token_ids_of

BOS = 1


def fake_ids(text: str) -> list[int]:
    return [ord(c) + 3 for c in text]


def fake_text(ids: list[int]) -> str:
    return "".join(chr(i - 3) for i in ids if i >= 3)


@dataclass
class FakeVllm:
    """Mutable knobs; `url` is set once the server listens."""

    log_path: Path
    speculative: bool = False
    k: int = 4
    accepted_per_draft: float = 3.0
    per_token_s: float = 0.0002
    fail_every: int = 0
    short_every: int = 0
    diverge_at: int | None = None
    """Speculative mode: generated ids differ from AR's from this index on (every other prompt)."""
    url: str = ""
    requests: int = 0
    drafts: float = 0
    draft_tokens: float = 0
    accepted: float = 0
    per_pos: list[float] = field(default_factory=lambda: [0.0] * 8)
    bodies: list[dict] = field(default_factory=list)

    def generated(self, prompt: str, n: int) -> list[int]:
        seed = hashlib.sha256(prompt.encode()).digest()
        ids = [seed[i % len(seed)] + 3 for i in range(n)]
        if self.speculative and self.diverge_at is not None and seed[0] % 2 == 0 and n > self.diverge_at:
            ids[self.diverge_at] += 1
        return ids

    def answer(self, prompt: str, n: int) -> str:
        if "vault is " in prompt:
            code = prompt.split("vault is ", 1)[1][:6]
            return f" {code}."[:n]
        return fake_text(self.generated(prompt, n))

    def account(self, n: int) -> None:
        self.requests += 1
        if not self.speculative:
            return
        drafts = n / (1 + self.accepted_per_draft)
        self.drafts += drafts
        self.draft_tokens += drafts * self.k
        self.accepted += drafts * self.accepted_per_draft
        rates = [min(1.0, max(0.0, self.accepted_per_draft - i)) for i in range(self.k)]
        for i, r in enumerate(rates):
            self.per_pos[i] += drafts * r
        with self.log_path.open("a") as f:
            f.write(
                "(APIServer pid=1) INFO 11-23 02:37:42 [metrics.py:120] SpecDecoding metrics: "
                f"Mean acceptance length: {1 + self.accepted_per_draft:.2f}, Accepted throughput: 1.0 tokens/s, "
                f"Drafted throughput: 1.0 tokens/s, Accepted: {round(drafts * self.accepted_per_draft)} tokens, "
                f"Drafted: {round(drafts * self.k)} tokens, Per-position acceptance rate: "
                + ", ".join(f"{r:.3f}" for r in rates)
                + f", Avg Draft acceptance rate: {100 * self.accepted_per_draft / self.k:.1f}%\n"
            )

    async def completions(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.bodies.append(body)
        prompt = body["prompt"] if isinstance(body["prompt"], str) else fake_text(body["prompt"])
        n = int(body["max_tokens"])
        idx = len(self.bodies)
        if self.fail_every and idx % self.fail_every == 0:
            return web.json_response({"error": "boom"}, status=500)
        if self.short_every and idx % self.short_every == 0:
            n = max(1, n // 2)
        await asyncio.sleep(self.per_token_s * n)
        text = self.answer(prompt, n) if not body.get("ignore_eos") else fake_text(self.generated(prompt, n))
        ids = self.generated(prompt, n) if body.get("ignore_eos") else fake_ids(text)
        n_out = len(ids)
        prompt_tokens = 1 + len(prompt)
        if body.get("stream"):
            resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await resp.prepare(request)
            for i in range(0, n_out, self.k if self.speculative else 1):
                chunk = ids[i:i + (self.k if self.speculative else 1)]
                data = {"choices": [{"index": 0, "text": fake_text(chunk), "token_ids": chunk}]}
                await resp.write(f"data: {json.dumps(data)}\n\n".encode())
                await asyncio.sleep(self.per_token_s)
            usage = {"prompt_tokens": prompt_tokens, "completion_tokens": n_out, "total_tokens": prompt_tokens + n_out}
            await resp.write(f"data: {json.dumps({'choices': [], 'usage': usage})}\n\ndata: [DONE]\n\n".encode())
            self.account(n_out)
            return resp
        self.account(n_out)
        choice = {"index": 0, "text": text, "finish_reason": "length" if n_out == n else "stop"}
        if body.get("return_token_ids"):
            choice["token_ids"] = ids
        return web.json_response({"choices": [choice], "usage": {
            "prompt_tokens": prompt_tokens, "completion_tokens": n_out, "total_tokens": prompt_tokens + n_out}})

    async def tokenize(self, request: web.Request) -> web.Response:
        body = await request.json()
        if "messages" in body:
            ids = [BOS, 2] + fake_ids(body["messages"][0]["content"]) + [2]
        else:
            ids = ([BOS] if body.get("add_special_tokens", True) else []) + fake_ids(body["prompt"])
        return web.json_response({"count": len(ids), "tokens": ids, "max_model_len": 100000})

    async def detokenize(self, request: web.Request) -> web.Response:
        return web.json_response({"prompt": fake_text((await request.json())["tokens"])})

    async def metrics(self, request: web.Request) -> web.Response:
        lines = [f'vllm:request_success_total{{finished_reason="length",model_name="tiny"}} {self.requests}']
        if self.speculative:
            lab = 'engine="0",model_name="tiny"'
            lines += [f"vllm:spec_decode_num_drafts_total{{{lab}}} {self.drafts}",
                      f"vllm:spec_decode_num_draft_tokens_total{{{lab}}} {self.draft_tokens}",
                      f"vllm:spec_decode_num_accepted_tokens_total{{{lab}}} {self.accepted}"]
            lines += [f'vllm:spec_decode_num_accepted_tokens_per_pos_total{{{lab},position="{i}"}} {self.per_pos[i]}'
                      for i in range(self.k)]
        return web.Response(text="\n".join(lines) + "\n")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/completions", self.completions)
        app.router.add_post("/tokenize", self.tokenize)
        app.router.add_post("/detokenize", self.detokenize)
        app.router.add_get("/metrics", self.metrics)
        return app


@pytest.fixture
async def fake_vllm(tmp_path: Path):
    fake = FakeVllm(log_path=tmp_path / "server.log")
    fake.log_path.write_text("")
    runner = web.AppRunner(fake.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    fake.url = f"http://127.0.0.1:{port}"
    yield fake
    await runner.cleanup()


# ------------------------------------------------------------------------------------------ client tests


def test_request_body_is_the_measurement_rule() -> None:
    body = request_body("completions", "tiny", "hi", 512)
    assert body == {"model": "tiny", "max_tokens": 512, "ignore_eos": True, "temperature": 0.0, "stream": False,
                    "prompt": "hi"}
    chat = request_body("chat", "tiny", "hi", 8)
    assert chat["messages"] == [{"role": "user", "content": "hi"}] and "prompt" not in chat


def test_token_ids_from_either_response_shape() -> None:
    assert token_ids_of({"token_ids": [5, 6]}) == (5, 6)
    assert token_ids_of({"logprobs": {"tokens": ["token_id:7", "token_id:8"]}}) == (7, 8)
    assert token_ids_of({"logprobs": {"content": [{"token": "token_id:9"}]}}) == (9,)
    assert token_ids_of({"text": "x"}) is None


def test_a_response_without_usage_is_an_error_not_zero_tokens() -> None:
    c = parse_completion(0, 0.0, 1.0, {"choices": [{"text": "x"}]}, "completions")
    assert c.error and "usage" in c.error


async def test_client_records_usage_errors_and_tokenizes(fake_vllm: FakeVllm) -> None:
    fake_vllm.fail_every = 2
    async with BenchClient(fake_vllm.url, "tiny") as client:
        ok = await client.complete(0, "hello", 8, return_token_ids=True)
        bad = await client.complete(1, "hello", 8)
        assert ok.error is None and ok.completion_tokens == 8 and ok.prompt_tokens == 6
        assert ok.token_ids is not None and len(ok.token_ids) == 8 and ok.latency_s > 0
        assert bad.error is not None and bad.error.startswith("HTTP 500")
        assert await client.tokenize("abc") == [BOS, 100, 101, 102]
        assert await client.detokenize([100, 101]) == "ab"
        assert await client.count_prompt_tokens("abc") == 4
