"""Ray task options for a placed group (#15), and a local Ray that runs two one-slot groups at once, not three."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

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
    for attempt in (1, 2):  # Ray gives its raylet a fixed 30 s (ray/_private/node.py): a loaded box can miss it
        try:
            # address="local": a new local instance even when RAY_ADDRESS names a real cluster (ray.init docstring)
            ray.init(address="local", num_cpus=2, resources={GPU_SLOT: 2}, include_dashboard=False,
                     object_store_memory=80 * 2**20, log_to_driver=False, configure_logging=False)
            break
        except Exception as exc:  # noqa: BLE001 - Ray raises a bare Exception for this
            ray.shutdown()
            if attempt == 2 or "timed out during startup" not in str(exc):
                raise
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


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


def test_a_worker_killed_mid_phase_is_retried_with_nothing_redone_and_no_orphan(local_ray, tmp_path):
    """The fault semantics the executor relies on, on Ray itself: the task's worker dies after committing two
    of five items; Ray re-runs it (max_retries), the retry skips what the head's sink holds, and the "server"
    the dead worker started in its own session (as specdeck starts vLLM) does not survive it: its guard stops it
    (Ray's own cleanup does not reach a server in another session)."""
    ray = local_ray

    @ray.remote(num_cpus=0)
    class Sink:  # stands in for the head's event sink
        def __init__(self) -> None:
            self.items: list[int] = []
            self.attempts = 0

        def attempt(self) -> int:
            self.attempts += 1
            return self.attempts

        def commit(self, item: int) -> None:
            self.items.append(item)

        def state(self) -> tuple[int, list[int]]:
            return self.attempts, list(self.items)

    @ray.remote
    def group_task(sink, folder: str) -> int:
        attempt = ray.get(sink.attempt.remote())
        from console.cluster.guard import start_guard

        server = subprocess.Popen(["sleep", "600"], start_new_session=True)
        start_guard(server.pid, grace_s=2, log_path=Path(folder, f"guard.{attempt}.log"))
        Path(folder, f"server.{attempt}").write_text(str(server.pid))
        done = set(ray.get(sink.state.remote())[1])
        for item in range(5):
            if item in done:
                continue
            ray.get(sink.commit.remote(item))
            if attempt == 1 and item == 1:
                os._exit(1)  # the worker dies mid-phase: no finally, no atexit
        os.killpg(server.pid, signal.SIGTERM)
        server.wait()
        return attempt

    sink = Sink.remote()
    opts = to_ray(task_options(task(gpus=1, accelerator=None), RayPolicy(slot_resource=GPU_SLOT, num_cpus=0,
                                                                         max_retries=2)))
    pids: list[int] = []
    try:
        assert ray.get(group_task.options(**opts).remote(sink, str(tmp_path)), timeout=180) == 2
        attempts, items = ray.get(sink.state.remote())
        assert attempts == 2 and items == [0, 1, 2, 3, 4]  # committed once each: none lost, none redone
        pids = [int(p.read_text()) for p in sorted(tmp_path.glob("server.*"))]
        log = tmp_path / "guard.1.log"

        def reaped() -> bool:  # the guard writes its line after the group is gone
            return not _alive(pids[0]) and log.exists() and "died: stopped group" in log.read_text()

        deadline = time.monotonic() + 30
        while not reaped() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not _alive(pids[0]), "the dead worker's server survived it (orphan)"
        assert reaped(), log.read_text() if log.exists() else "no guard log"
    finally:
        for pid in pids:
            if _alive(pid):
                os.killpg(pid, signal.SIGKILL)


def stand_in_worker(job, inbox) -> dict:
    """`worker_task` with the runner tests' stand-in phases and servers; attempt "m.bf16.ar#1" dies (os._exit,
    as a SIGKILL or an OOM kill would end it) right after the head received its 9th scored item."""
    import ray

    from console.cluster.worker import run_group
    from tests.unit.test_runner import FakeAdapter, FakePhases, FakePool

    items = [0]

    def ship(d: dict) -> None:
        ray.get(inbox.put.remote(d))
        if d.get("kind") == "eval_item":
            items[0] += 1
            if job.attempt == "m.bf16.ar#1" and items[0] == 9:
                os._exit(1)

    return run_group(job, ship, lambda: list(ray.get(inbox.decisions_for.remote(job.attempt))),
                     FakePhases(FakeAdapter("right")), FakePool())


def test_the_head_on_ray_resubmits_a_worker_that_died_and_keeps_what_it_shipped(local_ray, write_toml, tmp_path):
    """The executor on a real local Ray: two groups on two slots; the ar group's worker process dies mid full run
    (Ray reports WorkerCrashedError), the head re-submits it with the facts it holds, and the run ends with every
    item committed once."""
    from console.cluster.executor import ClusterRunner
    from console.cluster.ray_backend import RayBackend
    from console.cluster.worker import GroupJob
    from console.experiment.loader import load_experiment
    from console.run.runner import RunOptions
    from console.run.store import Store
    from tests.unit.test_runner import EXP, FakeAdapter, FakePhases

    exp = load_experiment(write_toml(EXP))
    job = GroupJob(run_id="", attempt="", experiment_text=exp.path.read_text(), origin_dir=str(exp.base_dir),
                   cell_ids=(), facts={}, work_dir=str(tmp_path / "workers"))
    events: list = []
    head = ClusterRunner(exp, tmp_path / "run", FakePhases(FakeAdapter("right")),
                         RunOptions(poll_s=0.05, yes_after_smoke=True, approval_window_s=60.0),
                         RayBackend(stand_in_worker), policy=RayPolicy(slot_resource=GPU_SLOT, num_cpus=0),
                         job=job, on_event=events.append)
    states = head.run()
    assert set(states.values()) == {"done"}, states
    died = [e.detail for e in events if getattr(e, "phase", "") == "cluster" and "died" in e.detail]
    assert len(died) == 1 and "m.bf16.ar#1 died (WorkerCrashedError" in died[0], died
    store = Store(tmp_path / "run" / "state.sqlite")
    for cell in ("m.bf16.ar.short.c1", "m.bf16.dm.short.c1"):
        ids = [i["item_id"] for i in store.items(cell, "mcq", "full")]
        assert sorted(ids) == sorted({f"q{i}" for i in range(12)}), ids  # all 12, once each
    assert store.documents("m.bf16.ar.short.c1")["placement"]["where"]["attempt"] == "m.bf16.ar#2"
