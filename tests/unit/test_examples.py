"""The example experiments are found without a source checkout's layout (see also test_wheel_install.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from console import examples

ROOT = Path(__file__).resolve().parents[2]


def test_a_source_checkout_uses_the_top_level_folder() -> None:
    assert examples.bundled_experiments() == ROOT / "experiments"
    assert examples.demo_experiment() == ROOT / "experiments" / "demo.toml"


def test_an_installed_copy_is_preferred_and_a_missing_one_names_the_fix(tmp_path, monkeypatch) -> None:
    packaged = tmp_path / "site-packages" / "console" / "experiments"
    packaged.mkdir(parents=True)
    (packaged / "demo.toml").write_text("")
    monkeypatch.setattr(examples, "PACKAGED", packaged)
    assert examples.demo_experiment() == packaged / "demo.toml"
    monkeypatch.setattr(examples, "PACKAGED", tmp_path / "nowhere")
    monkeypatch.setattr(examples, "SOURCE", tmp_path / "nowhere-either")
    with pytest.raises(FileNotFoundError, match="reinstall specdeck"):
        examples.bundled_experiments()


def test_the_picker_lists_the_operators_own_folder_first(tmp_path) -> None:
    assert examples.experiments_dir(tmp_path) == examples.bundled_experiments()
    (tmp_path / "experiments").mkdir()
    assert examples.experiments_dir(tmp_path) == tmp_path / "experiments"


def test_the_demo_command_finds_its_experiment_and_prompts_without_a_checkout(monkeypatch, tmp_path) -> None:
    from console.commands import demo

    words = demo.prompt_words()
    assert len(words) > 500
    monkeypatch.setattr(examples, "SOURCE", tmp_path / "experiments")  # no README beside it: the corpus
    assert len(demo.prompt_words()) > 500 and demo.prompt_words() != words
