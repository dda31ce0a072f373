"""The GPU-busy figure folded from events (#13.5): start-up, server-up, requests in flight, starts per config."""

from __future__ import annotations

import pytest

from console.events import RunFinished, ServerBusy, ServerReady, ServerStarting, ServerStopped
from console.run.gpu_busy import gpu_busy


def test_figure_from_events() -> None:
    events = [
        ServerStarting(serving_key="a", ts=100.0),
        ServerReady(serving_key="a", ts=160.0),           # 60 s start-up
        ServerBusy(serving_key="a", phase="speed", started=160.0, seconds=30.0, ts=190.0),
        ServerBusy(serving_key="a", phase="smoke:x", started=195.0, seconds=15.0, ts=210.0),
        ServerStopped(serving_key="a", ts=220.0),         # up 60 s, busy 45 s
        ServerStarting(serving_key="a", ts=230.0),        # an approval after the window: a second start
        ServerReady(serving_key="a", ts=260.0),
        ServerBusy(serving_key="a", phase="full:x", started=260.0, seconds=40.0, ts=300.0),
        ServerStarting(serving_key="b", ts=300.0),
        ServerStopped(serving_key="a", ts=300.0),
        ServerReady(serving_key="b", ts=330.0),
        ServerBusy(serving_key="b", phase="speed", started=330.0, seconds=100.0, ts=430.0),  # past the end: clipped
        RunFinished(ts=400.0),
    ]
    g = gpu_busy(events)
    assert g.wall_s == pytest.approx(330.0)  # first event → last
    assert g.startup_s == pytest.approx(60 + 30 + 30)
    assert g.up_s == pytest.approx(60 + 40 + 70)
    assert g.busy_s == pytest.approx(45 + 40 + 70)
    assert g.starts == {"a": 2, "b": 1} and g.starts_per_config == pytest.approx(1.5)
    assert g.busy_share == pytest.approx(155 / 170)
    assert "1.5 start(s)/config" in g.short()
    assert "requests in flight" in g.lines()[1]


def test_a_server_still_up_counts_until_now() -> None:
    g = gpu_busy([ServerStarting(serving_key="a", ts=0.0), ServerReady(serving_key="a", ts=10.0)], now=70.0)
    assert g.up_s == pytest.approx(60.0) and g.busy_share == 0.0
    assert gpu_busy([]).short() == "GPU: no server started yet"


def test_report_notes_the_figure(write_toml, tmp_path, capsys) -> None:
    from console.cli import main
    from console.experiment.loader import load_experiment
    from console.run.eventlog import EventLog
    from tests.unit.test_runner import EXP, FakeAdapter, run

    run(load_experiment(write_toml(EXP)), tmp_path, FakeAdapter("right"), yes_after_smoke=True)
    log = EventLog(tmp_path / "run" / "events.jsonl")
    for e in (ServerStarting(serving_key="a", ts=1.0), ServerReady(serving_key="a", ts=2.0),
              ServerStopped(serving_key="a", ts=4.0)):
        log.append(e)
    assert main(["report", str(tmp_path / "run"), "--width", "200"]) == 0
    assert "run run, GPU busy: wall time" in capsys.readouterr().out


def test_a_held_server_keeps_counting_between_events() -> None:
    g = gpu_busy([ServerStarting(serving_key="a", ts=0.0), ServerReady(serving_key="a", ts=10.0),
                  ServerBusy(serving_key="a", started=10.0, seconds=10.0, ts=20.0)])
    assert g.up_s == pytest.approx(10.0) and g.busy_share == pytest.approx(1.0)
    later = g.at(60.0)  # held for approval 40 s with no event: the share must fall, not stay at 100 %
    assert later.up_s == pytest.approx(50.0) and later.busy_share == pytest.approx(0.2)
    assert gpu_busy([ServerStopped(serving_key="a", ts=5.0)]).at(100.0).up_s == 0.0
