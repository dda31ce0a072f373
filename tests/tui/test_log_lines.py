"""`LogLines`: the log view on Textual's public Line API — what it draws, what it keeps, and that it does not
reach into Textual's private attributes (the old `BatchLog` overrode `Log._render_line` and read
`_render_line_cache`, `_lines`, `_prune_max_lines`)."""

from __future__ import annotations

import ast
from pathlib import Path

from textual.app import App, ComposeResult
from textual.scroll_view import ScrollView
from textual.widgets import Log

from widgets.log_pane import LogLines, LogPane

ROOT = Path(__file__).resolve().parents[2]


def private_names_used(cls_name: str) -> set[str]:
    """`_x` names the class reads or writes on `self` / `super()` (its own and any it inherits)."""
    tree = ast.parse((ROOT / "widgets" / "log_pane.py").read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls_name)
    names = {f.name for f in cls.body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))}
    for node in ast.walk(cls):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            base = node.value
            if (isinstance(base, ast.Name) and base.id == "self") or (
                    isinstance(base, ast.Call) and isinstance(base.func, ast.Name) and base.func.id == "super"):
                names.add(node.attr)
    return {n for n in names if n.startswith("_") and not n.startswith("__")}


def test_log_lines_uses_no_private_textual_attribute() -> None:
    assert not issubclass(LogLines, Log)
    ours = private_names_used("LogLines")
    assert {"_lines", "_cache", "_dropped"} <= ours  # the walk sees them
    textual_private = {n for n in dir(ScrollView) if n.startswith("_")} | set(vars(ScrollView()))
    assert not ours & textual_private, f"reaches into Textual: {sorted(ours & textual_private)}"
    assert not private_names_used("LogPane") & textual_private


class One(App[None]):
    def __init__(self, max_lines: int = 50) -> None:
        super().__init__()
        self.max_lines = max_lines

    def compose(self) -> ComposeResult:
        yield LogLines(max_lines=self.max_lines, id="log")


def text_of(view: LogLines) -> list[str]:
    return [view.render_line(y).text.rstrip() for y in range(view.size.height)]


async def test_draws_the_last_lines_and_keeps_max_lines() -> None:
    app = One(max_lines=50)
    async with app.run_test(size=(40, 12)) as pilot:
        view = app.query_one(LogLines)
        view.write_lines([f"line {i}" for i in range(30)])
        view.write_lines([f"line {i}\tx\x01" for i in range(30, 80)])  # 80 written, 50 kept
        await pilot.pause()
        assert view.line_count == 50 and view.lines[0] == "line 30\tx\x01" and view.virtual_size.height == 50
        shown = text_of(view)
        assert shown[-2] == "line 79 x\ufffd"  # tabs expanded, control characters visible; last row: scrollbar
        assert view.is_vertical_scroll_end


async def test_reading_older_lines_stays_put_while_the_front_is_dropped() -> None:
    app = One(max_lines=40)
    async with app.run_test(size=(40, 12)) as pilot:
        view = app.query_one(LogLines)
        view.write_lines([f"line {i}" for i in range(40)])
        await pilot.pause()
        view.scroll_to(y=10, animate=False, immediate=True)
        await pilot.pause()
        top = text_of(view)[0]
        assert top == "line 10"
        view.write_lines([f"line {i}" for i in range(40, 45)])  # 5 dropped at the front
        await pilot.pause()
        assert text_of(view)[0] == top and not view.is_vertical_scroll_end
        view.write_lines([f"line {i}" for i in range(45, 100)])  # everything that was on screen is gone
        await pilot.pause()
        assert text_of(view)[0] == "line 60" and view.scroll_y == 0


async def test_cached_lines_stay_right_after_the_front_is_dropped() -> None:
    """Strips are cached by absolute line number: dropping old lines never shows a stale strip."""
    app = One(max_lines=20)
    async with app.run_test(size=(40, 8)) as pilot:
        view = app.query_one(LogLines)
        for start in range(0, 200, 10):
            view.write_lines([f"line {i}" for i in range(start, start + 10)])
            await pilot.pause()
            assert text_of(view)[-2] == f"line {start + 9}"
        view.clear()
        view.write_lines(["after clear"])
        await pilot.pause()
        assert text_of(view)[0] == "after clear" and view.lines == ["after clear"]


async def test_the_pane_follows_and_stops_following() -> None:
    class WithPane(App[None]):
        def compose(self) -> ComposeResult:
            yield LogPane(max_lines=100)

    app = WithPane()
    async with app.run_test(size=(60, 14)) as pilot:
        pane = app.query_one(LogPane)
        pane.write_batch([f"INFO line {i}" for i in range(60)])
        await pilot.pause()
        assert pane.view.is_vertical_scroll_end
        pane.view.focus()
        await pilot.press("f")  # stop following: new lines do not move the view
        y = pane.view.scroll_y
        pane.view.scroll_to(y=y - 5, animate=False, immediate=True)
        pane.write_batch([f"INFO more {i}" for i in range(10)])
        await pilot.pause()
        assert pane.view.scroll_y == y - 5 and not pane.follow
        await pilot.press("f")  # follow again: straight to the end
        await pilot.pause()
        assert pane.view.is_vertical_scroll_end and pane.total_lines == 70
