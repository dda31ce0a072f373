"""Experiment files for tests, built from their tables: a test names what is particular to its experiment
(a model's path, a technique, the workload) and this module writes the TOML, so the tables every test needs
(a model, the AR technique, a benchmark) are spelled once. `tomllib.loads` of what it writes is the dict it
was given; tables are separated by a blank line or, with `blank=False`, not at all (line numbers in tests of
the loader's `file:line:` messages depend on it)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping

BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def toml_key(key: str) -> str:
    """A key as written: bare when TOML allows it, else quoted."""
    return key if BARE_KEY.match(key) else json.dumps(key)


def toml_value(value: object) -> str:
    """A TOML value on one line: strings in double quotes, lists in brackets, tables inline; floats as Python
    writes them (and nan, inf, -inf)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return "nan" if math.isnan(value) else "inf" if value > 0 else "-inf"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{toml_key(str(k))} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML for {value!r}")


def table(header: str, /, **keys: object) -> str:
    """`[header]` (write `[[models]]` as header `[models]`) and one `key = value` line per key, in order."""
    return f"[{header}]\n" + "".join(f"{toml_key(k)} = {toml_value(v)}\n" for k, v in keys.items())


def model(id: str = "m", path: str = "org/model", total_params_b: float = 8, bytes_per_param: float = 1,  # noqa: A002
          precision: str = "fp8", **more: object) -> str:
    """A `[[models]]` entry (8 B parameters at fp8 unless told); `more` after the five keys."""
    return table("[models]", id=id, path=path, total_params_b=total_params_b, bytes_per_param=bytes_per_param,
                 precision=precision, **more)


def technique(id: str, method: str | None = None, **more: object) -> str:  # noqa: A002
    """A `[[techniques]]` entry; the method is the id unless told."""
    return table("[techniques]", id=id, method=method or id, **more)


AR = technique("ar")


def context(label: str = "short", tokens: int = 128) -> dict[str, object]:
    return {"label": label, "tokens": tokens}


def workload(contexts: tuple[dict[str, object], ...] = (context(),), concurrency: tuple[int, ...] = (1, 4),
             **more: object) -> str:
    return table("workload", contexts=list(contexts), concurrency=list(concurrency), **more)


def benchmark(id: str = "toy-mcq", framework: str = "builtin", task: str = "toy-mcq", options: int = 4,  # noqa: A002
              **more: object) -> str:
    """A `[[benchmarks]]` entry (the built-in toy quiz unless told)."""
    return table("[benchmarks]", id=id, framework=framework, task=task, options=options, **more)


def experiment(name: str, /, *tables: str, blank: bool = True, **keys: object) -> str:
    """The file: `[experiment]` with `name` and `keys`, then `tables` (texts from `table`, `model`, …)."""
    return ("\n" if blank else "").join([table("experiment", name=name, **keys), *tables])


def mtp_experiment(contexts: tuple[dict[str, object], ...] = (context(),)) -> str:
    """Model m at fp8, AR and MTP k=3, c=1 and 4: the experiment the loader's tests mutate one line at a time
    (tests/unit/test_spec.py and the malformed corpus, whose expected lines count from this text)."""
    return experiment("t", table("serving", max_model_len=4096), model(), AR, technique("mtp-k3", "mtp", k=3),
                      workload(contexts))
