"""Map TOML key paths to line numbers, so that schema errors can say `file:line: key: message`.

`tomllib` keeps no positions, so this scans the text: table headers (`[a.b]`, `[[a]]`, with array-of-table
counters), `key = value` lines and one level of inline tables. Good enough to point at the right line for
every key a person writes; a key it cannot place falls back to its nearest placed parent.
"""

from __future__ import annotations

import re

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*((?:"[^"]*"|'[^']*'|[A-Za-z0-9_-]+)(?:\s*\.\s*(?:"[^"]*"|'[^']*'|[A-Za-z0-9_-]+))*)\s*=""")
_INLINE_KEY = re.compile(r"""(?:[{,]\s*)("[^"]*"|[A-Za-z0-9_-]+)\s*=""")

KeyPath = tuple[str | int, ...]


def _split_dotted(key: str) -> list[str]:
    parts = re.findall(r"""\"[^\"]*\"|'[^']*'|[A-Za-z0-9_-]+""", key)
    return [p.strip("\"'") for p in parts]


def key_lines(text: str) -> dict[KeyPath, int]:
    """Every key path the scanner can place → its 1-based line number."""
    lines: dict[KeyPath, int] = {}
    counters: dict[tuple[str, ...], int] = {}
    current: KeyPath = ()
    in_multiline = False
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw
        if in_multiline:
            if '"""' in line or "'''" in line:
                in_multiline = False
            continue
        if line.count('"""') % 2 == 1 or line.count("'''") % 2 == 1:
            in_multiline = True
        header = _HEADER.match(line)
        if header:
            names = _split_dotted(header.group(2))
            prefix: list[str | int] = []
            # Walk the dotted header, inserting array indices for arrays-of-tables seen before.
            for i, name in enumerate(names):
                prefix.append(name)
                key = tuple(str(p) for p in prefix)
                is_last = i == len(names) - 1
                if is_last and header.group(1) == "[[":
                    counters[key] = counters.get(key, -1) + 1
                    prefix.append(counters[key])
                elif key in counters:
                    prefix.append(counters[key])
            current = tuple(prefix)
            lines.setdefault(current, lineno)
            if header.group(1) == "[[":
                lines.setdefault(current[:-1], lineno)
            continue
        m = _KEY.match(line)
        if m:
            path = (*current, *_split_dotted(m.group(1)))
            lines.setdefault(path, lineno)
            rest = line[m.end():]
            if "{" in rest:  # one level of inline table keys on the same line
                for im in _INLINE_KEY.finditer(rest):
                    lines.setdefault((*path, im.group(1).strip('"')), lineno)
    return lines


def line_of(lines: dict[KeyPath, int], path: KeyPath) -> int:
    """The line of `path`, else of its nearest placed parent (for missing keys: the table's header), else 1:
    a key missing at the top level (no `[experiment]`) is a problem of the file from its first line."""
    probe = tuple(path)
    while probe:
        if probe in lines:
            return lines[probe]
        # Inline arrays of tables have no header per item: try without the trailing index.
        probe = probe[:-1]
    return 1
