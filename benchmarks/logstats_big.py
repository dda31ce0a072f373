"""`specdeck logstats` on a big server log: wall time and peak memory, table and `--json`.

Writes a deterministic vLLM-shaped log (two engines, each `Engine 00N:` line followed by its
`SpecDecoding metrics:` line, request lines around them, with --hostile a few hostile lines: `(` plus 32 KB of
spaces, `inf` values) of about `--mb` MB, then runs `python -m console.cli logstats LOG` and `… --json` as child
processes and reads each child's own peak RSS from `os.wait4`. Output goes to /dev/null.

    .venv/bin/python benchmarks/logstats_big.py                  # 200 MB
    .venv/bin/python benchmarks/logstats_big.py --mb 50 --keep   # keep the log in benchmarks/results/

Issue #16 item 15 measured the old code on such a log: 27.5 s (58.6 s with --json), 286–450 MB of memory.
Writes benchmarks/results/logstats_big.json. The box is shared: figures are indicative; compare runs side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def tick_lines(i: int) -> list[str]:
    """One ~10 s logging tick of a two-engine server and the request traffic around it."""
    s = i * 10
    ts = f"11-23 {(s // 3600) % 24:02d}:{(s // 60) % 60:02d}:{s % 60:02d}"
    out = []
    for engine in (0, 1):
        gen = 900.0 + (i * 37 + engine * 11) % 200
        out.append(f"(APIServer pid=5285) INFO {ts} [loggers.py:335] Engine {engine:03d}: Avg prompt throughput: "
                   f"3.0 tokens/s, Avg generation throughput: {gen:.1f} tokens/s, Running: 16 reqs, Waiting: 0 reqs, "
                   f"GPU KV cache usage: 41.7%, Prefix cache hit rate: 0.0%")
        out.append(f"(APIServer pid=5285) INFO {ts} [metrics.py:120] SpecDecoding metrics: Mean acceptance length: "
                   "3.95, Accepted throughput: 693.12 tokens/s, Drafted throughput: 1880.00 tokens/s, Accepted: "
                   "6931 tokens, Drafted: 18800 tokens, Per-position acceptance rate: 0.801, 0.652, 0.497, 0.378, "
                   "0.259, 0.158, 0.090, 0.110, Avg Draft acceptance rate: 36.9%")
    for r in range(40):
        out.append(f"(APIServer pid=5285) INFO:     127.0.0.1:{40000 + r} - \"POST /v1/completions HTTP/1.1\" 200 OK")
        out.append(f"(APIServer pid=5285) INFO {ts} [logger.py:43] Received request cmpl-{i:08d}{r:03d}: "
                   "prompt: 'Write a long story about a lighthouse keeper', params: SamplingParams(n=1, "
                   "temperature=0.0, max_tokens=512, ignore_eos=True)")
    return out


def write_log(path: Path, mb: int, hostile: bool = False) -> int:
    """Write about `mb` MB; returns the number of lines."""
    target, n, i = mb << 20, 0, 0
    with path.open("w", encoding="utf-8") as f:
        f.write("(APIServer pid=5285) INFO 11-23 00:00:00 [api_server.py:1] Starting vLLM server on http://127.0.0.1:8000\n")
        while f.tell() < target:
            lines = tick_lines(i)
            if hostile and i % 500 == 7:  # hostile lines: quadratic for the old regexes, inf for the old --json
                lines.append("(" + " " * 32768)
                lines.append(lines[0].replace("Avg generation throughput: ", "Avg generation throughput: inf tokens/s x"))
            f.write("\n".join(lines) + "\n")
            n += len(lines)
            i += 1
    return n


def measure(argv: list[str], root: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    start = time.perf_counter()
    with open(os.devnull, "w") as devnull:
        proc = subprocess.Popen(argv, stdout=devnull, stderr=subprocess.PIPE, env=env, cwd=root)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode() if proc.stderr else ""
    code = os.waitstatus_to_exitcode(status)
    out = {"seconds": round(wall, 2), "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
           "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "exit_code": code}
    if code not in (0, 3):
        out["failed"] = err.strip().splitlines()[-1] if err.strip() else f"exit code {code}"
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--hostile", action="store_true",
                    help="every 500th tick adds `(` + 32 KB of spaces and an `inf` value (the old code took minutes "
                    "per MB on those, and --json crashed)")
    ap.add_argument("--keep", action="store_true", help="write the log under benchmarks/results/ and keep it")
    ap.add_argument("--root", type=Path, action="append",
                    help="a specdeck checkout whose code to run (repeat to compare before/after side by side; "
                    "default: this one)")
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="logstats-big-")) if not args.keep else RESULTS
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / f"big-{args.mb}mb.log"
    t = time.perf_counter()
    lines = write_log(log, args.mb, args.hostile)
    print(f"wrote {log} ({log.stat().st_size / 2**20:.0f} MB, {lines:,} lines) in {time.perf_counter() - t:.1f} s")
    base = [sys.executable, "-m", "console.cli", "logstats", str(log)]
    out: dict = {"mb": args.mb, "hostile": args.hostile, "lines": lines, "python": sys.version.split()[0], "load_avg_before": os.getloadavg(),
                 "runs": {}}
    for root in args.root or [ROOT]:
        for name, argv in (("table", base), ("json", [*base, "--json"])):
            r = out["runs"][f"{root} {name}"] = measure(argv, root.resolve())
            print(f"{root}: logstats {'--json' if name == 'json' else '      '}: {r['seconds']:6.1f} s wall, "
                  f"{r['cpu_seconds']:6.1f} s CPU, peak RSS {r['peak_rss_mb']:.0f} MB"
                  + (f" FAILED: {r['failed']}" if "failed" in r else ""))
    out["load_avg_after"] = os.getloadavg()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "logstats_big.json").write_text(json.dumps(out, indent=2) + "\n")
    if not args.keep:
        log.unlink()
        folder.rmdir()


if __name__ == "__main__":
    main()
