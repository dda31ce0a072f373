"""#16 item 14: generated experiment files never traceback, and every problem names its line.

Hypothesis mutates a valid experiment (values of every type at every key, deleted keys, unknown keys,
deleted or duplicated lines, stray text) and writes it as TOML the way people do (tables, arrays of tables,
inline tables). A bounded number of examples keeps it a few seconds.
"""

from __future__ import annotations

import json
from typing import Any

import tomllib
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from console.experiment.loader import SpecError, load_experiment
from tests.experiment_text import (
    AR,
    benchmark,
    context,
    experiment,
    model,
    table,
    technique,
    toml_key,
    toml_value,
    workload,
)

VALID = experiment(
    "fuzz",
    table("serving", max_model_len=4096, extra_args=["--language-model-only"], env={"A": "1"}),
    model(drafters={"draft": "org/drafter"}, serving={"max_num_seqs": 8}),
    AR,
    technique("draft", "draft_model", k=4, config={"foo": 1}),
    workload((context(), context("1k", 1024)), repeats=2),
    table("generation", temperature=0.0),
    benchmark("mcq", task="toy"),
    table("cells", exclude=[{"context": "1k", "concurrency": 4}]),
    table("[overrides]", match={"technique": "draft"}, serving={"max_model_len": 2048}),
    table("[guide]", name="fastest", objective="max_speed"),
    table("niah", depths=[0.5]))

BASE: dict[str, Any] = tomllib.loads(VALID)
KEYS = sorted({"id", "k", "path", "name", "method", "tokens", "label", "models", "serving", "match", "exclude",
               "concurrency", "depths", "max_model_len", "extra_args", "env", "options", "precision", "objective",
               "max_modle_len", "typo", "benchmark", "context", "technique", "experiment", "cells"})
def dump(data: dict[str, Any]) -> str:
    """The document with its scalars first, then each table and array of tables, a blank line before each."""
    out = [f"{toml_key(k)} = {toml_value(v)}\n" for k, v in data.items()
           if not isinstance(v, dict) and not (isinstance(v, list) and v and all(isinstance(x, dict) for x in v))]
    for k, v in data.items():
        if isinstance(v, dict):
            out.append("\n" + table(toml_key(k), **v))
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            out += ["\n" + table(f"[{toml_key(k)}]", **item) for item in v]
    return "".join(out) or "\n"


scalars = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1), st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(), st.text(st.characters(blacklist_categories=("Cs",)), max_size=12),
    st.sampled_from(["", "m", "ar", "short", "8K", "bf61", "--host", "x=y", "a\u0000b", "é" * 300, "1e6"]),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.sampled_from(KEYS), inner, max_size=3), max_leaves=6)


def paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += paths(v, (*prefix, i))
    return out


@st.composite
def experiments(draw) -> str:
    data = json.loads(json.dumps(BASE))
    for _ in range(draw(st.integers(1, 4))):
        all_paths = paths(data)
        if not all_paths:
            break
        path = draw(st.sampled_from(all_paths))
        parent: Any = data
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["set", "set", "delete", "add"]))
        if action == "delete":
            del parent[path[-1]]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.sampled_from(KEYS))] = draw(values)
        else:
            parent[path[-1]] = draw(values)
    text = dump(data)
    lines = text.split("\n")
    edit = draw(st.sampled_from(["none", "none", "drop", "dup", "junk"]))
    if edit != "none" and len(lines) > 1:
        i = draw(st.integers(0, len(lines) - 1))
        if edit == "drop":
            del lines[i]
        elif edit == "dup":
            lines.insert(i, lines[i])
        else:
            lines.insert(i, draw(st.sampled_from(["[", "x =", "]]", "[[models]", "= 1", "a = 1 2", "[serving]"])))
    return "\n".join(lines)


def check(tmp_path, text: str) -> None:
    path = tmp_path / "fuzz.toml"
    path.write_text(text, encoding="utf-8")
    try:
        load_experiment(path)
    except SpecError as exc:
        n = text.count("\n") + 1
        for p in exc.problems:
            assert p.line is not None and 1 <= p.line <= n, f"{p}\n---\n{text}"
            assert str(p).startswith(f"{path}:{p.line}: "), str(p)


@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(text=experiments())
@example(text=VALID.replace('[experiment]\nname = "fuzz"\n', ""))  # no line before: a missing top-level table
@example(text=VALID.replace("repeats = 2", "repeats = " + "[" * 3000 + "]" * 3000))  # RecursionError before
def test_generated_experiments_never_traceback_and_every_problem_has_a_line(tmp_path, text) -> None:
    check(tmp_path, text)


def test_the_generator_starts_from_a_valid_file(tmp_path) -> None:
    path = tmp_path / "valid.toml"
    path.write_text(dump(BASE))
    assert len(load_experiment(path).cells) == 6
