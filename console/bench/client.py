"""The bench's HTTP client: one aiohttp session per server, non-streaming completions that record their own
send and response times, and the server's /tokenize and /detokenize.

aiohttp (not httpx) because the load generator shares the CPU with the server it measures: the cheaper the
client, the less it steals (benchmarks/harness_overhead.py keeps this honest).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp

Api = Literal["completions", "chat"]
Prompt = str | list[int]


@dataclass(frozen=True)
class Completion:
    """One request as the bench saw it: when it was sent and answered (perf_counter seconds), what usage
    said, and the error if it failed. Failed requests are kept, never dropped."""

    index: int
    sent_at: float
    done_at: float
    completion_tokens: int = 0
    prompt_tokens: int = 0
    finish_reason: str | None = None
    error: str | None = None
    text: str = ""
    token_ids: tuple[int, ...] | None = None

    @property
    def latency_s(self) -> float:
        return self.done_at - self.sent_at


def token_ids_of(choice: dict[str, Any]) -> tuple[int, ...] | None:
    """Generated token ids of a response choice: `token_ids` (vLLM's `return_token_ids`), else logprobs
    tokens written as `token_id:N` (`return_tokens_as_token_ids`); None when neither is there."""
    ids = choice.get("token_ids")
    if isinstance(ids, list):
        return tuple(int(i) for i in ids)
    lp = choice.get("logprobs") or {}
    tokens = lp.get("tokens") if isinstance(lp, dict) else None
    if tokens is None and isinstance(lp, dict) and isinstance(lp.get("content"), list):
        tokens = [c.get("token") for c in lp["content"]]
    if tokens and all(isinstance(t, str) and t.startswith("token_id:") for t in tokens):
        return tuple(int(t.split(":", 1)[1]) for t in tokens)
    return None


def request_body(api: Api, model: str, prompt: Prompt, max_tokens: int, *, ignore_eos: bool = True,
                 temperature: float = 0.0, stream: bool = False, **extra: Any) -> dict[str, Any]:
    """The measurement rule's request: non-streaming unless asked, fixed max_tokens, ignore_eos."""
    body: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "ignore_eos": ignore_eos,
                            "temperature": temperature, "stream": stream}
    if api == "chat":
        if not isinstance(prompt, str):
            raise TypeError("chat requests take text prompts, not token ids")
        body["messages"] = [{"role": "user", "content": prompt}]
    else:
        body["prompt"] = prompt
    body.update(extra)
    return body


def parse_completion(index: int, sent_at: float, done_at: float, data: dict[str, Any], api: Api) -> Completion:
    """A Completion from a 200 response body (missing usage is an error: the rule needs it)."""
    usage = data.get("usage") or {}
    choices = data.get("choices") or [{}]
    choice = choices[0]
    text = choice.get("text") if api == "completions" else (choice.get("message") or {}).get("content")
    if "completion_tokens" not in usage:
        return Completion(index, sent_at, done_at, error="response has no usage.completion_tokens")
    return Completion(index, sent_at, done_at, int(usage["completion_tokens"]), int(usage.get("prompt_tokens") or 0),
                      choice.get("finish_reason"), None, text or "", token_ids_of(choice))


@dataclass
class BenchClient:
    """An async session against one server. Use `async with BenchClient(...) as c:`."""

    base_url: str
    model: str
    api_key: str | None = None
    api: Api = "completions"
    max_connections: int = 16
    timeout_s: float = 3600.0
    _session: aiohttp.ClientSession | None = field(default=None, init=False, repr=False)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path

    @property
    def endpoint(self) -> str:
        return "/v1/chat/completions" if self.api == "chat" else "/v1/completions"

    async def __aenter__(self) -> BenchClient:
        connector = aiohttp.TCPConnector(limit=max(1, self.max_connections), force_close=False)
        self._session = aiohttp.ClientSession(
            headers=self.headers, connector=connector,
            timeout=aiohttp.ClientTimeout(total=self.timeout_s),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("BenchClient used outside `async with`")
        return self._session

    async def complete(self, index: int, prompt: Prompt, max_tokens: int, **kw: Any) -> Completion:
        """One non-streaming request; never raises for HTTP or connection errors (they are recorded)."""
        body = request_body(self.api, self.model, prompt, max_tokens, **kw)
        sent = time.perf_counter()
        try:
            async with self.session.post(self.url(self.endpoint), json=body) as r:
                raw = await r.read()
                done = time.perf_counter()
                if r.status != 200:
                    return Completion(index, sent, done, error=f"HTTP {r.status}: {raw[:300].decode(errors='replace')}")
            return parse_completion(index, sent, done, json.loads(raw), self.api)
        except (aiohttp.ClientError, asyncio.TimeoutError, json.JSONDecodeError) as exc:
            return Completion(index, sent, time.perf_counter(), error=f"{type(exc).__name__}: {exc}")

    async def post_json(self, path: str, body: dict[str, Any]) -> Any:
        async with self.session.post(self.url(path), json=body) as r:
            if r.status != 200:
                text = await r.text()
                raise RuntimeError(f"POST {path} → HTTP {r.status}: {text[:300]}")
            return await r.json()

    async def tokenize(self, text: str, *, add_special_tokens: bool = True) -> list[int]:
        """Token ids exactly as the server will see `text` as a completions prompt."""
        out = await self.post_json("/tokenize", {"model": self.model, "prompt": text,
                                                 "add_special_tokens": add_special_tokens})
        return [int(t) for t in out["tokens"]]

    async def count_prompt_tokens(self, text: str) -> int:
        """Prompt tokens the server will count for `text` on this client's API (chat: after the template)."""
        if self.api == "chat":
            out = await self.post_json("/tokenize", {"model": self.model, "add_generation_prompt": True,
                                                     "messages": [{"role": "user", "content": text}]})
            return int(out["count"])
        return len(await self.tokenize(text))

    async def detokenize(self, ids: Sequence[int]) -> str:
        out = await self.post_json("/detokenize", {"model": self.model, "tokens": list(ids)})
        return str(out["prompt"])

    async def metrics_text(self) -> str:
        async with self.session.get(self.url("/metrics")) as r:
            r.raise_for_status()
            return await r.text()
