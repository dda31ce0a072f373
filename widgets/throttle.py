"""Redraw at most `hz` times a second however often data arrives (plots cost a full re-render each)."""

from __future__ import annotations

import time
from collections.abc import Callable


class Throttle:
    """Call `draw` now if it has not run in the last 1/hz s, else once at the end of that window.

    `poke()` is called on every data update; `tick()` by a timer (the owner's `set_interval(1/hz)`).
    """

    def __init__(self, draw: Callable[[], None], hz: float = 2.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.draw = draw
        self.period = 1.0 / hz
        self.clock = clock
        self.dirty = False
        self.last = -1e9
        self.draws = 0

    def poke(self) -> None:
        if self.clock() - self.last >= self.period:
            self._draw()
        else:
            self.dirty = True

    def tick(self) -> None:
        if self.dirty and self.clock() - self.last >= self.period:
            self._draw()

    def flush(self) -> None:
        """Draw now if anything is pending (e.g. when the widget becomes visible)."""
        if self.dirty:
            self._draw()

    def _draw(self) -> None:
        self.dirty = False
        self.last = self.clock()
        self.draws += 1
        self.draw()
