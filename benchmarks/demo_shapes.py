"""Candidate shapes for the demo's widened target, side by side in one run: start-up and speed-ups at c=1.

The demo's target is tiny-target widened with zeros (``console.models.widen``); its size decides both how
much speculative decoding can win (the target must cost much more than the 1.6 M-parameter drafters) and how
long the first ``specdeck demo`` takes (each server start, every timed token). For each shape given as
``LAYERSxHIDDEN`` (heads = hidden / 64, intermediate = 4 × hidden) this builds the widening into a work dir
(seconds; never into the shared models dir), then serves it as the demo does (float32, max-model-len 2048,
max-num-batched-tokens 256) three times, one server at a time: AR, draft_model k=4 with tiny-draft-exact (the
same function) and with tiny-draft-noisy. It prints start-up seconds (the vLLM log's engine-init figure
beside them), tok/s at c=1 and the speed-ups. A ``:eager`` suffix adds ``--enforce-eager`` (no torch.compile
warm-up at start-up).

    flock /tmp/specdeck-engine.lock python benchmarks/demo_shapes.py --shapes 12x1024,4x1024,8x512
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from drafter_noise import measure, prompts, vllm_server  # noqa: E402

from console.models import TARGET_NAME, TargetRecipe, WideRecipe, build_models, default_models_dir  # noqa: E402

DRAFTERS = {"ar": None, "exact-k4": "tiny-draft-exact", "noisy-k4": "tiny-draft-noisy"}
INIT = re.compile(r"init engine \(profile, create kv cache, warmup model\) took ([0-9.]+) s")


@dataclass
class ShapeRow:
    """One server of one candidate shape."""

    shape: str
    params_m: float
    server: str
    startup_s: float
    engine_init_s: float | None
    tok_s: float
    acceptance_length: float
    per_position: list[float]
    load_avg: float


def parse_shape(text: str) -> tuple[int, int, bool]:
    """``12x1024`` → (12, 1024, False); ``4x1024:eager`` → (4, 1024, True)."""
    body, _, flag = text.partition(":")
    layers, hidden = (int(x) for x in body.lower().split("x"))
    return layers, hidden, flag == "eager"


def wide_recipe(target: TargetRecipe, layers: int, hidden: int) -> WideRecipe:
    return WideRecipe(target=target, hidden_size=hidden, num_attention_heads=hidden // 64,
                      intermediate_size=4 * hidden, num_hidden_layers=layers)


def params_m(r: WideRecipe) -> float:
    a = r.arch
    per_layer = 4 * a.hidden_size ** 2 + 3 * a.hidden_size * a.intermediate_size + 2 * a.hidden_size
    return (a.num_hidden_layers * per_layer + 2 * a.vocab_size * a.hidden_size + a.hidden_size) / 1e6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", default="12x1024,4x1024,8x512", help="comma-separated LAYERSxHIDDEN[:eager]")
    ap.add_argument("--servers", default="ar,exact-k4,noisy-k4", help=f"which of {', '.join(DRAFTERS)}")
    ap.add_argument("--requests", type=int, default=3)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--work-dir", type=Path, default=Path.home() / ".cache" / "specdeck" / "demo-shapes")
    ap.add_argument("--startup-timeout", type=float, default=900.0)
    ap.add_argument("--json", type=Path, help="also write the rows here")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    target = TargetRecipe()
    shapes = [parse_shape(s) for s in args.shapes.split(",") if s.strip()]
    recipes = {TARGET_NAME: target} | {f"wide-{layers}x{hidden}": wide_recipe(target, layers, hidden)
                                       for layers, hidden, _ in shapes}
    paths = build_models(args.work_dir / "models", recipes=recipes, progress=lambda m: print("  " + m),
                         reuse_from=[default_models_dir()])
    drafters = build_models(default_models_dir())
    texts = prompts(args.requests, 600)
    rows: list[ShapeRow] = []
    for layers, hidden, eager in shapes:
        name = f"wide-{layers}x{hidden}"
        label = name + (":eager" if eager else "")
        for server in args.servers.split(","):
            draft = DRAFTERS[server]
            log = args.work_dir / f"server-{label.replace(':', '-')}-{server}.log"
            with vllm_server(paths[name], drafters[draft] if draft else None, 4, log, args.startup_timeout,
                             max_num_batched_tokens=256, dtype="float32",
                             extra_args=("--enforce-eager",) if eager else ()) as (url, startup):
                r = measure(url, texts, args.max_tokens, 0.0, 4, None if draft is None else 0.0)
            m = INIT.search(log.read_text(errors="replace"))
            rows.append(ShapeRow(label, params_m(recipes[name]), server, startup,  # type: ignore[arg-type]
                                 float(m.group(1)) if m else None, r.tok_per_s, r.acceptance_length,
                                 r.per_position, r.load_avg))
            print(f"{label} {server}: start-up {startup:.0f} s (engine init {rows[-1].engine_init_s}), "
                  f"{r.tok_per_s:.1f} tok/s, acc. len {r.acceptance_length:.2f} (load {r.load_avg:.1f})",
                  flush=True)
    print(f"\n{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; c=1, {len(texts)} requests × {args.max_tokens} "
          "tokens, float32, greedy, ignore_eos")
    print("| shape | params | server | start-up s | engine init s | tok/s | vs AR | acc. len | per position | load |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        ar = next((x.tok_s for x in rows if x.shape == row.shape and x.server == "ar"), None)
        ratio = f"{row.tok_s / ar:.2f}×" if ar and row.server != "ar" else "–"
        pos = " ".join(f"{p:.2f}" for p in row.per_position) or "–"
        init = f"{row.engine_init_s:.0f}" if row.engine_init_s is not None else "?"
        print(f"| {row.shape} | {row.params_m:.0f} M | {row.server} | {row.startup_s:.0f} | {init} | "
              f"{row.tok_s:.1f} | {ratio} | {row.acceptance_length:.2f} | {pos} | {row.load_avg:.1f} |")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
