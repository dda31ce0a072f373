"""The built-in MCQ runner (the study's custom HRET runner, for haerae / KMMLU-style sets).

One chat completion per item against the cell's own server, ``concurrency`` at a time (async httpx); the
answer is the LAST answer letter of the final body, after any reasoning block (``console.evals.extract``).
Each item is reported through ``on_item`` as soon as it finishes, so a killed run loses at most the requests
in flight; items whose ids are in ``skip_ids`` were committed before and are not sent again.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from console.evals.base import EvalFailed, EvalItem, EvalResult, EvalTarget
from console.evals.data import MCQItem, load_items, resolve_dataset
from console.evals.extract import extract_answer
from console.experiment.schema import Benchmark, Generation


class EvalRequestError(EvalFailed, RuntimeError):
    """A request the server kept failing: the stage stops (committed items stay) instead of scoring a
    server error as a wrong answer."""


def chat_body(model: str, prompt: str, generation: Generation) -> dict[str, Any]:
    """The request every built-in item sends (thinking-on settings come from ``generation``)."""
    return {"model": model, "messages": [{"role": "user", "content": prompt}],
            "temperature": generation.temperature, "top_p": generation.top_p,
            "max_tokens": generation.max_tokens, "stream": False}


def item_from_response(mcq: MCQItem, data: dict[str, Any], extractor: str) -> EvalItem:
    """Score one chat-completions response. A separate ``reasoning_content`` (vLLM reasoning parser) is kept
    in front of the body inside <think>…</think>, so the raw record is complete and extraction still reads
    only the final body."""
    choice = (data.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    body = message.get("content") or ""
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    raw = f"<think>{reasoning}</think>{body}" if reasoning else body
    extracted = extract_answer(raw, len(mcq.choices), "first" if extractor == "first" else "last")
    usage = data.get("usage") or {}
    return EvalItem(item_id=mcq.id, raw_output=raw, extracted=extracted,
                    correct=extracted is not None and extracted == mcq.answer, target=mcq.answer,
                    finish_reason=choice.get("finish_reason"), output_tokens=usage.get("completion_tokens"))


class BuiltinMCQ:
    """EvalAdapter for jsonl MCQ sets: a shipped task name (toy-mcq, toy-mcq-ko, gpqa-style) or a path."""

    framework = "builtin"

    def __init__(self, concurrency: int = 4, base_dir: Path | None = None, retries: int = 2,
                 timeout_s: float = 3600.0) -> None:
        self.concurrency = concurrency
        self.base_dir = base_dir
        self.retries = retries
        self.timeout_s = timeout_s

    def items(self, bench: Benchmark) -> list[MCQItem]:
        return load_items(resolve_dataset(bench.task, self.base_dir))

    def run(self, bench: Benchmark, target: EvalTarget, *, stage: str, limit: int | None,
            generation: Generation, out_dir: Path, skip_ids: set[str],
            on_item: Callable[[EvalItem], None]) -> EvalResult:
        items = self.items(bench)
        chosen = items[:limit] if limit else items
        todo = [i for i in chosen if i.id not in skip_ids]
        out_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        done = _run_sync(self._run_all(bench, target, todo, generation, out_dir, on_item))
        wall = time.perf_counter() - t0
        result = EvalResult.from_items(bench.id, self.framework, stage, done, wall_s=wall)
        return result

    async def _run_all(self, bench: Benchmark, target: EvalTarget, todo: list[MCQItem],
                       generation: Generation, out_dir: Path,
                       on_item: Callable[[EvalItem], None]) -> list[EvalItem]:
        sem = asyncio.Semaphore(max(1, self.concurrency))
        headers = {"Authorization": f"Bearer {target.api_key}"} if target.api_key else {}
        url = f"{target.base_url.rstrip('/')}/v1/chat/completions"
        done: list[EvalItem] = []
        log = (out_dir / "items.jsonl").open("a", encoding="utf-8")
        limits = httpx.Limits(max_connections=max(1, self.concurrency))
        try:
            async with httpx.AsyncClient(headers=headers, timeout=self.timeout_s, limits=limits) as client:

                async def one(mcq: MCQItem) -> None:
                    async with sem:
                        data = await self._post(client, url, chat_body(target.model, mcq.prompt, generation))
                    item = item_from_response(mcq, data, bench.extractor)
                    done.append(item)
                    log.write(json.dumps(item.to_dict(), ensure_ascii=False) + "\n")
                    log.flush()
                    on_item(item)

                tasks = [asyncio.create_task(one(m)) for m in todo]
                try:
                    await asyncio.gather(*tasks)
                except BaseException:
                    for t in tasks:
                        t.cancel()
                    await asyncio.gather(*tasks, return_exceptions=True)
                    raise
        finally:
            log.close()
        return done

    async def _post(self, client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> dict[str, Any]:
        last = ""
        for attempt in range(self.retries + 1):
            try:
                r = await client.post(url, json=body)
                if r.status_code < 400:
                    data: dict[str, Any] = r.json()
                    return data
                last = f"HTTP {r.status_code}: {r.text[:300]}"
                if r.status_code in (400, 401, 403, 404, 422):
                    break  # the request itself is wrong: retrying will not help
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
            await asyncio.sleep(0.5 * (attempt + 1))
        raise EvalRequestError(f"{url} failed: {last}", "check the server log (and max_model_len vs max_tokens); "
                               f"{EvalFailed.fix}")


def _run_sync(coro: Any) -> Any:
    """asyncio.run, or in a helper thread when this thread already runs a loop (TUI workers, async tests)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=target, name="builtin-mcq", daemon=True)
    worker.start()
    worker.join()
    if "error" in box:
        raise box["error"]
    return box["value"]
