"""Recognise an eval that failed because its data is not on this machine, and say what to do.

The messages come from the installed libraries: datasets 5.2.0 `load.py` raises
``ConnectionError: Couldn't reach 'Idavidrein/gpqa' on the Hub (OfflineModeIsEnabled)`` (offline, not cached)
or ``(ConnectError)`` (no network), ``DatasetNotFoundError: Dataset 'x' doesn't exist on the Hub or cannot be
accessed`` and ``Dataset 'x' is a gated dataset on the Hub``; nltk raises ``LookupError: Resource punkt_tab not
found``.
"""

from __future__ import annotations

import re

PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"Couldn't reach '([^']+)' on the Hub \((OfflineModeIsEnabled)\)"), "offline"),
    (re.compile(r"Couldn't reach '([^']+)' on the Hub \((\w+)\)"), "unreachable"),
    (re.compile(r"Dataset '([^']+)' is a gated dataset"), "gated"),
    (re.compile(r"Dataset '([^']+)' doesn't exist on the Hub"), "missing"),
    (re.compile(r"Resource (\w+) not found"), "nltk"),
)


def missing_data_hint(log_text: str, experiment: str = "EXPERIMENT") -> str | None:
    """A sentence naming the missing dataset and `specdeck prepare`, or None when the log shows no such cause."""
    for pattern, kind in PATTERNS:
        m = pattern.search(log_text)
        if not m:
            continue
        name = m.group(1)
        if kind == "offline":
            return (f"dataset {name} is not on this machine and the run is offline: `specdeck prepare {experiment}` "
                    "downloads it (or run without --offline)")
        if kind == "unreachable":
            return (f"dataset {name} is not on this machine and the hub cannot be reached ({m.group(2)}): run "
                    f"`specdeck prepare {experiment}` where the network is reachable")
        if kind == "gated":
            return (f"dataset {name} is gated: request access at https://huggingface.co/datasets/{name}, then "
                    f"`hf auth login` and `specdeck prepare {experiment}`")
        if kind == "missing":
            return f"dataset {name} does not exist on the hub or is private: check the task's dataset_path"
        return f"nltk data {name!r} is missing: `specdeck prepare {experiment}` (or python -m nltk.downloader {name})"
    return None
