"""Packages for setuptools (everything else is in pyproject.toml).

The example experiments are shipped as the package `console.bundled_experiments`, mapped onto the top-level
`experiments/` folder: the wheel gets a copy made at build time, the repository keeps one
(console/examples.py finds them either way; tests/unit/test_wheel_install.py builds and installs a wheel).
"""

from setuptools import find_namespace_packages, setup

setup(
    # namespace packages too: data folders without an __init__.py (console/evals/data, console/bench/data)
    packages=[*find_namespace_packages(include=["console", "console.*", "widgets", "widgets.*"]),
              "console.bundled_experiments"],
    package_dir={"console.bundled_experiments": "experiments"},
)
