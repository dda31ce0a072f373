"""A list of k values in a technique sweeps k as an axis: one technique (and one server) per value."""

from __future__ import annotations

import pytest
import tomllib

from console.experiment.loader import SpecError, load_experiment
from console.run.resolved import resolved_toml
from tests.experiment_text import AR, experiment, model, technique, workload

BASE = experiment("t", model(drafters={"draft": "org/drafter"}), AR,
                  technique("draft", "draft_model", k=[1, 2, 4, 6, 8]), workload())


def test_a_k_list_expands_into_one_technique_per_value(write_toml) -> None:
    cells = load_experiment(write_toml(BASE)).cells
    drafts = [c for c in cells if c.method == "draft_model"]
    assert [c.id for c in drafts if c.concurrency == 1] == [
        "m.fp8.draft-k1.short.c1", "m.fp8.draft-k2.short.c1", "m.fp8.draft-k4.short.c1",
        "m.fp8.draft-k6.short.c1", "m.fp8.draft-k8.short.c1"]
    assert {c.technique.k for c in drafts} == {1, 2, 4, 6, 8}
    assert all(isinstance(c.technique.k, int) for c in drafts)
    assert {c.sweep for c in drafts} == {"draft"}
    assert next(c for c in cells if c.method == "ar").sweep is None
    # one server per k; the two concurrencies of one k share it
    keys = {c.technique.k: set() for c in drafts}
    for c in drafts:
        keys[c.technique.k].add(c.serving_key)
    assert all(len(v) == 1 for v in keys.values()) and len(set().union(*keys.values())) == 5
    # the model's drafter named by the sweep's own id reaches every point
    assert {c.drafter for c in drafts} == {"org/drafter"}


def test_ids_are_stable_when_the_list_grows(write_toml) -> None:
    small = {c.id for c in load_experiment(write_toml(BASE.replace("[1, 2, 4, 6, 8]", "[4]"))).cells}
    big = {c.id for c in load_experiment(write_toml(BASE)).cells}
    assert "m.fp8.draft-k4.short.c1" in small and small <= big


def test_rules_and_matrices_name_the_sweep_by_its_own_id(write_toml) -> None:
    text = BASE + """
[cells]
exclude = [{ technique = "draft", concurrency = 4 }]

[[overrides]]
match = { technique = "draft" }
serving = { max_num_seqs = 4 }

[[overrides]]
match = { technique = "draft-k8" }
serving = { max_num_seqs = 8 }
"""
    cells = {c.id: c for c in load_experiment(write_toml(text)).cells}
    assert not any(i.startswith("m.fp8.draft-") and i.endswith(".c4") for i in cells)
    assert "m.fp8.ar.short.c4" in cells
    assert cells["m.fp8.draft-k2.short.c1"].serving.max_num_seqs == 4
    assert cells["m.fp8.draft-k8.short.c1"].serving.max_num_seqs == 8  # one point by its own id
    matrix = BASE + '\n[[cells.matrix]]\ntechniques = ["draft"]\nconcurrency = [1]\n'
    assert len(load_experiment(write_toml(matrix)).cells) == 5


def test_the_resolved_spec_names_the_sweep(write_toml) -> None:
    resolved = tomllib.loads(resolved_toml(load_experiment(write_toml(BASE))))
    rows = {c["id"]: c for c in resolved["cell"]}
    assert rows["m.fp8.draft-k6.short.c4"]["sweep"] == "draft" and rows["m.fp8.draft-k6.short.c4"]["k"] == 6
    assert "sweep" not in rows["m.fp8.ar.short.c1"]


@pytest.mark.parametrize("k,fragment", [
    ("[]", "needs at least one value"),
    ("[0, 2]", "must be > 0 (got 0)"),
    ("[2, 2]", "must be unique"),
    ('[2, "4"]', "whole number"),
    ("0", "must be > 0 (got 0)"),
])
def test_bad_k_lists_are_located_and_explained(write_toml, k, fragment) -> None:
    with pytest.raises(SpecError) as info:
        load_experiment(write_toml(BASE.replace("k = [1, 2, 4, 6, 8]", f"k = {k}")))
    hits = [str(p) for p in info.value.problems if fragment in str(p)]
    assert hits and "exp.toml:19: techniques[1].k:" in hits[0], info.value.problems


def test_a_sweep_id_that_clashes_is_an_error(write_toml) -> None:
    text = BASE + '\n[[techniques]]\nid = "draft-k4"\nmethod = "ngram"\nk = 4\n'
    with pytest.raises(SpecError) as info:
        load_experiment(write_toml(text))
    assert any("makes id 'draft-k4'" in str(p) for p in info.value.problems), info.value.problems
