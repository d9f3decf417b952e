"""Fake DRA GPU nodes: kwok Nodes plus the ResourceSlices the NVIDIA DRA driver would publish.

No kubelet plugin runs here, so the harness publishes what the driver's kubelet plugin
(kubernetes-sigs/dra-driver-nvidia-gpu v25.12.0) announces for each node, written from its
source: one ResourceSlice per node (driver `gpu.nvidia.com`, pool named after the node), whole
GPUs named `gpu-<minor>` with the attributes of `GpuInfo.PartDevAttributes`
(cmd/gpu-kubelet-plugin/partitions.go) and capacity `memory`, pre-created MIG devices named
`gpu-<minor>-mig-<profile without dots>-<profile id>-<placement start>` (cmd/gpu-kubelet-plugin/
mig.go `ToCanonicalName`) with the attributes of `MigDeviceInfo.GetDevice` (deviceinfo.go); a
GPU in MIG mode is announced only through its MIG devices. The DeviceClasses are those of the
driver's Helm chart (deployments/helm/nvidia-dra-driver-gpu/templates/deviceclass-{gpu,mig}.yaml)
without `extendedResourceName`, so the device-plugin nodes' `nvidia.com/gpu` stays theirs.
The real kube-scheduler and kube-controller-manager (ResourceClaim controller) allocate from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from hack.e2e.controlplane import ControlPlane, FakeGPUNode

DRIVER = "gpu.nvidia.com"
API = "resource.k8s.io/v1"


@dataclass(frozen=True)
class MigDevice:
    profile: str  # e.g. 3g.40gb
    profile_id: int  # NVML GPU instance profile id as nvidia-smi lists it (3g: 9 on H100)
    start: int  # placement start (memory slice)
    memory_mib: int
    multiprocessors: int


@dataclass(frozen=True)
class FakeDRANode:
    name: str
    product: str  # NVML's name, as the driver's productName reports it
    gfd_product: str  # the same with dashes, as GPU feature discovery labels it
    gpus: int
    memory_mib: int
    architecture: str
    compute_capability: str
    mig: dict[int, tuple[MigDevice, ...]] = field(default_factory=dict)  # minor -> devices
    labels: dict[str, str] = field(default_factory=dict)

    def node(self) -> dict[str, Any]:
        base = FakeGPUNode(self.name, self.gfd_product, self.gpus, self.memory_mib, {}, self.labels)
        doc = base.manifest()
        # GPUs reach pods through claims only: no extended resource on a DRA node.
        status = doc["status"]
        status["capacity"] = status["allocatable"] = {
            k: v for k, v in status["capacity"].items() if not k.startswith("nvidia.com/")
        }
        return doc

    def _common(self, minor: int) -> dict[str, Any]:
        return {
            "productName": {"string": self.product},
            "brand": {"string": "Nvidia"},
            "architecture": {"string": self.architecture},
            "cudaComputeCapability": {"version": self.compute_capability},
            "driverVersion": {"version": "580.95.5"},
            "cudaDriverVersion": {"version": "13.0.0"},
            "resource.kubernetes.io/pciBusID": {"string": f"0000:{0x10 + minor:02x}:00.0"},
        }

    def gpu_uuid(self, minor: int) -> str:
        return f"GPU-{self.name}-{minor:04d}"

    def devices(self) -> list[dict[str, Any]]:
        out = []
        for minor in range(self.gpus):
            if minor in self.mig:
                for m in self.mig[minor]:
                    pname = m.profile.replace(".", "")
                    out.append(
                        {
                            "name": f"gpu-{minor}-mig-{pname}-{m.profile_id}-{m.start}",
                            "attributes": {
                                "type": {"string": "mig"},
                                "uuid": {"string": f"MIG-{self.name}-{minor}-{m.start}"},
                                "parentUUID": {"string": self.gpu_uuid(minor)},
                                "profile": {"string": m.profile},
                                **self._common(minor),
                            },
                            "capacity": {
                                "memory": {"value": f"{m.memory_mib}Mi"},
                                "multiprocessors": {"value": str(m.multiprocessors)},
                            },
                        }
                    )
                continue
            out.append(
                {
                    "name": f"gpu-{minor}",
                    "attributes": {
                        "type": {"string": "gpu"},
                        "uuid": {"string": self.gpu_uuid(minor)},
                        **self._common(minor),
                    },
                    "capacity": {"memory": {"value": f"{self.memory_mib}Mi"}},
                }
            )
        return out

    def resource_slice(self) -> dict[str, Any]:
        return {
            "apiVersion": API,
            "kind": "ResourceSlice",
            "metadata": {"name": f"{self.name}-{DRIVER}"},
            "spec": {
                "driver": DRIVER,
                "nodeName": self.name,
                "pool": {"name": self.name, "generation": 1, "resourceSliceCount": 1},
                "devices": self.devices(),
            },
        }


def device_classes() -> list[dict[str, Any]]:
    def cls(name: str, typ: str) -> dict[str, Any]:
        expression = f"device.driver == '{DRIVER}' && device.attributes['{DRIVER}'].type == '{typ}'"
        return {
            "apiVersion": API,
            "kind": "DeviceClass",
            "metadata": {"name": name},
            "spec": {"selectors": [{"cel": {"expression": expression}}]},
        }

    return [cls("gpu.nvidia.com", "gpu"), cls("mig.nvidia.com", "mig")]


# H100 80GB HBM3: 3g.40gb is profile id 9, placements 0 and 4, 40448 MiB and 60 SMs
# (MIG user guide, `nvidia-smi mig -lgip`).
H100_3G = tuple(MigDevice("3g.40gb", 9, start, 40448, 60) for start in (0, 4))


def h100(name: str, labels: dict[str, str], mig_gpus: tuple[int, ...] = ()) -> FakeDRANode:
    return FakeDRANode(
        name,
        "NVIDIA H100 80GB HBM3",
        "NVIDIA-H100-80GB-HBM3",
        8,
        81559,
        "Hopper",
        "9.0.0",
        dict.fromkeys(mig_gpus, H100_3G),
        labels,
    )


def l4(name: str, labels: dict[str, str]) -> FakeDRANode:
    return FakeDRANode(
        name, "NVIDIA L4", "NVIDIA-L4", 4, 23034, "Ada Lovelace", "8.9.0", {}, labels
    )


# The nodes the DRA example pools select (examples/claims/*-dra-pool.yaml): six whole H100s and
# two H100s in MIG mode with two 3g.40gb devices each, and four L4s.
DEFAULT_DRA_NODES = (
    h100("gpu-h100-dra-0", {"gpu-type": "nvidia-h100-dra"}, mig_gpus=(6, 7)),
    l4("gpu-l4-dra-0", {"gpu-type": "nvidia-l4-dra"}),
)


def add_dra(cp: ControlPlane, nodes: tuple[FakeDRANode, ...] = DEFAULT_DRA_NODES) -> None:
    """DeviceClasses (idempotent), the nodes and their ResourceSlices."""
    docs = [*device_classes(), *(n.node() for n in nodes), *(n.resource_slice() for n in nodes)]
    cp.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs, sort_keys=False))
    names = [f"node/{n.name}" for n in nodes]
    cp.kubectl("wait", "--for=condition=Ready", "--timeout=60s", *names)
