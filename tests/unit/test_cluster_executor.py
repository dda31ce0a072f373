"""The head and its workers (#15) without Ray: workers in threads with the runner tests' stand-in phases and
servers, shipping their records to the head as a Ray task ships them to the inbox actor. What the head's run
folder holds must be what a local run of the same experiment holds, plus where each group ran; a worker that
dies mid-phase is re-submitted with nothing lost, duplicated or redone."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from console.cluster.executor import ClusterRunner
from console.cluster.where import placement
from console.cluster.worker import GroupJob, run_group
from console.experiment.loader import load_experiment
from console.run.runner import Runner, RunOptions
from console.run.store import Store
from tests.unit.test_runner import EXP, FakeAdapter, FakePhases, FakePool


class Died(BaseException):
    """A worker process dying (no `except Exception` in the runner catches it, as none survives a SIGKILL)."""


class ThreadBackend:
    """`Backend` with each attempt in a thread; `die_after` = {attempt: n}: that attempt dies right after the head
    received its n-th scored item."""

    def __init__(self, adapter: Any, die_after: dict[str, int] | None = None) -> None:
        self.adapter = adapter
        self.die_after = die_after or {}
        self.lock = threading.Lock()
        self.records: list[dict[str, Any]] = []
        self.mail: dict[str, list[dict[str, Any]]] = {}
        self.ended: list[tuple[str, str | None, str]] = []
        self.pools: dict[str, FakePool] = {}
        self.jobs: list[GroupJob] = []

    def submit(self, job: GroupJob, options: dict[str, Any]) -> None:
        self.jobs.append(job)
        pool = self.pools[job.attempt] = FakePool()
        items = [0]

        def ship(d: dict[str, Any]) -> None:
            with self.lock:
                self.records.append(d)
                if d.get("kind") == "eval_item":
                    items[0] += 1
                    if items[0] == self.die_after.get(job.attempt):
                        raise Died

        def fetch() -> list[dict[str, Any]]:
            with self.lock:
                return self.mail.pop(job.attempt, [])

        def go() -> None:
            try:
                run_group(job, ship, fetch, FakePhases(self.adapter), pool)
                self.ended.append((job.attempt, None, ""))
            except Died:
                self.ended.append((job.attempt, "crashed", "WorkerCrashedError: the worker died"))

        threading.Thread(target=go, daemon=True).start()

    def take(self) -> list[dict[str, Any]]:
        with self.lock:
            out, self.records = self.records, []
        return out

    def forward(self, attempt: str, decisions: list[dict[str, Any]]) -> None:
        with self.lock:
            self.mail.setdefault(attempt, []).extend(decisions)

    def finished(self) -> list[tuple[str, str | None, str]]:
        out, self.ended = self.ended, []
        return out

    def close(self) -> None:
        pass


@pytest.fixture
def exp(write_toml):
    return load_experiment(write_toml(EXP))


def head(exp, run_dir: Path, backend: ThreadBackend, tmp_path: Path, **opts) -> ClusterRunner:
    opts.setdefault("approval_window_s", 0.0)
    job = GroupJob(run_id="", attempt="", experiment_text=exp.path.read_text(), origin_dir=str(exp.base_dir),
                   cell_ids=(), facts={}, work_dir=str(tmp_path / "workers"))
    return ClusterRunner(exp, run_dir, FakePhases(backend.adapter), RunOptions(poll_s=0.02, **opts), backend,
                         job=job)


def facts(run_dir: Path) -> dict[str, Any]:
    store = Store(run_dir / "state.sqlite")
    cells = {r.cell_id: (r.state.value, r.reason) for r in store.cells()}
    items = {(c, b, s, d["item_id"], d["correct"]) for c, b, s, _ in store.eval_results()
             for d in store.items(c, b, s)}
    results = {(c, b, s): {k: v for k, v in d.items() if k not in ("wall_s",)} for c, b, s, d in store.eval_results()}
    out = {"cells": cells, "items": items, "results": results, "verdicts": sorted(store.verdicts(), key=lambda v: (v[0], v[1])),
           "speed": sorted((m[0], m[3]["tok_s"]) for m in store.measurements(kind="speed"))}
    store.close()
    return out


def kinds(run_dir: Path) -> Counter[str]:
    import json

    return Counter(json.loads(line)["kind"] for line in (run_dir / "events.jsonl").read_text().splitlines())


def test_the_head_holds_what_a_local_run_holds_plus_where_each_group_ran(exp, tmp_path) -> None:
    local = Runner(exp, tmp_path / "local", FakePhases(FakeAdapter("right")),
                   RunOptions(poll_s=0.02, yes_after_smoke=True, approval_window_s=0.0), pool=FakePool())
    local_states = local.run()
    backend = ThreadBackend(FakeAdapter("right"))
    cluster = head(exp, tmp_path / "ray", backend, tmp_path, yes_after_smoke=True, approval_window_s=30.0)
    states = cluster.run()
    assert states == local_states and set(states.values()) == {"done"}
    assert facts(tmp_path / "ray") == facts(tmp_path / "local")
    # two serving configs → two worker attempts, one server start each, each cell's node recorded
    assert sorted(j.attempt for j in backend.jobs) == ["m.bf16.ar#1", "m.bf16.dm#1"]
    assert all(p.starts == 1 for p in backend.pools.values())
    store = Store(tmp_path / "ray" / "state.sqlite")
    for cell in states:
        where = placement(store, cell)
        assert where["host"] and where["attempt"] == cell.rsplit(".short", 1)[0] + "#1"
    # the same events as a local run (the head's own lifecycle once, no worker's), in one events.jsonl
    ray_kinds, local_kinds = kinds(tmp_path / "ray"), kinds(tmp_path / "local")
    for kind in ("cell_state", "eval_item", "eval_result", "smoke_verdict", "approval_requested", "server_busy"):
        assert ray_kinds[kind] == local_kinds[kind], kind
    assert ray_kinds["run_started"] == ray_kinds["run_finished"] == 1
    # the console reads the run folder and names each cell's node in the cell view's head
    from console.app.cellview import head_text
    from console.app.runview import CellInfo, RunModel
    from console.app.watcher import RunWatcher

    watcher = RunWatcher(tmp_path / "ray", RunModel([CellInfo.from_cell(c) for c in exp.cells], run_dir=tmp_path / "ray"))
    snap, _ = watcher.poll(force=True)
    watcher.close()
    assert snap is not None and all(c.node and f"on {c.node}" in head_text(c) for c in snap.cells)
    # the workers' cell folders came back: the run folder has a single-box run's layout
    layout = [{p.relative_to(d) for p in (d / "cells").rglob("*")} for d in (tmp_path / "local", tmp_path / "ray")]
    assert layout[0] and layout[0] == layout[1]


def test_a_worker_dying_mid_full_run_is_resubmitted_and_nothing_is_lost_duplicated_or_redone(exp, tmp_path) -> None:
    adapter = FakeAdapter("right")
    # the ar group's first attempt dies after the head received 5 smoke + 4 full items
    backend = ThreadBackend(adapter, die_after={"m.bf16.ar#1": 9})
    cluster = head(exp, tmp_path / "ray", backend, tmp_path, yes_after_smoke=True, approval_window_s=30.0)
    states = cluster.run()
    assert set(states.values()) == {"done"}
    assert sorted(j.attempt for j in backend.jobs) == ["m.bf16.ar#1", "m.bf16.ar#2", "m.bf16.dm#1"]
    got = facts(tmp_path / "ray")
    per_stage = Counter((c, s) for c, _b, s, _i, _ok in got["items"])
    assert per_stage[("m.bf16.ar.short.c1", "smoke")] == 5 and per_stage[("m.bf16.ar.short.c1", "full")] == 12
    # every item scored once over both attempts (2 groups × (5 smoke + 12 full)): none redone
    assert adapter.calls == 2 * (5 + 12)
    retry = next(j for j in backend.jobs if j.attempt == "m.bf16.ar#2")
    handed = Counter((e["kind"], e.get("stage")) for e in retry.facts["events"])
    assert handed[("eval_item", "full")] == 4  # the retry started from the head's facts
    assert handed[("speed_result", None)], "the speed measured by the dead attempt was handed to the retry"
    assert backend.pools["m.bf16.ar#2"].starts == 1


def test_an_approval_in_the_window_reaches_the_worker_and_a_late_one_is_a_new_task(exp, tmp_path) -> None:
    backend = ThreadBackend(FakeAdapter("right"))
    cluster = head(exp, tmp_path / "ray", backend, tmp_path, approval_window_s=30.0, cells="m.bf16.ar.*")
    store = Store(tmp_path / "ray" / "state.sqlite")
    done: dict[str, str] = {}
    thread = threading.Thread(target=lambda: done.update(cluster.run()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        rows = {r.cell_id: r.state.value for r in store.cells()}
        if rows.get("m.bf16.ar.short.c1") == "awaiting_approval":
            break
        time.sleep(0.05)
    assert rows.get("m.bf16.ar.short.c1") == "awaiting_approval", rows
    store.decide("m.bf16.ar.short.c1", "approve", "alice")  # the operator, on the head
    thread.join(30)
    assert done["m.bf16.ar.short.c1"] == "done"
    assert [j.attempt for j in backend.jobs] == ["m.bf16.ar#1"]  # in the window: the same worker, warm server
    assert backend.pools["m.bf16.ar#1"].starts == 1
    assert any(d.who == "alice" and d.consumed for d in store.decisions())


def test_ray_missing_or_unreachable_is_one_clear_error_naming_the_fix(monkeypatch) -> None:
    import sys

    from console.cluster.ray_backend import ClusterUnavailable, connect, import_ray

    with monkeypatch.context() as m:
        m.setitem(sys.modules, "ray", None)  # the `cluster` extra not installed
        with pytest.raises(ClusterUnavailable, match=r"pip install 'specdeck\[cluster\]'"):
            import_ray()
    pytest.importorskip("ray")
    t0 = time.monotonic()
    with pytest.raises(ClusterUnavailable, match="no Ray cluster answers at '127.0.0.1:1'.*ray start --head"):
        connect("127.0.0.1:1")  # ray.init alone retries such an address for minutes
    assert time.monotonic() - t0 < 30


@pytest.mark.parametrize(("text", "problem"), [
    ('address = "my cluster"', "cluster.address: must be auto, local, HOST:PORT or ray://HOST:PORT"),
    ("local_slots = 0", "cluster.local_slots: must be > 0"),
    ('path_map = { "models" = "/mnt/models" }', "cluster.path_map: maps absolute paths to absolute paths"),
    ("slots = 2", "cluster.slots: unknown key `slots`; did you mean `local_slots`?"),
])
def test_the_cluster_table_is_checked_with_its_line(write_toml, text, problem) -> None:
    from console.experiment.loader import SpecError

    path = write_toml(EXP + f"[cluster]\nmax_retries = 2\n{text}\n")
    line = len(EXP.splitlines()) + 3
    with pytest.raises(SpecError) as err:
        load_experiment(path)
    assert [str(p).split(": ", 1)[1] for p in err.value.problems if f":{line}:" in str(p)][0].startswith(problem)


def test_a_worker_maps_head_paths_to_its_node() -> None:
    from console.cluster.worker import map_path

    table = {"/home/me/models": "/mnt/models", "/home/me": "/srv/me"}
    assert map_path("/home/me/models/tiny", table) == "/mnt/models/tiny"
    assert map_path("/home/me/exp", table) == "/srv/me/exp"
    assert map_path("/home/meg/x", table) == "/home/meg/x" and map_path(None, table) is None


def test_a_resumed_head_continues_on_new_workers_from_its_store(exp, tmp_path) -> None:
    """`specdeck resume RUN --ray`: a new head on the same run folder hands each group's facts to new workers;
    what the first head holds (speeds, smoke items) is not measured again."""
    adapter = FakeAdapter("right")
    first = ThreadBackend(adapter)
    assert set(head(exp, tmp_path / "ray", first, tmp_path, until="smoke").run().values()) == {"smoke_passed", "done"}
    assert adapter.calls == 2 * 5
    second = ThreadBackend(adapter)
    states = head(exp, tmp_path / "ray", second, tmp_path, yes_after_smoke=True, approval_window_s=30.0).run()
    assert set(states.values()) == {"done"}
    assert adapter.calls == 2 * (5 + 12)  # the full runs only: no smoke item scored twice
    assert all(any(e["kind"] == "speed_result" for e in j.facts["events"]) for j in second.jobs)
    # the head asked for the approvals itself (no server needed): one full-run task per group, one start each
    assert sorted(j.attempt for j in second.jobs) == ["m.bf16.ar#1", "m.bf16.dm#1"]
    assert all(p.starts == 1 for p in second.pools.values())


def test_bare_ray_joins_this_machines_cluster_or_starts_a_local_one(monkeypatch) -> None:
    """#15: `--ray` without an address starts a local Ray on this machine, unless the machine already belongs to
    a Ray cluster (RAY_ADDRESS, or a `ray start` that still answers); `[cluster] address` wins when written."""
    services = pytest.importorskip("ray._private.services", reason="the `cluster` extra (ray) is not installed")

    from console.cluster import ray_backend

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(services, "find_bootstrap_address", lambda temp_dir: None)
    assert ray_backend.default_address() == "local"
    monkeypatch.setattr(services, "find_bootstrap_address", lambda temp_dir: "127.0.0.1:1")  # recorded, gone
    assert ray_backend.default_address() == "local"
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    assert ray_backend.default_address() == "auto"
    from console.experiment.schema import Cluster

    assert "address" not in Cluster().model_fields_set  # no address written: start_head asks default_address()
    assert "address" in Cluster(address="auto").model_fields_set
