"""The text a Pilot-driven app shows right now (what an operator would read), for assertions."""

from __future__ import annotations

from textual.app import App


def screen_text(app: App) -> str:
    strips = app.screen._compositor.render_strips()  # noqa: SLF001 - the documented way is an SVG
    return "\n".join(strip.text.rstrip() for strip in strips)
