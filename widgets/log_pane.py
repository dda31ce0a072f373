"""A live server log: batches of lines in, a `LogLines` view out, with a level and a regex filter.

Lines arrive in batches (the app's watcher collects ~50 ms of them) and go to `LogLines.write_lines` in one
call; the pane keeps only the last `max_lines` (memory stays flat however long the server runs) in a ring
buffer so that changing a filter redraws from what is kept.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Sequence

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import Binding
from textual.cache import LRUCache
from textual.containers import Vertical
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.selection import Selection
from textual.strip import Strip
from textual.widgets import Input, Static
from typing_extensions import Self

from widgets.throttle import Throttle

LEVELS = ("ALL", "INFO", "WARNING", "ERROR")
_RANK = {"DEBUG": 0, "INFO": 1, "WARN": 2, "WARNING": 2, "ERROR": 3, "CRITICAL": 3}
_LEVEL = re.compile(r"\b(DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL)\b")


def level_of(line: str, previous: int) -> int:
    """The line's level rank; a line without one (a traceback, a wrapped message) keeps the previous."""
    m = _LEVEL.search(line, 0, 48)
    return _RANK[m.group(1)] if m else previous


class LogLines(ScrollView, can_focus=True):
    """The lines of a log, drawn through Textual's public Line API (`ScrollView.render_line`), like toolong's
    `LogLines`: only the rows on screen are rendered, each line once (a line never changes once written).

    Lines arrive in batches (`write_lines`); the widget keeps the last `max_lines` (memory stays flat however
    long the server runs). Cached strips are keyed by a line's absolute number, so dropping the oldest lines
    never invalidates the cache. The width is the longest line's length in characters (measured inline: no
    worker thread per batch). Nothing here touches Textual's private attributes (textual 8.2.8 checked:
    `ScrollView`, `virtual_size`, `scroll_offset`, `render_line`, `Strip`, `anchor`, `LRUCache`,
    `text_selection` / `get_selection` / `selection_updated` are its documented API)."""

    ALLOW_SELECT = True
    DEFAULT_CSS = """
    LogLines {
        background: $surface;
        color: $text;
        overflow: scroll;
        &:focus {
            background-tint: $foreground 5%;
        }
    }
    """

    def __init__(self, max_lines: int | None = None, auto_scroll: bool = True, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.max_lines = max_lines
        self.auto_scroll = auto_scroll
        """Follow new lines when the view is at the end."""
        self._lines: deque[str] = deque(maxlen=max_lines)
        self._dropped = 0
        """Lines dropped from the front so far: line `i` on screen is line `_dropped + i` of the log."""
        self._width = 0
        self._cache: LRUCache[int, Strip] = LRUCache(1024)
        self._style: Style | None = None

    @property
    def lines(self) -> Sequence[str]:
        """The lines kept, oldest first (a copy)."""
        return list(self._lines)

    @property
    def line_count(self) -> int:
        return len(self._lines)

    # --- data in ------------------------------------------------------------------------------------------
    def write_lines(self, lines: Iterable[str], scroll_end: bool | None = None) -> Self:
        """Append newline-free lines in one go: one virtual-size change and one refresh per batch."""
        batch = lines if isinstance(lines, list) else list(lines)
        if not batch:
            return self
        at_end = self.is_vertical_scroll_end
        auto = self.auto_scroll if scroll_end is None else scroll_end
        before = len(self._lines)
        self._lines.extend(batch)
        dropped = before + len(batch) - len(self._lines)
        self._dropped += dropped
        self._width = max(self._width, max(map(len, batch)))
        self.virtual_size = Size(self._width, len(self._lines))
        if auto and at_end and not self.is_vertical_scrollbar_grabbed:
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        elif dropped and self.scroll_y:  # reading older lines: keep them in place while the front is dropped
            self.scroll_to(y=max(0, self.scroll_y - dropped), animate=False, immediate=True)
        self.refresh()
        return self

    def clear(self) -> Self:
        self._dropped += len(self._lines)
        self._lines.clear()
        self._width = 0
        self.virtual_size = Size(0, 0)
        self.refresh()
        return self

    # --- drawing --------------------------------------------------------------------------------------------
    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._style = None
        self._cache.clear()

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.size.width
        if self._style is None:
            self._style = self.rich_style
        style = self._style
        if index >= len(self._lines):
            return Strip.blank(width, style)
        strip = self._strip(index, style)
        return strip.crop_extend(scroll_x, scroll_x + width, style).apply_offsets(scroll_x, index)

    def _strip(self, index: int, style: Style) -> Strip:
        selection = self.text_selection
        key = self._dropped + index
        if selection is None:
            cached = self._cache.get(key)
            if cached is not None:
                return cached
        text = _printable(self._lines[index])
        span = selection.get_span(index) if selection is not None else None
        if span is None:
            strip = Strip([Segment(text, style)], cell_len(text))
            if selection is None:
                self._cache[key] = strip
            return strip
        start, end = span
        rich = Text(text, no_wrap=True, style=style)
        rich.stylize(self.screen.get_component_rich_style("screen--selection"), start,
                     len(text) if end == -1 else end)
        return Strip(rich.render(self.app.console), cell_len(text))

    # --- text selection (mouse) -------------------------------------------------------------------------------
    def get_selection(self, selection: Selection) -> tuple[str, str] | None:
        return selection.extract("\n".join(self._lines)), "\n"

    def selection_updated(self, selection: Selection | None) -> None:
        self._cache.clear()
        self.refresh()


_CONTROL = re.compile("[\u0000-\u0014]")


def _printable(line: str) -> str:
    """Tabs expanded, control characters shown as �."""
    return _CONTROL.sub("\ufffd", line.expandtabs())


class LogPane(Vertical):
    """A filtered, followable view of one server.log."""

    DEFAULT_CSS = """
    LogPane { height: 1fr; }
    LogPane > #log-status { height: 1; color: $text-muted; }
    LogPane > Input { display: none; height: 3; }
    LogPane.-filtering > Input { display: block; }
    LogPane > LogLines { height: 1fr; }
    """
    BINDINGS = [
        Binding("f", "toggle_follow", "Follow"),
        Binding("l", "cycle_level", "Level"),
        Binding("slash", "edit_filter", "Filter"),
        Binding("escape", "leave_filter", "Back", show=False),
    ]

    class FilterError(Message):
        """The regex typed does not compile; `message` says why."""

        def __init__(self, message: str) -> None:
            super().__init__()
            self.message = message

    def __init__(self, max_lines: int = 5000, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.max_lines = max_lines
        self._buffer: deque[str] = deque(maxlen=max_lines)
        self.level = 0
        self.pattern: re.Pattern[str] | None = None
        self.follow = True
        self.total_lines = 0
        self.skipped = 0
        self.source = ""
        self._status = ""
        self._status_throttle = Throttle(self._update_status, hz=4.0)

    def compose(self) -> ComposeResult:
        yield Static(id="log-status")
        yield Input(placeholder="regex filter (enter to apply, empty to clear, esc to leave)", id="log-filter")
        yield LogLines(max_lines=self.max_lines, auto_scroll=True, id="log")

    def on_mount(self) -> None:
        self.set_interval(self._status_throttle.period, self._status_throttle.tick)
        self.view.anchor()  # following: stays at the last line when lines arrive or a scrollbar appears
        self._update_status()

    @property
    def view(self) -> LogLines:
        return self.query_one("#log", LogLines)

    # --- data in ------------------------------------------------------------------------------------------
    def set_source(self, name: str) -> None:
        """Start over for another file (`name` is shown in the status line)."""
        self.source = name
        self._buffer.clear()
        self.total_lines = 0
        self.skipped = 0
        self.view.clear()
        self._update_status()

    def write_batch(self, lines: Sequence[str], skipped: int = 0) -> None:
        """Append a batch of raw lines (one write_lines call for the whole batch; no per-line work unless a
        filter is on). `skipped`: lines the file had before these that were passed over because the view
        was behind and keeps only the last `max_lines` anyway (a notice line says so)."""
        if not lines and not skipped:
            return
        if skipped:
            self.skipped += skipped
            lines = [f"… {skipped:,} lines passed over (this view keeps the last {self.max_lines:,})", *lines]
        self._buffer.extend(lines)
        self.total_lines += len(lines) - (1 if skipped else 0) + skipped
        kept = self._filtered(lines) if self.level or self.pattern is not None else list(lines)
        if kept:
            self.view.write_lines(kept, scroll_end=self.follow)
        self._status_throttle.poke()  # the line count ticks at ≤ 4 Hz, not once per batch

    def _filtered(self, lines: Iterable[str]) -> list[str]:
        out, level, min_level, pattern = [], 1, self.level, self.pattern
        for line in lines:
            level = level_of(line, level)
            if level >= min_level and (pattern is None or pattern.search(line)):
                out.append(line)
        return out

    def _redraw(self) -> None:
        log = self.view
        log.clear()
        log.write_lines(self._filtered(self._buffer) if self.level or self.pattern is not None
                        else list(self._buffer), scroll_end=self.follow)
        self._update_status()

    def _update_status(self) -> None:
        parts = [self.source or "no log yet", f"{self.total_lines:,} lines",
                 "following" if self.follow else "[b]PAUSED[/b] (f follows)", f"level {LEVELS[self.level]}"]
        if self.pattern is not None:
            parts.append(f"/{self.pattern.pattern}/")
        text = " · ".join(parts)
        if text != self._status:
            self._status = text
            self.query_one("#log-status", Static).update(text, layout=False)  # one fixed line: no relayout

    # --- actions -------------------------------------------------------------------------------------------
    def action_toggle_follow(self) -> None:
        self.follow = not self.follow
        self.view.auto_scroll = self.follow
        self.view.anchor(self.follow)  # anchoring scrolls to the end
        self._update_status()

    def action_cycle_level(self) -> None:
        self.level = (self.level + 1) % len(LEVELS)
        self._redraw()

    def action_edit_filter(self) -> None:
        self.add_class("-filtering")
        box = self.query_one(Input)
        box.value = self.pattern.pattern if self.pattern else ""
        box.focus()

    def set_pattern(self, text: str) -> bool:
        """Apply a regex filter (empty clears it); False, with a FilterError posted, if it does not compile."""
        if not text:
            self.pattern = None
        else:
            try:
                self.pattern = re.compile(text, re.IGNORECASE)
            except re.error as exc:
                self.post_message(self.FilterError(f"bad regex {text!r}: {exc}; fix it or press esc"))
                return False
        self._redraw()
        return True

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self.set_pattern(event.value.strip()):
            self._leave_filter()

    def _leave_filter(self) -> None:
        self.remove_class("-filtering")
        self.view.focus()

    def action_leave_filter(self) -> None:
        if not self.has_class("-filtering"):
            raise SkipAction()  # let the screen have escape (back)
        self._leave_filter()
