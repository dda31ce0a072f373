"""The on-disk cache of lm-eval's task registry (console/preflight/lmeval_tasks.py): a new process answers from
it without reading the task files or importing lm_eval.tasks, and a changed registry is never answered from it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from console.preflight import lmeval_tasks as lt

GROUP = "group: toygroup\ntask:\n  - toy_a\n  - toy_b\n"
TASK = "task: {name}\ndataset_path: json\noutput_type: generate_until\ndoc_to_text: q\ndoc_to_target: a\n"


def forget_this_process() -> None:
    """What a new process starts with: nothing in memory."""
    lt.definitions.cache_clear()
    lt._task_cache.cache_clear()
    lt.cache_key.cache_clear()


@pytest.fixture
def registry(tmp_path, monkeypatch) -> Path:
    """A small installed registry (a group of two tasks) standing in for lm_eval/tasks."""
    root = tmp_path / "site" / "lm_eval" / "tasks"
    (root / "toy").mkdir(parents=True)
    (root / "toy" / "_toygroup.yaml").write_text(GROUP)
    for name in ("toy_a", "toy_b"):
        (root / "toy" / f"{name}.yaml").write_text(TASK.format(name=name))
    monkeypatch.setattr(lt, "tasks_root", lambda: root)
    monkeypatch.setattr(lt, "lmeval_version", lambda: "0.4.13")
    monkeypatch.setenv("SPECDECK_CACHE_DIR", str(tmp_path / "cache"))
    forget_this_process()
    yield root
    forget_this_process()


def refuse_to_read(monkeypatch) -> None:
    def refused(*_a, **_k):
        raise AssertionError("read the task files although the cache had the answer")
    monkeypatch.setattr(lt, "scan_definitions", refused)
    monkeypatch.setattr(lt, "_index", refused)


def test_a_new_process_answers_from_the_cache_without_reading_the_task_files(registry, monkeypatch, tmp_path):
    first = lt.find_task("toygroup")
    assert first.kind == "group" and [leaf.name for leaf in first.leaves] == ["toy_a", "toy_b"]
    assert first.output_types == {"generate_until"}
    assert list((tmp_path / "cache" / "lmeval-tasks").glob("0.4.13-*.json"))
    forget_this_process()
    refuse_to_read(monkeypatch)
    again = lt.find_task("toygroup")
    assert again == first  # same kind, leaves, output types, datasets and YAML paths
    assert lt.find_task("toy_b") == TaskInfoOf(first, "toy_b")
    assert "toy_a" in lt.definitions(registry)  # the names too (preflight's "did you mean")


def TaskInfoOf(group: lt.TaskInfo, name: str) -> lt.TaskInfo:  # noqa: N802
    leaf = next(leaf for leaf in group.leaves if leaf.name == name)
    return lt.TaskInfo(name, "task", (leaf,))


def test_a_task_file_added_or_a_new_version_is_never_answered_from_the_old_cache(registry, monkeypatch):
    assert lt.find_task("toy_c").kind == "missing"
    (registry / "toy" / "toy_c.yaml").write_text(TASK.format(name="toy_c"))
    os.utime(registry / "toy", ns=(1, 10**18))  # the folder's mtime moves (coarse clocks: be sure)
    forget_this_process()
    assert lt.find_task("toy_c").kind == "task"
    monkeypatch.setattr(lt, "lmeval_version", lambda: "0.4.14")
    forget_this_process()
    refuse_to_read(monkeypatch)
    with pytest.raises(AssertionError, match="read the task files"):
        lt.find_task("toy_c")  # another lm-eval: looked up afresh


def test_an_include_path_is_never_cached(registry, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "toy_a.yaml").write_text(TASK.format(name="toy_a").replace("generate_until", "multiple_choice"))
    assert lt.find_task("toy_a", mine).output_types == {"multiple_choice"}  # the operator's folder wins
    (mine / "toy_a.yaml").write_text(TASK.format(name="toy_a"))  # edited in place: its mtime may not move
    lt.definitions.cache_clear()
    assert lt.find_task("toy_a", mine).output_types == {"generate_until"}
    assert lt.find_task("toy_a").output_types == {"generate_until"}


def test_a_damaged_cache_file_is_ignored_and_rewritten(registry, tmp_path):
    lt.find_task("toy_a")
    path, = (tmp_path / "cache" / "lmeval-tasks").glob("*.json")
    path.write_text("{ half")
    forget_this_process()
    assert lt.find_task("toy_a").kind == "task"
    assert path.read_text().startswith("{\"names\"")


def test_task_files_found_through_another_path_to_the_same_venv_still_exist(registry, monkeypatch, tmp_path):
    """A venv reached through a symlink (a worktree's `.venv`) fills the cache; once that path is gone, another
    process reaching the venv directly must get task files that exist (the ifeval punkt_tab check reads them).
    Format 1 kept the first absolute paths: ifeval's helpers were then 'not there' and the check passed."""
    link = tmp_path / "linked-venv"
    link.symlink_to(registry.parents[1], target_is_directory=True)
    via_link = link / "lm_eval" / "tasks"
    monkeypatch.setattr(lt, "tasks_root", lambda: via_link)
    assert lt.find_task("toy_a").leaves[0].yaml_path == via_link / "toy" / "toy_a.yaml"
    link.unlink()
    forget_this_process()
    monkeypatch.setattr(lt, "tasks_root", lambda: registry)
    refuse_to_read(monkeypatch)  # same fingerprint (the resolved root): answered from the cache
    leaf = lt.find_task("toy_a").leaves[0]
    assert leaf.yaml_path == registry / "toy" / "toy_a.yaml" and leaf.yaml_path.is_file()
