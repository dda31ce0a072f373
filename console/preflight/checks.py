"""Preflight's vocabulary: a check (✓ / ✗ / ?) with its fix, grouped into one table per subject."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

OK, FAIL, UNKNOWN = "ok", "fail", "unknown"
MARK = {OK: "✓", FAIL: "✗", UNKNOWN: "?"}


@dataclass(frozen=True)
class Check:
    """One thing preflight looked at: passed (ok), will stop the run (fail), or could not be confirmed here
    (unknown). `fix` says what to do; `cells` are the cells it concerns (the console marks them)."""

    name: str
    status: str
    what: str
    fix: str = ""
    cells: tuple[str, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def mark(self) -> str:
        return MARK[self.status]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["cells"] = list(self.cells)
        return d


@dataclass
class Section:
    """A table: the machine, one server config, one benchmark, the disk, the campaign's cost."""

    kind: str
    """machine | server | benchmark | disk | cost"""
    title: str
    cells: tuple[str, ...] = ()
    checks: list[Check] = field(default_factory=list)

    def add(self, name: str, status: str, what: str, fix: str = "", **data: Any) -> Check:
        check = Check(name, status, what, fix, self.cells, data)
        self.checks.append(check)
        return check

    @property
    def failed(self) -> bool:
        return any(c.status == FAIL for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "title": self.title, "cells": list(self.cells),
                "checks": [c.to_dict() for c in self.checks]}


@dataclass
class Report:
    """Everything preflight found, in the order it is shown."""

    experiment: str
    file: str
    sections: list[Section] = field(default_factory=list)
    cost: dict[str, Any] = field(default_factory=dict)

    def checks(self) -> list[Check]:
        return [c for s in self.sections for c in s.checks]

    @property
    def ok(self) -> bool:
        return not any(c.status == FAIL for c in self.checks())

    def counts(self) -> dict[str, int]:
        out = {OK: 0, FAIL: 0, UNKNOWN: 0}
        for c in self.checks():
            out[c.status] += 1
        return out

    def problems_by_cell(self) -> dict[str, list[Check]]:
        """Cell id → the failed and unconfirmed checks that concern it (for the console's matrix)."""
        out: dict[str, list[Check]] = {}
        for c in self.checks():
            if c.status != OK:
                for cell in c.cells:
                    out.setdefault(cell, []).append(c)
        return out

    def problem_lines(self) -> dict[str, tuple[str, ...]]:
        """Cell id → `✗ memory: …` / `? model: …` lines, failures first (what the console shows per cell)."""
        out: dict[str, tuple[str, ...]] = {}
        for cell, found in self.problems_by_cell().items():
            ordered = sorted(found, key=lambda c: c.status != FAIL)
            out[cell] = tuple(f"{c.mark} {c.name}: {c.what}" for c in ordered)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"experiment": self.experiment, "file": self.file, "ok": self.ok, "counts": self.counts(),
                "sections": [s.to_dict() for s in self.sections], "cost": self.cost}
