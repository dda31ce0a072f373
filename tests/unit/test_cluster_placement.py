"""Placement policy of the scale-out (#15): groups, GPUs from the serving args, device types, the approval hold."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.cluster.devices import accelerator_type, device_key
from console.cluster.groups import GroupRequest, PlacementError, group_requests, parallel_layout
from console.cluster.placement import Box, Placement, Task, TaskKind, even_share_s, order_groups
from console.experiment.loader import load_experiment

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("args", "gpus"), [
    ([], 1),
    (["--language-model-only"], 1),
    (["-tp", "2"], 2),
    (["--tensor-parallel-size=4"], 4),
    (["--tensor_parallel_size", "2", "--pipeline-parallel-size", "2"], 4),
    (["-tp", "2", "-dp", "2"], 4),
    (["-tp", "2", "--tensor-parallel-size", "8"], 8),  # the last one wins, as argparse
    (["--prefill-context-parallel-size", "2"], 2),
])
def test_gpus_from_vllm_parallel_flags(args, gpus):
    assert parallel_layout(args).gpus == gpus


@pytest.mark.parametrize("args", [["-tp", "two"], ["-tp", "0"], ["--tensor-parallel-size"]])
def test_bad_parallel_flag_is_a_typed_error_with_the_fix(args):
    with pytest.raises(PlacementError) as err:
        parallel_layout(args)
    assert "fix:" in str(err.value)


@pytest.mark.parametrize(("name", "label"), [
    ("NVIDIA H100 80GB HBM3", "H100"),
    ("H100 SXM", "H100"),
    ("NVIDIA H100 PCIe", "H100"),
    ("NVIDIA A100-SXM4-80GB", "A100"),
    ("Tesla V100-SXM2-16GB", "V100"),
    ("NVIDIA RTX PRO 6000 Blackwell Server Edition", "RTX-PRO-6000"),
    ("NVIDIA GeForce RTX 4090", "GeForce-RTX-4090"),
    ("cpu", None),
    (None, None),
])
def test_accelerator_type_follows_rays_label(name, label):
    assert accelerator_type(name) == label


def test_device_key_tells_sxm_from_pcie_where_rays_label_does_not():
    assert device_key("NVIDIA H100 80GB HBM3") == device_key("nvidia  h100 80gb HBM3")
    assert device_key("NVIDIA H100 80GB HBM3") != device_key("NVIDIA H100 PCIe")
    assert device_key("cpu") == "cpu" and device_key(None) == ""


def test_study_groups_are_its_seventeen_server_configs_on_h100():
    exp = load_experiment(ROOT / "experiments" / "study-h100.toml")
    groups = group_requests(exp.cells, exp.spec.experiment.device)
    assert len(groups) == len({c.serving_key for c in exp.cells}) == 17
    assert {g.accelerator for g in groups} == {"H100"}
    assert {g.gpus for g in groups} == {1}
    assert sum(len(g.cells) for g in groups) == len(exp.cells)
    thread_ar = next(g for g in groups if g.label == "gemma4-31b.bf16.ar")
    assert len(thread_ar.cells) == 5 and thread_ar.baseline  # c = 1, 2, 4, 8, 16 share one server


def test_tensor_parallel_override_asks_for_more_gpus_and_multinode_is_refused(write_toml):
    text = (ROOT / "experiments" / "study-h100.toml").read_text()
    tp = text + '\n[[overrides]]\nmatch = { model = "gemma4-31b" }\nserving = { extra_args = ["-tp", "2"] }\n'
    exp = load_experiment(write_toml(tp))
    gpus = {g.label: g.gpus for g in group_requests(exp.cells, exp.spec.experiment.device)}
    assert gpus["gemma4-31b.fp8.mtp-k8"] == 2 and gpus["gemma4-31b.bf16.dflash-k15"] == 2
    assert gpus["gemma4-12b.fp8.ar"] == 1
    multi = text + '\n[[overrides]]\nmatch = { model = "gemma4-12b" }\nserving = { extra_args = ["--nnodes", "2"] }\n'
    exp = load_experiment(write_toml(multi, "multi.toml"))
    with pytest.raises(PlacementError, match="spans 2 nodes"):
        group_requests(exp.cells, exp.spec.experiment.device)


@pytest.mark.parametrize("flag", [["--distributed-executor-backend", "ray"], ["--distributed_executor_backend=ray"]])
def test_a_server_on_vllms_own_ray_is_refused(write_toml, flag):
    text = (ROOT / "experiments" / "study-h100.toml").read_text()
    extra = ", ".join(f'"{w}"' for w in ["-tp", "2", *flag])
    exp = load_experiment(write_toml(text + f'\n[[overrides]]\nmatch = {{ model = "gemma4-12b" }}\n'
                                     f"serving = {{ extra_args = [{extra}] }}\n"))
    with pytest.raises(PlacementError, match="vLLM's own Ray"):
        group_requests(exp.cells, exp.spec.experiment.device)
    mp = load_experiment(write_toml(text + '\n[[overrides]]\nmatch = { model = "gemma4-12b" }\n'
                                    'serving = { extra_args = ["-tp", "2", "--distributed-executor-backend", "mp"] }\n',
                                    "mp.toml"))
    assert {g.gpus for g in group_requests(mp.cells, "H100") if g.model == "gemma4-12b.fp8"} == {2}


def g(label: str, est_h: float = 1.0, gpus: int = 1, accelerator: str | None = None, model: str | None = None,
      baseline: bool = False) -> GroupRequest:
    return GroupRequest(key=label, label=label, model=model or label, baseline=baseline, gpus=gpus,
                        accelerator=accelerator, cells=(label,), est_s=est_h * 3600)


def test_longest_first_then_baselines_first_among_equals():
    groups = [g("short", 1), g("long", 9), g("mtp", 3, model="m"), g("ar", 3, model="m", baseline=True)]
    assert [x.label for x in order_groups(groups)] == ["long", "ar", "mtp", "short"]
    # equal GPU-hours (4 × 1 and 2 × 2): the group needing more GPUs goes first, while boxes are empty
    assert [x.label for x in order_groups([g("one", 4, gpus=1), g("two", 2, gpus=2)])] == ["two", "one"]


def test_best_fit_keeps_the_big_box_for_the_tensor_parallel_group():
    boxes = [Box("a-big", 8, "H100"), Box("b-small", 2, "H100")]
    p = Placement(boxes, [g("tp8", 1, gpus=8), g("one", 50)])  # "one" is placed first (50 vs 8 GPU-h)
    placed = {a.task.group.label: a.box.name for a in p.assign()}
    assert placed == {"tp8": "a-big", "one": "b-small"}
    assert p.free == {"a-big": 0, "b-small": 1}


def test_device_type_is_honoured_and_a_group_that_fits_nowhere_is_refused():
    boxes = [Box("a100", 1, "A100"), Box("h100", 1, "H100")]
    p = Placement(boxes, [g("x", 2, accelerator="H100"), g("y", 1, accelerator="H100")])
    assert [(a.task.group.label, a.box.name) for a in p.assign()] == [("x", "h100")]
    assert [t.group.label for t in p.queue] == ["y"]  # waits for the H100 while the A100 idles
    with pytest.raises(PlacementError, match="fix:"):
        Placement(boxes, [g("big", gpus=2, accelerator="H100")])
    with pytest.raises(PlacementError, match="type"):
        Placement(boxes, [g("b200", accelerator="B200")])


def test_a_models_groups_follow_the_device_type_of_its_first_group():
    boxes = [Box("a100", 1, "A100"), Box("h100-1", 1, "H100"), Box("h100-2", 1, "H100")]
    groups = [g("m.ar", 9, model="m", baseline=True), g("m.mtp", 5, model="m"), g("n.ar", 1, model="n")]
    p = Placement(boxes, groups)
    first = {a.task.group.label: a.box.name for a in p.assign()}
    assert first["m.ar"] == "a100"  # "a100" sorts first; the type is now A100 for model m
    assert "m.mtp" not in first and first["n.ar"].startswith("h100")
    p.finished("m.ar")
    assert [(a.task.group.label, a.box.name) for a in p.assign()] == [("m.mtp", "a100")]
    free_for_all = Placement(boxes, groups, follow_baseline=False)
    assert len(free_for_all.assign()) == 3


def test_decision_in_the_window_continues_on_the_held_box():
    p = Placement([Box("b", 1, "H100")], [g("x"), g("y")], approval_window_s=600)
    assert [a.task.group.label for a in p.assign()] == ["x"]
    assert p.awaiting_approval("x", now=100) == 700
    assert p.expire_holds(now=650) == [] and p.assign() == []  # the box stays held
    assert p.decided(g("x"), approved=True, now=650).outcome == "continue"
    assert p.free == {"b": 0}
    p.finished("x")
    assert [a.task.group.label for a in p.assign()] == ["y"]


def test_rejection_in_the_window_frees_the_box():
    p = Placement([Box("b", 1)], [g("x"), g("y")], approval_window_s=600)
    p.assign()
    p.awaiting_approval("x", now=0)
    assert p.decided(g("x"), approved=False, now=10).outcome == "released"
    assert [a.task.group.label for a in p.assign()] == ["y"]


def test_late_approval_queues_the_full_run_on_the_same_device_type():
    boxes = [Box("a100", 1, "A100"), Box("h100", 1, "H100")]
    p = Placement(boxes, [g("x", 5), g("y", 1)], approval_window_s=600)  # no device named: any type
    assert {a.task.group.label: a.box.name for a in p.assign()} == {"x": "a100", "y": "h100"}
    p.awaiting_approval("x", now=0)
    assert p.expire_holds(now=601) == ["x"] and p.free["a100"] == 1
    assert p.decided(g("x", 5), approved=True, now=5000).outcome == "queued"
    p.finished("y")  # the H100 is free first, but x was measured on the A100
    p.free["a100"] = 0  # someone else's task holds the A100 meanwhile
    assert p.assign() == []
    p.free["a100"] = 1
    (full,) = p.assign()
    assert (full.task.kind, full.task.accelerator, full.box.name) == (TaskKind.FULL, "A100", "a100")


def test_late_rejection_drops_the_group():
    p = Placement([Box("b", 1)], [g("x")], approval_window_s=60)
    p.assign()
    p.awaiting_approval("x", now=0)
    assert p.decided(g("x"), approved=False, now=100).outcome == "dropped"
    assert p.free == {"b": 1} and p.queue == []


def test_a_long_full_run_is_split_into_item_shards_on_boxes_of_its_type():
    boxes = [Box("a100", 1, "A100"), *(Box(f"h100-{i}", 1, "H100") for i in range(3))]
    groups = [g("x", 10, accelerator="H100"), g("y", 1, accelerator="H100")]
    p = Placement(boxes, groups, approval_window_s=600, shard_s=4 * 3600)
    assert {a.task.group.label for a in p.assign()} == {"x", "y"}
    p.awaiting_approval("x", now=0)
    d = p.decided(groups[0], approved=True, now=60, full_s=9 * 3600)  # ⌈9 / 4⌉ = 3 shards
    assert d.outcome == "continue" and d.here is not None and (d.here.shard, d.here.shards) == (0, 3)
    assert [t.id for t in d.queued] == ["x/full-2-of-3", "x/full-3-of-3"]
    placed = p.assign()  # one H100 is free (y holds one, x's box continues with shard 1)
    assert [(a.task.id, a.box.accelerator) for a in placed] == [("x/full-2-of-3", "H100")]
    p.finished("y")
    assert [a.task.id for a in p.assign()] == ["x/full-3-of-3"]
    for task_id in ("x", "x/full-2-of-3", "x/full-3-of-3"):
        p.finished(task_id)
    assert p.free == {"a100": 1, "h100-0": 1, "h100-1": 1, "h100-2": 1}


def test_shards_are_capped_by_the_boxes_that_could_take_them_and_short_runs_stay_whole():
    p = Placement([Box("a", 1), Box("b", 1)], [g("x")], approval_window_s=600, shard_s=3600)
    p.assign()
    p.awaiting_approval("x", now=0)
    assert p.shards_for(g("x"), 100 * 3600) == 2 and p.shards_for(g("x"), 1800) == 1
    late = p.decided(g("x"), approved=True, now=10_000, full_s=100 * 3600)
    assert late.outcome == "queued" and late.here is None and len(late.queued) == 2


@pytest.mark.parametrize("n", [1, 7, 198, 35030])
def test_item_shards_cover_every_item_once(n):
    tasks = [Task(g("x"), TaskKind.FULL, None, i, 3) for i in range(3)]
    covered = [i for t in tasks for i in t.items(n)]
    assert covered == list(range(n))


def test_even_share_is_the_work_per_gpu():
    assert even_share_s([g("x", 6), g("y", 2, gpus=2)], [Box("a", 4), Box("b", 1)]) == (6 + 4) * 3600 / 5
    assert even_share_s([g("x", 6)], []) is None
