"""Ray task options for a placed group (#15), and a local Ray that runs two one-slot groups at once, not three."""

from __future__ import annotations

import time

import pytest

from console.cluster.groups import GroupRequest
from console.cluster.placement import Task, TaskKind
from console.cluster.ray_tasks import GPU_SLOT, RayPolicy, TransientWorkerError, task_options, to_ray


def task(gpus: int = 2, accelerator: str | None = "H100", kind: TaskKind = TaskKind.MEASURE) -> Task:
    group = GroupRequest(key="k", label="m.fp8.mtp-k8", model="m.fp8", baseline=False, gpus=gpus,
                         accelerator=accelerator, cells=("c",))
    return Task(group, kind, accelerator)


def test_gpu_box_options():
    opts = task_options(task())
    assert opts["num_gpus"] == 2 and opts["accelerator_type"] == "H100" and "resources" not in opts
    assert opts["max_retries"] == 3 and opts["retry_exceptions"] == [TransientWorkerError]
    assert opts["name"] == "specdeck:measure:m.fp8.mtp-k8"


def test_slot_cluster_counts_gpus_in_a_custom_resource():
    opts = task_options(task(gpus=1, accelerator=None), RayPolicy(slot_resource=GPU_SLOT, max_retries=1))
    assert opts["num_gpus"] == 0 and opts["resources"] == {GPU_SLOT: 1} and "accelerator_type" not in opts
    assert opts["max_retries"] == 1


def test_late_full_run_asks_for_the_type_it_was_measured_on_and_pins_softly():
    opts = task_options(task(kind=TaskKind.FULL, accelerator=None), accelerator="A100", node_id="ab" * 28)
    assert opts["accelerator_type"] == "A100" and opts["name"].startswith("specdeck:full:")
    assert opts["scheduling_strategy"] == ("node_affinity", "ab" * 28)


def test_options_pass_rays_own_validator():
    ray_option_utils = pytest.importorskip("ray._common.ray_option_utils", reason="the `cluster` extra (ray) is "
                                           "not installed: pip install 'specdeck[cluster]'")
    for opts in (task_options(task()), task_options(task(1, None), RayPolicy(slot_resource=GPU_SLOT)),
                 task_options(task(), node_id="ab" * 28)):
        ray_option_utils.validate_task_options(to_ray(opts), in_options=True)
    bad = {**task_options(task()), "resources": {"GPU": 1}}
    with pytest.raises(ValueError, match="num_gpus"):
        ray_option_utils.validate_task_options(bad, in_options=True)


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray", reason="the `cluster` extra (ray) is not installed: "
                              "pip install 'specdeck[cluster]'")
    # address="local": a new local instance even when RAY_ADDRESS points at a real cluster (ray.init docstring)
    ray.init(address="local", num_cpus=2, resources={GPU_SLOT: 2}, include_dashboard=False,
             object_store_memory=80 * 2**20, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


def test_two_one_slot_groups_run_together_and_a_third_waits(local_ray):
    ray = local_ray

    @ray.remote
    def group_task(hold_s: float) -> tuple[float, float]:
        start = time.time()
        time.sleep(hold_s)
        return start, time.time()

    policy = RayPolicy(slot_resource=GPU_SLOT, num_cpus=0)  # only the slots limit concurrency
    opts = to_ray(task_options(task(gpus=1, accelerator=None), policy))
    refs = [group_task.options(**opts).remote(4.0) for _ in range(3)]
    spans = sorted(ray.get(refs, timeout=120))
    (s1, e1), (s2, e2), (s3, _e3) = spans
    assert s2 < e1 and s1 < e2, f"the first two did not overlap: {spans}"
    assert s3 >= min(e1, e2) - 0.05, f"the third started before a slot was free: {spans}"
