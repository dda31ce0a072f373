"""Console test fixtures: fixed time zone, run folders made by the real core, a waiting helper."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.tui.fakecore import build_run
from tests.tui.screen_text import screen_text


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    """Activity times are printed in local time: make it UTC so screens are the same on every machine."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    time.tzset()


@pytest.fixture(scope="session")
def built_runs(tmp_path_factory) -> Callable[[str, Path], tuple[Path, Path]]:
    """Run folders are built once per stage by the real core, then copied for each test that needs one."""
    cache: dict[str, Path] = {}

    def get(stage: str, dest: Path) -> tuple[Path, Path]:
        if stage not in cache:
            cache[stage] = tmp_path_factory.mktemp(f"built-{stage}")
            build_run(cache[stage], stage)
        shutil.copytree(cache[stage], dest, dirs_exist_ok=True)
        return dest / "experiments" / "tuidemo.toml", dest / "runs" / "20260101-000000-tuidemo"

    return get


@pytest.fixture
def smoke_run(tmp_path, built_runs) -> tuple[Path, Path]:
    """(experiment file, run folder) after speed + smoke: c1 cells await approval (ngram's smoke failed)."""
    return built_runs("smoke", tmp_path)


@pytest.fixture
def full_run(tmp_path, built_runs) -> tuple[Path, Path]:
    """(experiment file, run folder) with AR and draft approved and their full runs done."""
    return built_runs("full", tmp_path)


async def wait_for(pilot, cond: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    """Pause the pilot until `cond()` holds; fail with the screen's text if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"timed out waiting for {what or cond}\n--- screen ---\n{screen_text(pilot.app)}")


def state_of(app, cell_id: str) -> str | None:
    snap = app.snapshot
    cell = snap.cell(cell_id) if snap else None
    return (cell.state if cell.in_run else "not started") if cell else None


os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")
