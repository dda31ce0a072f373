"""The log view's own cost, free of the event loop's scheduling: a `LogPane` in a headless app takes 300 batches
of 1,000 vLLM-shaped lines; after each batch one frame of the visible rows is rendered (`render_line` per row).
Prints the write time per batch, the frame time, and lines per second of widget time.

benchmarks/ui_log_ingest.py measures the whole console (watcher thread, messages, stalls) but on a shared box
its stall figures are the machine's; this one isolates the widget, so two versions of widgets/log_pane.py can
be compared side by side (run it in two checkouts, alternating).

    .venv/bin/python benchmarks/ui_log_render.py [--batches 300] [--lines 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

LINE = ("(APIServer pid=5285) INFO 11-23 02:37:43 [logger.py:43] Received request cmpl-{:08x}: prompt: 'lorem "
        "ipsum dolor sit amet', params: SamplingParams(n=1, temperature=0.0, max_tokens=512)")


async def measure(batches: int, lines: int, max_lines: int) -> tuple[float, float]:
    from textual.app import App, ComposeResult

    from widgets.log_pane import LogPane

    class One(App[None]):
        def compose(self) -> ComposeResult:
            yield LogPane(max_lines=max_lines)

    app = One()
    async with app.run_test(size=(120, 40)) as pilot:
        pane = app.query_one(LogPane)
        view = pane.view
        await pilot.pause()
        write = frame = 0.0
        n = 0
        for _ in range(batches):
            batch = [LINE.format(n + i) for i in range(lines)]
            n += lines
            t0 = time.perf_counter()
            pane.write_batch(batch)
            t1 = time.perf_counter()
            for y in range(view.size.height):
                view.render_line(y)
            write += t1 - t0
            frame += time.perf_counter() - t1
    return write, frame


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batches", type=int, default=300)
    p.add_argument("--lines", type=int, default=1000, help="lines per batch (default 1000)")
    p.add_argument("--max-lines", type=int, default=5000)
    a = p.parse_args()
    write, frame = asyncio.run(measure(a.batches, a.lines, a.max_lines))
    total = a.batches * a.lines
    print(f"{a.batches} batches × {a.lines} lines: write {write * 1000 / a.batches:.3f} ms/batch, "
          f"frame {frame * 1000 / a.batches:.3f} ms, {total / (write + frame):,.0f} lines/s of widget time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
