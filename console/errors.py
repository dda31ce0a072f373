"""The one base of every error a user can hit: what is wrong, and what to do about it.

`specdeck` catches `SpecdeckError` once, in `console.cli.main`, and prints (the Unix `prog: message` form)

    specdeck <command>: <message>
    fix: <fix>

to stderr, then exits with the error's `exit_code`. A command therefore raises and never prints its own errors;
the TUI shows the same two fields. Anything else that escapes a command is a bug and keeps its traceback.

To add an error: subclass `SpecdeckError` (and the builtin a caller already catches, e.g. `ValueError`), give it a
docstring saying when it happens, and raise it with both parts::

    raise WideningError("hidden_size 64 → 32: a widening can only grow the model", "pick a larger --hidden")
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class SpecdeckError(Exception):
    """Something a user can hit and fix: `message` says what is wrong (and with which file), `fix` what to do.
    `exit_code` is what `specdeck` exits with (2 = a usage or input problem, unless a subclass says otherwise)."""

    exit_code: int = 2
    fix: str = ""
    """A class may name the fix that holds wherever it is raised; a raise site's own `fix` replaces it."""

    def __init__(self, message: str, fix: str | None = None, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if fix is not None:
            self.fix = fix
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return f"{self.message} — fix: {self.fix}" if self.fix else self.message

    def report(self, prog: str = "specdeck") -> str:
        """The lines `specdeck` prints for it: `<prog>: <message>` and, when known, `fix: <fix>`."""
        return f"{prog}: {self.message}" + (f"\nfix: {self.fix}" if self.fix else "")

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle without calling `__init__` again, so subclasses with their own signature (`StoreError(path,
        message, fix)`) survive a trip through multiprocessing or a Ray worker."""
        return (_rebuild, (type(self), self.args, self.__dict__))


@contextmanager
def plain_errors_as(cls: type[SpecdeckError], fix: str) -> Iterator[None]:
    """Inside, a plain `ValueError` or `OSError` — pandas or the file system on a bad input, not yet a typed
    error — becomes `cls(str(exc), fix)`. Typed errors and a reader that left the pipe pass through untouched."""
    try:
        yield
    except (SpecdeckError, BrokenPipeError):
        raise
    except (ValueError, OSError) as exc:
        raise cls(str(exc), fix) from exc


def _rebuild(cls: type[SpecdeckError], args: tuple[Any, ...], state: dict[str, Any]) -> SpecdeckError:
    exc = cls.__new__(cls, *args)
    exc.args = args
    exc.__dict__.update(state)
    return exc
