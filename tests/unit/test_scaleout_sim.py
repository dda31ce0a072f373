"""benchmarks/scaleout_sim.py: the study's campaign on N boxes accounts for every hour of work, deterministically."""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sim():
    spec = importlib.util.spec_from_file_location("scaleout_sim", ROOT / "benchmarks" / "scaleout_sim.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["scaleout_sim"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def study(sim):
    a = sim.Assumptions()
    groups, costs = sim.campaign(sim.STUDY, a)
    return a, groups, costs


def test_tok_s_are_the_studys_published_table(sim):
    """The fp8 figures equal the typed-in study tables (tests/fixtures/study), model names aside."""
    names = {"gemma-4-12b": "gemma4-12b", "gemma-4-26b-a4b": "gemma4-26b-a4b", "gemma-4-31b": "gemma4-31b",
             "qwen3.6-27b": "qwen36-27b", "qwen3.6-35b-a3b": "qwen36-35b-a3b",
             "diffusiongemma-26b-a4b": "diffusiongemma-26b-a4b"}
    techniques = {"ar": "ar", "mtp": "mtp-k8", "diffusion": "diffusion"}
    rows = [r for r in csv.DictReader((ROOT / "tests/fixtures/study/study_tables.csv").open())
            if r["measurement"] == "speed"]
    assert len(rows) == 17
    for r in rows:
        key = (names[r["model"]], r["precision"], techniques[r["technique"]])
        assert sim.TOK_S[key][(r["context"], int(r["concurrency"]))] == float(r["tok_s_median"])


def test_one_box_runs_all_work_back_to_back(sim, study):
    a, groups, costs = study
    out = sim.simulate(groups, costs, 1, a, accelerator="H100")
    work = sum(c.startup + c.generating for c in costs.values())
    assert out.makespan_s == pytest.approx(work + len(groups) * a.decide_after_s)
    assert out.gpu_busy == pytest.approx(sum(c.generating for c in costs.values()) / out.makespan_s)
    assert out.starts == {g.label: 1 for g in groups} and len(out.starts) == 17


def test_whole_groups_stop_scaling_at_the_longest_group(sim, study):
    a, groups, costs = study
    longest = max(c.startup + c.generating + a.decide_after_s for c in costs.values())
    for boxes in (8, 32):
        out = sim.simulate(groups, costs, boxes, a, accelerator="H100", shard_share=None)
        assert out.makespan_s == pytest.approx(longest)


def test_shards_scale_to_eight_boxes_and_cost_starts(sim, study):
    a, groups, costs = study
    one = sim.simulate(groups, costs, 1, a, accelerator="H100")
    eight = sim.simulate(groups, costs, 8, a, accelerator="H100")
    assert one.makespan_s / eight.makespan_s > 7.0
    assert sum(eight.starts.values()) > 17


def test_late_decisions_restart_the_server_once_more(sim, study):
    a, groups, costs = study
    late = sim.Assumptions(late_every=1)
    out = sim.simulate(groups, costs, 1, late, accelerator="H100", shard_share=None)
    assert out.starts == {g.label: 2 for g in groups}


def test_json_output_is_deterministic(sim, capsys):
    sim.main(["--json", "--boxes", "1,2"])
    first = capsys.readouterr().out
    sim.main(["--json", "--boxes", "1,2"])
    assert capsys.readouterr().out == first
    data = json.loads(first)
    assert [set(d) for d in data] == [{"boxes", "makespan_h", "gpu_busy", "starts_per_config"}] * 2
    assert data[0]["boxes"] == 1 and data[1]["makespan_h"] < data[0]["makespan_h"]
