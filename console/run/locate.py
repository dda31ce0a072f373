"""Find a run folder from what a person types: a path, a run id under runs/, or `latest`."""

from __future__ import annotations

from pathlib import Path

from console.run.paths import runs_root


class RunNotFound(FileNotFoundError):
    """No such run; the message lists what there is."""


def find_run(name: str | Path) -> Path:
    p = Path(name)
    if (p / "state.sqlite").exists():
        return p
    root = runs_root()
    runs = sorted((d for d in root.glob("*") if (d / "state.sqlite").exists()), key=lambda d: d.name)
    if str(name) == "latest" and runs:
        return runs[-1]
    if (root / str(name) / "state.sqlite").exists():
        return root / str(name)
    matches = [d for d in runs if d.name.startswith(str(name))]
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(d.name for d in runs[-5:]) or "none yet"
    raise RunNotFound(f"no run {str(name)!r} (a folder with state.sqlite, a run id under {root}/, or "
                      f"'latest'); recent runs: {known}")


def find_run_or_say(name: str | Path) -> Path | None:
    """`find_run` for commands: on failure the reason (with the runs there are) goes to stderr and None comes
    back, so the command can exit with 2."""
    import sys

    try:
        return find_run(name)
    except RunNotFound as exc:
        print(exc, file=sys.stderr)
        return None
