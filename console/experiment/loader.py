"""Load an experiment file: TOML → validated `Experiment` → cells, or every problem at once.

Problems read `file:line: key: message` and name the fix, e.g.
`experiments/x.toml:12: techniques[1].k: must be > 0 (got 0)`.
"""

from __future__ import annotations

import difflib
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from console.errors import SpecdeckError
from console.experiment import schema
from console.experiment.cells import Cell, expand_cells
from console.experiment.key_lines import key_lines, line_of
from console.experiment.rules import guide_problems

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an experiment file, located and with the fix in the message."""

    file: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class SpecError(SpecdeckError):
    """An experiment file that cannot be used; `problems` lists everything wrong, not just the first, each
    located and naming its own fix."""

    exit_code = 1
    fix = "change what each line names; `specdeck validate FILE` checks the file again"

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class LoadedExperiment:
    """A validated experiment, where it came from, and its cells."""

    spec: schema.Experiment
    path: Path
    cells: list[Cell]
    origin_dir: Path | None = None
    """Where relative paths resolve when the file is a run's frozen copy of the original."""

    @property
    def base_dir(self) -> Path:
        return self.origin_dir or self.path.parent

    def cell(self, cell_id: str) -> Cell:
        for c in self.cells:
            if c.id == cell_id:
                return c
        close = difflib.get_close_matches(cell_id, [c.id for c in self.cells], n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else f"`specdeck validate {self.path}` lists them"
        raise UnknownCell(f"no cell {cell_id!r} in {self.path}", hint)


class UnknownCell(SpecdeckError, KeyError):
    """A cell id the experiment does not have; the fix names the closest ones."""


def format_path(path: tuple[str | int, ...]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


def _model_at(path: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The pydantic model that owns the last key of `path` (for 'did you mean' suggestions)."""
    current: Any = schema.Experiment
    for part in path[:-1]:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        info = current.model_fields.get(part)
        if info is None:
            return None
        current = _inner_model(info.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _inner_model(annotation: Any) -> Any:
    args = getattr(annotation, "__args__", None)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in args or ():
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


_TYPE_WORDS = {
    "int_type": "a whole number",
    "float_type": "a number",
    "bool_type": "true or false",
    "string_type": "a string in quotes",
    "list_type": "a list [ … ]",
    "dict_type": "a table { … }",
    "model_type": "a table { … }",
}
"""Strict schema: TOML values are never coerced, so the message says what to write instead."""


def _type_message(want: str, got: Any) -> str:
    shown = repr(got) if not isinstance(got, dict | list) else type(got).__name__
    if isinstance(got, bool):
        shown = "true" if got else "false"
    fix = ""
    if isinstance(got, str) and want in ("a whole number", "a number"):
        fix = f": write it without quotes, e.g. {got.strip()}" if _is_number(got) else ""
    elif isinstance(got, str) and want == "true or false":
        fix = ": write true or false without quotes"
    elif isinstance(got, float) and want == "a whole number" and got.is_integer() and abs(got) < 1e18:
        fix = f": write {int(got)}"
    return f"must be {want} (got {shown}){fix}"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _message(err: Any, path: tuple[str | int, ...]) -> str:
    kind = err["type"]
    got = err.get("input")
    if kind == "extra_forbidden":
        owner = _model_at(path)
        name = str(path[-1])
        known = list(owner.model_fields) if owner else []
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean `{close[0]}`?" if close else (f"; allowed: {', '.join(known)}" if known else "")
        return f"unknown key `{name}`{hint}"
    if kind == "missing":
        return f"required key missing: add `{path[-1]} = …`"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        ctx = err.get("ctx", {})
        op = {"greater_than": ">", "greater_than_equal": "≥", "less_than": "<", "less_than_equal": "≤"}[kind]
        bound = next(iter(ctx.values()), "?")
        return f"must be {op} {bound} (got {got!r})"
    if kind == "literal_error":
        return f"must be one of {err['ctx']['expected']} (got {got!r})"
    if kind == "string_pattern_mismatch":
        return f"{got!r} is not a valid id: use lower case letters, digits, '-' and '_' (e.g. gemma4-31b)"
    if kind == "too_short":
        return f"must not be empty (got {got!r})"
    if kind == "string_too_long":
        return f"is {len(str(got))} characters long: at most {err.get('ctx', {}).get('max_length')} (it names folders)"
    if kind in _TYPE_WORDS:
        return _type_message(_TYPE_WORDS[kind], got)
    if kind == "finite_number":
        return f"must be a finite number (got {got!r}): inf and nan are not settings"
    msg = err["msg"]
    msg = msg.removeprefix("Value error, ")
    if got is not None and not isinstance(got, dict | list) and "got" not in msg:
        msg += f" (got {got!r})"
    return msg


def _strip_loc(loc: tuple[Any, ...]) -> tuple[str | int, ...]:
    """Pydantic adds union-branch names and validator tags to locations; keep only data keys."""
    return tuple(p for p in loc if isinstance(p, int) or not str(p).startswith(("function-", "literal[")))


def parse_experiment(text: str, file: str) -> tuple[schema.Experiment | None, list[Problem]]:
    """Validate TOML text; every problem at once."""
    try:
        data = tomllib.loads(text)
    except RecursionError:
        return None, [Problem(file, _deepest_line(text), "", f"nested more than {MAX_DEPTH} arrays or tables deep: "
                              "not an experiment; flatten it")]
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        at = re.search(r"\(at line (\d+), column \d+\)", msg)
        line = getattr(exc, "lineno", None) or (int(at.group(1)) if at else None)
        if line is None:  # "(at end of document)": the problem is on the last line
            line = max(1, len(text.splitlines()))
        msg = getattr(exc, "msg", None) or re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", msg)
        return None, [Problem(file, line, "", f"not valid TOML: {msg}")]
    lines = key_lines(text)
    try:
        return schema.Experiment.model_validate(data), []
    except RecursionError:
        return None, [Problem(file, _deepest_line(text), "", f"nested more than {MAX_DEPTH} levels deep: flatten it")]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            path = _strip_loc(err["loc"])
            problems.append(Problem(file, line_of(lines, path), format_path(path), _message(err, path)))
        return None, problems


MAX_DEPTH = 100
"""Deeper nesting than this is reported, not parsed (tomllib recurses once per level)."""


def _deepest_line(text: str) -> int:
    """The first line where brackets nest more than MAX_DEPTH deep (strings are not skipped: close enough
    for a file that is not an experiment anyway)."""
    depth = 0
    for lineno, line in enumerate(text.splitlines(), start=1):
        for ch in line:
            depth += 1 if ch in "[{" else -1 if ch in "]}" else 0
            if depth > MAX_DEPTH:
                return lineno
    return 1


def read_text(p: Path) -> str:
    """The file as UTF-8 text, or `SpecError` saying why not (encoding, binary, permissions) and the fix."""
    def fail(message: str, line: int | None = None) -> SpecError:
        return SpecError([Problem(str(p), line, "", message)])

    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise fail("no such file: check the path (experiments/*.toml)") from None
    except IsADirectoryError:
        raise fail("is a directory, not an experiment .toml file") from None
    except PermissionError:
        raise fail("permission denied: make it readable (chmod u+r) or run as its owner") from None
    except OSError as exc:
        raise fail(f"cannot be read: {exc.strerror or exc}") from None
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise fail("is UTF-16 text: TOML is UTF-8; re-save it as UTF-8 (iconv -f utf-16 -t utf-8)", 1)
    if b"\0" in raw:
        at = raw.index(b"\0")
        if raw.count(0) * 3 > len(raw):  # every other byte NUL: UTF-16 without a byte-order mark
            raise fail("looks like UTF-16 text: TOML is UTF-8; re-save it as UTF-8 (iconv -f utf-16le -t utf-8)", 1)
        line = raw.count(b"\n", 0, at) + 1
        raise fail(f"is not a text file (NUL byte at offset {at}): give an experiment .toml file", line)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        byte = raw[exc.start:exc.start + 1].hex()
        raise fail(f"is not UTF-8 (byte 0x{byte}): TOML is UTF-8; re-save it as UTF-8 "
                   "(e.g. iconv -f latin1 -t utf-8)", line) from None


def load_experiment(path: str | Path, origin_dir: Path | None = None) -> LoadedExperiment:
    """Read, validate and expand an experiment file, or raise `SpecError` with every problem."""
    p = Path(path)
    text = read_text(p)
    spec, problems = parse_experiment(text, str(p))
    if spec is None:
        raise SpecError(problems)
    lines = key_lines(text)
    cells, cell_errors = expand_cells(spec)
    problems = _semantic_problems(spec, cells, str(p), lines)
    problems += [Problem(str(p), line_of(lines, e.path), format_path(e.path), str(e)) for e in cell_errors]
    if problems:
        raise SpecError(problems)
    return LoadedExperiment(spec=spec, path=p, cells=cells, origin_dir=origin_dir)


def load_experiment_or_say(path: str | Path) -> LoadedExperiment | None:
    """`load_experiment` for commands: on failure every problem goes to stderr and None comes back, so the
    command exits with its own code."""
    try:
        return load_experiment(path)
    except SpecError as exc:
        print("\n".join(map(str, exc.problems)), file=sys.stderr)
        return None


CELL_ID_MAX_BYTES = 255
"""A cell id names its folder under cells/: 255 bytes is the file-name limit of ext4, XFS, APFS and NTFS."""


def _semantic_problems(spec: schema.Experiment, cells: list[Cell], file: str, lines: dict) -> list[Problem]:
    """Rules across sections that a single field cannot check."""
    problems: list[Problem] = []

    def add(path: tuple[str | int, ...], message: str) -> None:
        problems.append(Problem(file, line_of(lines, path), format_path(path), message))

    sections: tuple[tuple[str, list[Any]], ...] = (
        ("models", list(spec.models)),
        ("techniques", list(spec.techniques)),
        ("benchmarks", list(spec.benchmarks)),
    )
    for section, items in sections:
        seen: dict[str, int] = {}
        for i, item in enumerate(items):
            # A model may appear once per precision (gemma4-31b at fp8 and at bf16, or a precisions table).
            keys = [v.key for v in item.variants()] if section == "models" else [item.id]
            for key in keys:
                if key in seen:
                    what = "id and precision" if section == "models" else "id"
                    add((section, i, "id"), f"duplicate {what} {key!r} (also {section}[{seen[key]}]): make it unique")
                seen.setdefault(key, i)
    for i, m in enumerate(spec.models):
        if m.active_params_b and m.active_params_b > m.total_params_b:
            add(("models", i, "active_params_b"), f"active params ({m.active_params_b}B) exceed total ({m.total_params_b}B)")
    for i, b in enumerate(spec.benchmarks):
        if b.options is None and b.floor is None:
            add(("benchmarks", i), "set `options` (MCQ: smoke must beat chance) or `floor` (the least sane score)")
    for path, message in guide_problems(spec):
        add(path, message)
    model_index = {v.key: i for i, m in enumerate(spec.models) for v in m.variants()}
    for cell in cells:
        size = len(cell.id.encode())
        if size > CELL_ID_MAX_BYTES:
            add(
                ("models", model_index[f"{cell.model.id}.{cell.model.precision}"], "id"),
                f"cell id {cell.id[:60]}… is {size} bytes: a cell's folder name may have at most "
                f"{CELL_ID_MAX_BYTES}; shorten the model, technique or context ids",
            )
            break
    too_short: dict[str, list[str]] = {}
    for cell in cells:
        need = cell.context.tokens + spec.workload.output_tokens
        if cell.serving.max_model_len is not None and cell.serving.max_model_len < need:
            too_short.setdefault(f"{cell.serving.max_model_len}<{need}", []).append(cell.id)
    for key, ids in too_short.items():
        have, need = key.split("<")
        add(
            ("serving", "max_model_len"),
            f"max_model_len {have} is shorter than context + output ({need}) for {len(ids)} cell(s), e.g. "
            f"{ids[0]}: raise max_model_len for them (an [[overrides]] rule) or exclude that context",
        )
    return problems
