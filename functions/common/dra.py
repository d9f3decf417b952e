"""Dynamic Resource Allocation: what the NVIDIA DRA driver announces and the claims it consumes.

Follows kubernetes-sigs/dra-driver-nvidia-gpu at release v25.12.0 (commit 0882da87), read from its
published source, not imported:

- DeviceClasses `gpu.nvidia.com` (whole GPUs, `type == 'gpu'`) and `mig.nvidia.com` (MIG devices,
  `type == 'mig'`): deployments/helm/nvidia-dra-driver-gpu/templates/deviceclass-{gpu,mig}.yaml;
- device attributes in the `gpu.nvidia.com` domain (`type`, `productName`, `profile`, ...) and
  capacity `memory`: cmd/gpu-kubelet-plugin/{partitions.go,deviceinfo.go};
- the opaque configuration `resource.nvidia.com/v1beta1` `GpuConfig` / `MigDeviceConfig` with
  `sharing.strategy` TimeSlicing or MPS: api/nvidia.com/resource/v1beta1/{api.go,gpuconfig.go,
  migconfig.go,sharing.go};
- feature gates (TimeSlicingSettings, MPSSupport, DynamicMIG: alpha, off by default):
  pkg/featuregates/featuregates.go.

Objects use `resource.k8s.io/v1` (GA since Kubernetes 1.34).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from functions.common.api.gpupool import GPUPoolSpec

DRIVER_RELEASE = "v25.12.0"
DRIVER = "gpu.nvidia.com"  # the driver name and its attribute domain
RESOURCE_API = "resource.k8s.io/v1"
CONFIG_API = "resource.nvidia.com/v1beta1"
GPU_CLASS = "gpu.nvidia.com"
MIG_CLASS = "mig.nvidia.com"
REQUEST = "gpu"  # the one request of every claim, and the pod's claim name

FEATURE_GATES = {
    "exclusive": (),
    "mig": (),
    "mps": ("MPSSupport",),
    "timeslice": ("TimeSlicingSettings",),
}


def _attribute(name: str) -> str:
    return f"device.attributes['{DRIVER}'].{name}"


def product_selector(products: tuple[str, ...]) -> str:
    """CEL matching the driver's `productName` (NVML's name, with spaces) against the catalog's
    GPU feature discovery spellings, which are the same name with spaces turned into dashes."""
    listed = ", ".join(f"'{p}'" for p in sorted(products))
    return f"{_attribute('productName')}.replace(' ', '-') in [{listed}]"


def profile_selector(profile: str) -> str:
    return f"{_attribute('profile')} == '{profile}'"


@dataclass(frozen=True)
class Claim:
    """The device request of one replica (a template) or of all replicas together (shared)."""

    device_class: str
    count: int
    selectors: tuple[str, ...]
    config: dict[str, Any] | None = None  # the driver's opaque parameters
    shared: bool = False  # one ResourceClaim for every replica (MPS, time-slicing)
    warnings: tuple[str, ...] = field(default=())

    def devices(self) -> dict[str, Any]:
        exactly: dict[str, Any] = {
            "deviceClassName": self.device_class,
            "selectors": [{"cel": {"expression": s}} for s in self.selectors],
            "allocationMode": "ExactCount",
            "count": self.count,
        }
        out: dict[str, Any] = {"requests": [{"name": REQUEST, "exactly": exactly}]}
        if self.config is not None:
            out["config"] = [
                {"requests": [REQUEST], "opaque": {"driver": DRIVER, "parameters": self.config}}
            ]
        return out


def sharing_config(pool: GPUPoolSpec) -> dict[str, Any] | None:
    """The driver's GpuConfig / MigDeviceConfig for the pool's sharing mode, or None (exclusive
    and MIG devices need none)."""
    mode = pool.sharing.mode
    settings = pool.dra
    if mode == "timeslice":
        sharing: dict[str, Any] = {"strategy": "TimeSlicing"}
        if settings is not None and settings.timeSlicingInterval is not None:
            sharing["timeSlicingConfig"] = {"interval": settings.timeSlicingInterval}
        return {"apiVersion": CONFIG_API, "kind": "GpuConfig", "sharing": sharing}
    if mode == "mps":
        sharing = {"strategy": "MPS"}
        mps = settings.mps if settings is not None else None
        if mps is not None:
            limits: dict[str, Any] = {}
            if mps.activeThreadPercentage is not None:
                limits["defaultActiveThreadPercentage"] = mps.activeThreadPercentage
            if mps.pinnedMemoryLimit is not None:
                limits["defaultPinnedDeviceMemoryLimit"] = mps.pinnedMemoryLimit
            if limits:
                sharing["mpsConfig"] = limits
        return {"apiVersion": CONFIG_API, "kind": "GpuConfig", "sharing": sharing}
    return None


def claim(
    pool: GPUPoolSpec, mode: str, count: int, products: tuple[str, ...], profile: str | None
) -> Claim:
    """What one replica requests from a DRA pool (`count` and `products` as placement decided)."""
    selectors = [product_selector(products)] if products else []
    if mode == "mig":
        assert profile is not None  # enforced by the InferenceService schema
        return Claim(MIG_CLASS, count, (*selectors, profile_selector(profile)))
    if mode in ("mps", "timeslice"):
        return Claim(
            GPU_CLASS,
            count,
            tuple(selectors),
            sharing_config(pool),
            shared=True,
            warnings=(
                f"allocation dra with sharing {mode}: the driver ({DRIVER_RELEASE}) shares a GPU "
                "only among the pods of one ResourceClaim, so every replica of this service uses "
                "the same claimed GPU (on one node) and no GPU is shared with other services",
            ),
        )
    return Claim(GPU_CLASS, count, tuple(selectors))


def pool_warnings(pool: GPUPoolSpec) -> list[str]:
    """What a DRA pool's spec asks for that the driver does not do the same way."""
    out: list[str] = []
    mode = pool.sharing.mode
    if pool.oversubscription.enabled:
        out.append(
            f"oversubscription has no DRA equivalent in the NVIDIA driver {DRIVER_RELEASE} (a "
            "device is allocated to one ResourceClaim; sharing happens among that claim's pods): "
            f"ratio {pool.oversubscription.ratio} is not applied"
        )
    gates = FEATURE_GATES[mode]
    if mode == "mig" and pool.dra is not None and pool.dra.dynamicMig:
        out.append(
            "dra.dynamicMig: the driver creates MIG devices on demand only with its alpha "
            f"DynamicMIG feature gate (off by default in {DRIVER_RELEASE}; it excludes MPSSupport "
            "and NVMLDeviceHealthCheck); without it, claims for MIG profiles stay unallocated"
        )
    elif mode == "mig":
        out.append(
            "allocation dra with static MIG: the pool renders no mig-parted layout; the MIG "
            f"devices ({', '.join(sorted(p.name for p in pool.sharing.profiles))}) must exist on "
            "the nodes before the driver announces them (or set dra.dynamicMig)"
        )
    if gates:
        out.append(
            f"sharing {mode} through DRA needs the driver's feature gate "
            f"{', '.join(gates)} (alpha, off by default in {DRIVER_RELEASE}); without it the "
            "driver rejects the claim's GpuConfig"
        )
    return out


def device_classes(pool: GPUPoolSpec) -> list[str]:
    return [MIG_CLASS] if pool.sharing.mode == "mig" else [GPU_CLASS]
