"""A non-editable install works: build the wheel, install it into a fresh venv (no source checkout in sight)
and run `specdeck validate` on the demo experiment shipped inside it.

The venv sees the shared environment's site-packages through a .pth line, for the dependencies only: that
line adds the directory to sys.path after the venv's own site-packages and does not run its .pth files, so the
shared editable install of specdeck is not picked up; the test checks that `console` comes from the wheel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "setup.py", "README.md", "console", "widgets", "experiments")


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess[str]:  # noqa: ANN003
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)
    assert out.returncode == 0, f"{' '.join(cmd)}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


def test_a_wheel_install_validates_the_shipped_demo(tmp_path) -> None:
    src = tmp_path / "src"  # a copy: building in the checkout would leave build/ and *.egg-info behind
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(ROOT / name, src / name)
    dist = tmp_path / "dist"
    run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation", "-q", "-w", str(dist)])
    wheel = next(dist.glob("specdeck-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    shipped = sorted(n for n in names if n.startswith("console/bundled_experiments/"))
    assert shipped == sorted(f"console/bundled_experiments/{p.name}" for p in (ROOT / "experiments").glob("*.toml"))
    assert "console/evals/data/toy_mcq.jsonl" in names  # what the demo's benchmarks read

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    py = venv / "bin" / "python"
    run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", "-q", str(wheel)])
    site = Path(run([str(py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).stdout.strip())
    (site / "zz_shared_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    where = run([str(py), "-c", "import console, console.examples as e; print(console.__file__); "
                 "print(e.demo_experiment())"], cwd=tmp_path, env=env).stdout.split()
    assert all(Path(p).is_relative_to(site) for p in where), where  # the wheel's code and its demo
    out = run([str(venv / "bin" / "specdeck"), "validate", where[1]], cwd=tmp_path, env=env)
    assert "demo.toml: valid — experiment 'demo'" in out.stdout, out.stdout
