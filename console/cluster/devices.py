"""Device names: Ray's coarse accelerator label (for placement) and the exact device (for pairing).

Placement asks Ray for an accelerator *type* ("H100"); results pair a cell with a baseline only when both were
measured on the same *device* as reported by nvidia-smi ("NVIDIA H100 80GB HBM3"), because Ray's label puts an
H100 SXM (3.35 TB/s) and an H100 PCIe (2 TB/s) under one name and their tok/s differ.
"""

from __future__ import annotations

import re

NVIDIA_GPU_NAME_PATTERN = re.compile(r"\w+\s+((?:[A-Z]+\s+)*[A-Z0-9]*\d[A-Z0-9]*)")
"""Copied from ray 2.60.0 `ray/_private/accelerators/nvidia_gpu.py`: a node whose first GPU is named
"NVIDIA H100 80GB HBM3" gets the resource `accelerator_type:H100` (`_gpu_name_to_accelerator_type`)."""

_VENDOR = re.compile(r"^(nvidia|tesla|quadro)\b\s*", re.IGNORECASE)
UNKNOWN = ("", "none", "unknown")
NO_DEVICE = (*UNKNOWN, "cpu")


def accelerator_type(name: str | None) -> str | None:
    """Ray's `accelerator_type` label for a device as nvidia-smi reports it ("NVIDIA H100 80GB HBM3" → "H100")
    or as an experiment writes it ("H100 SXM" → "H100", "A100-SXM4-80GB" → "A100"); None for no GPU.

    Follows Ray's own rule (ray 2.60.0 `_gpu_name_to_accelerator_type`): the first upper-case model token with a
    digit; a name without the vendor word gets one first, so "H100 SXM" reads like nvidia-smi's "NVIDIA H100 …".
    """
    text = " ".join((name or "").split())
    if text.lower() in NO_DEVICE:
        return None
    if not _VENDOR.match(text):
        text = f"NVIDIA {text}"
    match = NVIDIA_GPU_NAME_PATTERN.match(text)
    label = match.group(1).replace(" ", "-") if match else None
    if label and len(label) > 1:
        return label
    cleaned = _VENDOR.sub("", text).strip()
    return cleaned.replace(" ", "-") or None


def device_key(name: str | None) -> str:
    """The exact device, for pairing: case and spacing folded, vendor word dropped ("" when unknown; a CPU-only
    run records "cpu", which is a device like any other).
    "NVIDIA H100 80GB HBM3" and "nvidia  h100 80gb hbm3" are one device; "NVIDIA H100 PCIe" is another."""
    text = " ".join((name or "").split())
    if text.lower() in UNKNOWN:
        return ""
    return _VENDOR.sub("", text).casefold()
