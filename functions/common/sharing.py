"""Which extended resource name the NVIDIA device plugin advertises for a shared device.

GPUPool renders the device plugin with `renameByDefault: true`, so every device it replicates
(time-slicing or MPS, whole GPUs or MIG instances) is advertised as `<name>.shared`. GPUPool's
capacity and InferenceService's resource requests both follow this one rule.
"""

from __future__ import annotations

GPU = "nvidia.com/gpu"


def replicated(resource: str, mode: str, oversubscribed: bool) -> bool:
    """Whether the device plugin replicates devices of `resource` in a pool of `mode`."""
    if mode in ("timeslice", "mps"):
        return resource == GPU
    return mode == "mig" and oversubscribed and resource != GPU


def advertised(resource: str, mode: str, oversubscribed: bool) -> str:
    return f"{resource}.shared" if replicated(resource, mode, oversubscribed) else resource
