"""#14 item 5 and #16 item 15: one fold of server-log statistics; linear-time, constant-memory log reading."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from console.cli import main
from console.serve.logparse import parse_lines

ROOT = Path(__file__).resolve().parents[2]
LOGS = ROOT / "tests" / "fixtures" / "logs"
TWO = LOGS / "two_engines_dp.log"
TICKS = [700.0, 950.0, 100.0, 450.0]  # server tok/s per logging tick: both engines summed
DRAFTS, ACCEPTED = 2300, 3035


def test_logstats_sums_engines_per_tick(capsys) -> None:
    assert main(["logstats", str(TWO), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    t = doc["totals"]
    assert (t["intervals"], t["ticks"], t["engines"], t["busy_intervals"]) == (8, 4, 2, 4)
    assert t["mean_generation_throughput"] == pytest.approx(sum(TICKS) / 4)
    assert t["peak_generation_throughput"] == pytest.approx(950.0)  # 500 at :20 + 450 at :21: one tick
    assert t["mean_acceptance_length"] == pytest.approx(1 + ACCEPTED / DRAFTS)


def test_bench_cross_check_uses_the_same_ticks() -> None:
    from console.bench.acceptance import busy_generation_throughput

    events = parse_lines(TWO.read_text().splitlines())
    # Ticks with requests running at the tick: 700, 950, 450 (the third tick only finished requests).
    assert busy_generation_throughput(events) == pytest.approx((700 + 950 + 450) / 3)


def test_console_live_tail_plots_ticks_and_mixes_engines() -> None:
    from console.app.watcher import LogTail

    tail = LogTail(TWO)
    tail.read()
    assert tail.throughput == [(0.0, 700.0), (10.0, 950.0), (20.0, 100.0), (30.0, 450.0)]
    # The last tick's acceptance over both engines, weighted by drafts: (320 + 175) / (200 + 250).
    assert tail.live is not None and tail.live.mean_acceptance_length == pytest.approx(1 + 495 / 450)


def test_live_tail_fed_line_by_line_closes_each_tick_once(tmp_path) -> None:
    from console.app.watcher import LogTail

    log = tmp_path / "server.log"
    log.write_text("")
    tail = LogTail(log)
    for line in TWO.read_text().splitlines(keepends=True):
        with log.open("a") as f:
            f.write(line)
        tail.read()
    assert [v for _, v in tail.throughput] == TICKS


PATHOLOGICAL = {  # built in the child: a megabyte does not fit on a command line
    "paren-spaces": '"(" + " " * (1 << 20)',
    "paren-spaces-x": '"(" + " " * (1 << 20) + "x"',
    "paren-spaces-pid": '"(" + " " * (1 << 20) + "pid="',
    "paren-tabs": '"(\\t" * (1 << 19)',
    "stats-words": '"Engine 000: Avg prompt throughput: " + "a " * (1 << 19)',
    "value-error": '"ERROR Value error, " + " " * (1 << 20) + "x"',
}
PROBE = """
import time
from console.serve.failures import classify_failure
from console.serve.logparse import parse_line
line = {line}
assert len(line) >= 1 << 20
t = time.process_time()  # CPU seconds: the box is shared, wall time is not ours
parse_line(line)
classify_failure([line, line])
print(time.process_time() - t)
"""


@pytest.mark.parametrize("name", list(PATHOLOGICAL))
def test_a_pathological_megabyte_line_parses_in_well_under_a_second(name) -> None:
    """The old `\\([^)]*?\\s+pid=` prefix took 6.5 s on 32 KB and about an hour on 1 MB: run in a child with
    a timeout so that a regression fails instead of hanging the suite."""
    done = subprocess.run([sys.executable, "-c", PROBE.format(line=PATHOLOGICAL[name])], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert float(done.stdout) < 0.5  # measured ≤ 0.1 s CPU; the old code: minutes


def test_logstats_json_writes_null_for_inf(tmp_path, capsys) -> None:
    log = tmp_path / "hostile.log"
    text = TWO.read_text().replace("Avg generation throughput: 400.0", "Avg generation throughput: inf")
    text = text.replace("Accepted throughput: 60.00", "Accepted throughput: inf")
    log.write_text(text)
    assert main(["logstats", str(log), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["intervals"][0]["generation_throughput"] is None
    assert doc["totals"]["ticks"] == 4
    assert main(["logstats", str(log)]) == 0
    out = capsys.readouterr().out
    assert "inf" not in out and "mean 450.0, peak 950.0" in out  # 300, 950, 100, 450: an inf is unknown


def _peak_bytes(path: Path, monkeypatch, *args: str) -> int:
    with open(os.devnull, "w") as sink:
        monkeypatch.setattr(sys, "stdout", sink)
        tracemalloc.start()
        try:
            assert main(["logstats", str(path), *args]) == 0
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()


@pytest.mark.parametrize("args", [(), ("--json",)], ids=["table", "json"])
def test_logstats_streams_in_constant_memory(tmp_path, monkeypatch, args) -> None:
    body = [line for line in TWO.read_text().splitlines() if not line.startswith("#")][2:]
    small, big = tmp_path / "small.log", tmp_path / "big.log"
    small.write_text("\n".join(body * 50) + "\n")
    big.write_text("\n".join(body * 400) + "\n")  # 8x the lines
    a, b = _peak_bytes(small, monkeypatch, *args), _peak_bytes(big, monkeypatch, *args)
    assert b < a * 1.5 + (256 << 10), (a, b)
