"""#16 items 10 and 11: strict types and bounds, and vLLM flags specdeck owns refused in extra_args."""

from __future__ import annotations

import pytest

from console.experiment.loader import SpecError, load_experiment
from tests.unit.test_spec import BASE


def problems_of(write_toml, text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_experiment(write_toml(text))
    return [str(p) for p in info.value.problems]


STRICT = [
    # (mutation, key in the message, fragment) — each was accepted (coerced or unbounded) before
    (lambda t: t.replace("max_model_len = 4096", 'max_model_len = "9216"'), "serving.max_model_len",
     "must be a whole number (got '9216'): write it without quotes"),
    (lambda t: t.replace("k = 3", "k = true"), "techniques[1].k", "must be a whole number or a list of them (got True)"),
    (lambda t: t.replace("max_model_len = 4096", 'max_model_len = 4096\nenable_prefix_caching = "off"'),
     "serving.enable_prefix_caching", "must be true or false (got 'off')"),
    (lambda t: t.replace("k = 3", "k = 1e6"), "techniques[1].k", "must be a whole number or a list of them (got 1000000.0)"),
    (lambda t: t.replace("k = 3", "k = 1000000"), "techniques[1].k", "must be ≤ 1024"),
    (lambda t: t.replace("k = 3", "k = [2, 100000]"), "techniques[1].k", "must be ≤ 1024"),
    (lambda t: t + "\n[generation]\ntemperature = 1e308\n", "generation.temperature", "must be ≤ 10"),
    (lambda t: t + "\n[generation]\ntemperature = inf\n", "generation.temperature", "must be a finite number"),
    (lambda t: t + "\n[generation]\ntop_p = nan\n", "generation.top_p", "must be a finite number"),
    (lambda t: t.replace("max_model_len = 4096", "max_model_len = 9223372036854775807"),
     "serving.max_model_len", "must be ≤ 16777216"),
    (lambda t: t.replace("total_params_b = 8", 'total_params_b = "8"'), "models[0].total_params_b",
     "must be a number"),
    (lambda t: t + '\n[[cells.matrix]]\nconcurrency = [0]\n', "cells.matrix[0].concurrency[0]", "must be > 0"),
    (lambda t: t + '\n[[cells.explicit]]\nmodel = "m"\ntechnique = "ar"\ncontext = "short"\nconcurrency = -1\n',
     "cells.explicit[0].concurrency", "must be > 0 (got -1)"),
    (lambda t: t + '\n[cells]\nexclude = [{ concurrency = 0 }]\n', "cells.exclude[0].concurrency", "must be > 0"),
    (lambda t: t + "\n[niah]\ndepths = [0.5, 1.5]\n", "niah.depths[1]", "must be ≤ 1.0 (got 1.5)"),
    (lambda t: t + "\n[niah]\ndepths = [-0.1]\n", "niah.depths[0]", "must be ≥ 0"),
    (lambda t: t.replace('id = "m"', f'id = "{"m" * 65}"'), "models[0].id", "at most 64"),
    (lambda t: t.replace("max_model_len = 4096", 'max_model_len = 4096\nenv = { "A=B" = "1" }'),
     "serving.env", "'A=B' is not an environment variable name"),
    (lambda t: t.replace("max_model_len = 4096", 'max_model_len = 4096\nenv = { "A\\u0000B" = "1" }'),
     "serving.env", "is not an environment variable name"),
    (lambda t: t.replace("max_model_len = 4096", 'max_model_len = 4096\nenv = { A = "x\\u0000" }'),
     "serving.env", "NUL byte"),
]


@pytest.mark.parametrize("mutate,key,fragment", STRICT)
def test_strict_types_and_bounds(write_toml, mutate, key, fragment) -> None:
    problems = problems_of(write_toml, mutate(BASE))
    hit = [p for p in problems if f": {key}: " in p and fragment in p]
    assert hit, problems
    assert "exp.toml:" in hit[0] and hit[0].split(":")[1].isdigit(), hit


def test_cell_folder_name_over_255_bytes(write_toml) -> None:
    long = "x" * 64
    text = (BASE.replace('id = "m"', f'id = "{long}"').replace('precision = "fp8"', f'precision = "{long}"')
            .replace('id = "mtp-k3"', f'id = "{long}"').replace('label = "short"', f'label = "{long}"')
            .replace("concurrency = [1, 4]", "concurrency = [1, 40000]"))
    problems = problems_of(write_toml, text)
    assert any("models[0].id: cell id" in p and "bytes" in p and "at most 255" in p for p in problems), problems


OWNED = [
    ["--host", "0.0.0.0"],
    ["--port=8001"],
    ["--api-key", "sk-secret"],
    ["--api_key=sk-secret"],
    ["--model", "other/model"],
    ["--served-model-name", "x"],
    ["--served_model_name=x"],
    ["--hos", "0.0.0.0"],  # argparse expands unique abbreviations
    ["--speculative-config.method", "ngram"],
]


@pytest.mark.parametrize("args", OWNED, ids=lambda a: a[0])
def test_extra_args_refuse_flags_specdeck_owns(write_toml, args) -> None:
    quoted = ", ".join(f'"{a}"' for a in args)
    problems = problems_of(write_toml, BASE.replace("max_model_len = 4096", f"max_model_len = 4096\nextra_args = [{quoted}]"))
    hit = [p for p in problems if "serving.extra_args" in p]
    assert hit and "is set by specdeck, not in extra_args: remove it" in hit[0], problems
    assert "exp.toml:6:" in hit[0]
    if "api" in args[0]:
        assert "sk-secret" not in hit[0] or args[0].startswith("--api_key="), hit  # the value is not echoed


def test_extra_args_other_flags_still_pass(write_toml) -> None:
    text = BASE.replace("max_model_len = 4096",
                        'max_model_len = 4096\nextra_args = ["--language-model-only", "--max-model-len-x", "--p"]')
    assert load_experiment(write_toml(text)).cells
