"""Events: one registry, a round trip for every kind, typed consumers, and an unknown kind reported."""

from __future__ import annotations

import ast
import dataclasses
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from console import events
from console.app.matrix import run_line
from console.app.runview import RunModel
from console.events import EVENT_TYPES, Event, UnknownEvent
from console.run.cli_output import EventPrinter, describe
from console.run.eventlog import EventLog, read_events

ROOT = Path(__file__).resolve().parents[2]


def test_one_registry_knows_every_event_class_in_console() -> None:
    """Import every console module; every Event subclass found must already be in the registry that
    `console.events` alone builds (no registration by a side-effect import), with a kind of its own."""
    code = """
import importlib, json, pkgutil
import console, console.events as ev
before = {k: c.__qualname__ for k, c in ev.EVENT_TYPES.items()}
names = [m.name for m in pkgutil.walk_packages(console.__path__, "console.")]
for name in names:
    importlib.import_module(name)   # a module that cannot import fails this test: nothing is skipped
def walk(c):
    for s in c.__subclasses__():
        yield s
        yield from walk(s)
found = sorted({(c.kind, f"{c.__module__}.{c.__qualname__}") for c in walk(ev.Event)})
print(json.dumps({"before": before, "after": {k: c.__qualname__ for k, c in ev.EVENT_TYPES.items()},
                  "found": found, "modules": len(names)}))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["modules"] > 100
    assert got["after"] == got["before"], "an event type was registered by importing another module"
    kinds = [k for k, _ in got["found"] if k != UnknownEvent.kind]
    assert len(kinds) == len(set(kinds)), f"two event classes share a kind: {got['found']}"
    missing = [q for k, q in got["found"] if k not in got["before"] and k != UnknownEvent.kind]
    assert not missing, f"event classes outside the registry: {missing}"
    assert len(got["before"]) >= 21


def _sample(cls: type[Event]) -> Event:
    """An instance with every field set to something non-default of its type."""
    values = {}
    for f in dataclasses.fields(cls):
        if f.name in ("run_id", "cell_id"):
            values[f.name] = "r1" if f.name == "run_id" else "m.p.t.short.c1"
        elif f.name == "ts":
            values[f.name] = 1700000000.0
        else:
            t = str(f.type)
            values[f.name] = (
                ("a", "b") if t.startswith("tuple[str") else (0.5, 0.25) if t.startswith("tuple[float")
                else (3, 7) if t.startswith("tuple[int") else True if t.startswith("bool")
                else 3 if t.startswith("int") else 2.5 if t.startswith("float") else
                {"score": 0.5, "n": 5, "blanks": 0, "extraction_failures": 0, "truncations": 0,
                 "items": 12, "wall_s": 60.0, "gpu_hours": 0.1} if t.startswith("dict") else "x")
    if cls.kind in ("speed_result", "acceptance_result"):
        values["scope"] = "point"
    return cls(**values)


@pytest.mark.parametrize("kind", sorted(EVENT_TYPES))
def test_every_kind_round_trips_through_events_jsonl(kind, tmp_path) -> None:
    sent = _sample(EVENT_TYPES[kind])
    log = EventLog(tmp_path / "events.jsonl")
    log.append(sent)
    back, _ = read_events(log.path)
    assert back == [sent]


def test_consumers_match_on_classes_not_on_dicts(monkeypatch) -> None:
    """The CLI printer and the console's model read typed fields: with `to_dict` broken they still work."""
    def no(self):  # noqa: ANN001
        raise AssertionError("a consumer went through to_dict()")

    samples = [_sample(cls) for cls in EVENT_TYPES.values()]
    monkeypatch.setattr(Event, "to_dict", no)
    lines = [describe(e) for e in samples]
    assert sum(1 for t in lines if t) >= 12
    model = RunModel([], "exp")
    model.apply_events(samples)
    c = model.snapshot().cell("m.p.t.short.c1")
    assert c is not None and c.tok_s == 2.5 and c.final_acceptance is not None and c.throughput


def test_consumers_never_compare_kind_strings() -> None:
    for rel in ("console/run/cli_output.py", "console/app/runview.py", "console/app/watcher.py",
                "console/app/app.py", "console/app/matrix.py", "console/app/cellview.py"):
        tree = ast.parse((ROOT / rel).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "kind":
                pytest.fail(f"{rel}:{node.lineno} reads an event's kind string")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "to_dict":
                pytest.fail(f"{rel}:{node.lineno} reads an event through to_dict()")


def test_an_unknown_kind_is_kept_and_reported_once(tmp_path) -> None:
    path = tmp_path / "events.jsonl"
    newer = {"kind": "gpu_busy", "run_id": "r1", "cell_id": "m.p.t.short.c1", "ts": 5.0, "busy_pct": 93.0}
    known = {"kind": "run_finished", "run_id": "r1", "cell_id": None, "ts": 6.0, "states": {}}
    path.write_text("\n".join(json.dumps(x) for x in (newer, newer, known)) + "\n")
    back, _ = read_events(path)
    assert [type(e) for e in back] == [UnknownEvent, UnknownEvent, events.RunFinished]
    first = back[0]
    assert isinstance(first, UnknownEvent) and first.unknown_kind == "gpu_busy" and first.data["busy_pct"] == 93.0
    assert first.cell_id == "m.p.t.short.c1" and first.to_dict() == {k: v for k, v in newer.items()}

    model = RunModel([], "exp")
    model.apply_events(back)
    snap = model.snapshot()
    assert snap.unknown_kinds == ("gpu_busy",) and snap.finished
    assert "events this console does not know (gpu_busy)" in run_line(snap, "r1", toy=False)

    out = io.StringIO()
    printer = EventPrinter(tmp_path, out=out)
    for e in back:
        printer(e)
    text = out.getvalue()
    assert text.count("'gpu_busy' are not known to this specdeck") == 1 and "run finished" in text


def test_a_kind_cannot_be_registered_twice() -> None:
    @dataclasses.dataclass(frozen=True)
    class Clash(Event):
        kind = "run_started"

    with pytest.raises(ValueError, match="taken by RunStarted"):
        events.register(Clash)
