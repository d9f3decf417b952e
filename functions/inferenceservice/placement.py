"""GPU placement: which extended resource a replica requests, on which nodes, how many."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from functions.common import gpus, sharing
from functions.common.api.inferenceservice import GPU
from functions.common.dra import Claim

GPU_RESOURCE = sharing.GPU
PRODUCT_LABEL = "nvidia.com/gpu.product"


@dataclass(frozen=True)
class Placement:
    resource: str  # extended resource name requested per replica
    devices: int  # how many of it each replica requests
    usable_gpus: int  # devices the engine can actually use (tensor-parallel size)
    products: tuple[str, ...]  # acceptable `nvidia.com/gpu.product` values
    warnings: tuple[str, ...] = field(default=())
    node_selector: tuple[tuple[str, str], ...] = ()  # the bound GPUPool's node labels
    claim: Claim | None = None  # set when the bound pool allocates through DRA (resource unused)

    @property
    def shared(self) -> bool:
        """Whether other pods may run on the same physical GPU (MPS or time-slicing)."""
        if self.claim is not None:
            return self.claim.shared
        return self.resource.endswith(".shared")

    def node_affinity(self) -> dict[str, Any]:
        # With DRA the claim's CEL selectors pick the GPU product; GFD labels may be absent.
        expressions: list[dict[str, Any]] = []
        if self.claim is None:
            expressions.append(
                {"key": PRODUCT_LABEL, "operator": "In", "values": list(self.products)}
            )
        expressions += [
            {"key": key, "operator": "In", "values": [value]} for key, value in self.node_selector
        ]
        return {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": expressions}]
            }
        }


def place(gpu: GPU) -> Placement:
    models = gpus.models_for_type(gpu.type)
    products = sorted({p for m in models for p in m.products})
    warnings: list[str] = []
    if gpu.sharing == "mig":
        assert gpu.migProfile is not None  # enforced by the schema rule
        hosts = [m for m in models if m.profile(gpu.migProfile)]
        if not hosts:
            offered = sorted({p.name for m in models for p in m.profiles})
            raise ValueError(
                f"spec.gpu.migProfile: {gpu.migProfile} does not exist on {gpu.type}; "
                f"profiles there: {', '.join(offered) or 'none (not MIG-capable)'}"
            )
        profile = hosts[0].profile(gpu.migProfile)
        assert profile is not None
        resource = profile.resource_name
        products = sorted({p for m in hosts for p in m.products})
        devices = gpu.count
        if gpu.count > 1:
            # CUDA enumerates at most one MIG device per process, so tensor parallelism across
            # MIG instances is impossible; asking for more only strands slices.
            warnings.append(
                f"gpu.count {gpu.count} with sharing mig: a CUDA process can use only one MIG "
                f"device, so each replica requests one {gpu.migProfile} instance and runs with "
                "tensor parallel size 1; use a larger profile or sharing exclusive for more GPU "
                "memory"
            )
            devices = 1
        return Placement(resource, devices, 1, tuple(products), tuple(warnings))
    if gpu.sharing in ("mps", "timeslice"):
        # GPUPool renders the device plugin with renameByDefault, so shared GPUs are advertised
        # under their own name and never handed to a pod that expects an exclusive GPU.
        resource = sharing.advertised(GPU_RESOURCE, gpu.sharing, oversubscribed=False)
        if gpu.count > 1:
            warnings.append(
                f"gpu.count {gpu.count} with sharing {gpu.sharing}: the device plugin may hand "
                "out replicas of the same physical GPU, so each replica requests 1 "
                f"{resource} and runs with tensor parallel size 1"
            )
        return Placement(resource, 1, 1, tuple(products), tuple(warnings))
    return Placement(GPU_RESOURCE, gpu.count, gpu.count, tuple(products))
