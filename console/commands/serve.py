"""`specdeck serve EXPERIMENT --cell ID`: bring up vLLM for one cell, show live stats until Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from console.serve.logparse import EngineStats, SpecDecodeStats

NAME = "serve"
HELP = "start vLLM for one cell, print its URL and live stats until Ctrl-C, then stop it cleanly"
DESCRIPTION = """\
Start a real vLLM server for one cell of an experiment, exactly as a run would (same argv, its own
process group on 127.0.0.1, a free port, a fresh API key), wait until /health answers, print the URL and
key, then print the engine and speculative-decoding stats vLLM logs while you send it traffic.
Ctrl-C stops the whole process group (SIGTERM, then SIGKILL) and checks that nothing survived.

A start that fails is explained: the reason (CUDA out of memory, KV cache too small for max_model_len,
bad model path, port in use, …), the fix, and the log line that shows it.

examples:
  specdeck serve experiments/demo.toml --cell wide.fp32.draft-exact-k4.short.c1
  specdeck serve experiments/study-h100.toml --cell gemma4-31b.fp8.mtp-k8.short.c1 --stats-every 10
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("experiment", help="experiment .toml file")
    p.add_argument("--cell", help="cell id (see `specdeck validate FILE`); omitted: list the cells")
    p.add_argument("--run-dir", type=Path, help="write server.log here (default: runs/<new id>-serve)")
    p.add_argument("--models-dir", type=Path, help="where @models/ paths point (default: the build cache)")
    p.add_argument("--stats-every", type=float, default=5.0, metavar="S",
                   help="ask vLLM to log stats every S seconds (default 5; vLLM's own default is 10)")
    p.add_argument("--log", action="store_true", help="also echo every raw server log line")


def _fmt_engine(e: EngineStats) -> str:
    parts = [f"gen {e.generation_throughput or 0.0:7.1f} tok/s", f"prompt {e.prompt_throughput or 0.0:7.1f} tok/s",
             f"running {e.running}", f"waiting {e.waiting}"]
    if e.kv_cache_usage_pct is not None:
        parts.append(f"{e.kv_cache_device or ''} KV {e.kv_cache_usage_pct:.1f}%".strip())
    return "  ".join(parts)


def _fmt_spec(e: SpecDecodeStats) -> str:
    pos = " ".join(f"{r:.2f}" for r in e.per_position_acceptance)
    rate = f"{100 * e.draft_acceptance_rate:.1f}%" if e.draft_acceptance_rate is not None else "-"
    mal = f"{e.mean_acceptance_length:.2f}" if e.mean_acceptance_length is not None else "-"
    return f"accept len {mal}  draft acc {rate}  per position: {pos}"


def run(args: argparse.Namespace) -> int:
    from console.experiment.loader import load_experiment
    from console.run.paths import new_run_dir
    from console.serve.logparse import parse_line
    from console.serve.pool import ServerPool
    from console.serve.server import new_api_key

    exp = load_experiment(args.experiment)
    if not args.cell:
        print(f"choose a cell with --cell; {exp.path} has:")
        for c in exp.cells:
            print(f"  {c.id}")
        return 2
    cell = exp.cell(args.cell)

    run_dir = args.run_dir or new_run_dir(exp.spec.experiment.name, "serve")
    api_key = new_api_key()
    toy = " (toy model: trained on one quiz, gibberish otherwise)" if cell.model.toy else ""
    print(f"starting vLLM for {cell.id}{toy}")

    def on_event(event: object) -> None:
        kind = getattr(event, "kind", "")
        if kind == "server_starting":
            print(f"  command: {event.command}")  # type: ignore[attr-defined]
            print(f"  log:     {event.log_path}", flush=True)  # type: ignore[attr-defined]

    # SIGTERM (e.g. from a supervisor) stops the server like Ctrl-C does. Ctrl-C is (re)armed explicitly: a
    # process started in the background of a non-interactive shell inherits SIGINT as ignored, and Python
    # then leaves it ignored, so "Ctrl-C stops the server" would silently not hold.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    pool = ServerPool(run_dir, run_id=run_dir.name, api_key=api_key, base_dir=exp.base_dir,
                      models_dir=args.models_dir, on_event=on_event,
                      extra_env={"VLLM_LOG_STATS_INTERVAL": str(args.stats_every)})
    try:
        server = pool.acquire(cell)  # a ServerStartError: cli.main prints the reason, the fix and the log line
        print(f"ready: {server.base_url}  (started in {server.startup_s or 0:.1f} s)")
        print(f"api key: {api_key}")
        print(f'  try: curl -s {server.base_url}/v1/completions -H "Authorization: Bearer {api_key}" '
              f'-H "Content-Type: application/json" -d \'{{"model": "{cell.model.name}", "prompt": "Hello", '
              f'"max_tokens": 64}}\'')
        print("  Ctrl-C stops the server.", flush=True)
        log_path = Path(server.log_path) if server.log_path else None
        offset = log_path.stat().st_size if log_path and log_path.exists() else 0
        while True:
            if not server.alive():
                print("the server exited by itself; see the log", file=sys.stderr)
                return 1
            if log_path is not None:
                with log_path.open("rb") as f:
                    f.seek(offset)
                    data = f.read()
                end = data.rfind(b"\n") + 1
                offset += end
                for line in data[:end].decode("utf-8", errors="replace").splitlines():
                    if args.log:
                        print(f"  | {line}")
                    ev = parse_line(line)
                    stamp = time.strftime("%H:%M:%S")
                    if isinstance(ev, EngineStats):
                        print(f"[{stamp}] {_fmt_engine(ev)}", flush=True)
                    elif isinstance(ev, SpecDecodeStats):
                        print(f"[{stamp}]   {_fmt_spec(ev)}", flush=True)
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nstopping …", flush=True)
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not leave orphans
        reports: list = []
        for key in list(pool.live):
            srv = pool.live.pop(key)
            reports.append(srv.stop())
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for r in reports:
            left = "nothing survived" if r.clean else f"SURVIVORS: {', '.join(r.survivors)}"
            print(f"stopped ({r.signal_used}, {r.seconds:.1f} s): {left}", flush=True)
