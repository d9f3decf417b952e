"""GPU placement (functions/inferenceservice/placement.py): which extended resource a replica
requests, how many, and on which GPU products."""

from __future__ import annotations

import re
from typing import Any

import pytest

from functions.common.api.inferenceservice import GPU
from functions.inferenceservice.placement import Placement, place

A100 = (
    "NVIDIA-A100-80GB-PCIe",
    "NVIDIA-A100-PCIE-40GB",
    "NVIDIA-A100-SXM4-40GB",
    "NVIDIA-A100-SXM4-80GB",
)
A100_80GB = ("NVIDIA-A100-80GB-PCIe", "NVIDIA-A100-SXM4-80GB")


@pytest.mark.parametrize(
    ("gpu", "resource", "devices", "tensor_parallel", "products"),
    [
        ({"type": "nvidia-a100", "count": 2}, "nvidia.com/gpu", 2, 2, A100),
        # A profile exists on some models of a family only: those are the products.
        (
            {"type": "nvidia-a100", "sharing": "mig", "migProfile": "3g.40gb"},
            "nvidia.com/mig-3g.40gb",
            1,
            1,
            A100_80GB,
        ),
        ({"type": "nvidia-t4", "sharing": "mps"}, "nvidia.com/gpu.shared", 1, 1, ("Tesla-T4",)),
        (
            {"type": "nvidia-l4", "sharing": "timeslice"},
            "nvidia.com/gpu.shared",
            1,
            1,
            ("NVIDIA-L4",),
        ),
    ],
    ids=["exclusive", "mig", "mps", "timeslice"],
)
def test_each_sharing_mode_requests_its_advertised_resource(
    gpu: dict[str, Any], resource: str, devices: int, tensor_parallel: int, products: tuple[str]
) -> None:
    assert place(GPU(**gpu)) == Placement(resource, devices, tensor_parallel, products)


@pytest.mark.parametrize(
    ("gpu", "warning"),
    [
        (
            {"type": "nvidia-a100", "sharing": "mig", "migProfile": "3g.40gb", "count": 2},
            "gpu.count 2 with sharing mig: a CUDA process can use only one MIG device, so each "
            "replica requests one 3g.40gb instance and runs with tensor parallel size 1; use a "
            "larger profile or sharing exclusive for more GPU memory",
        ),
        (
            {"type": "nvidia-l4", "sharing": "timeslice", "count": 2},
            "gpu.count 2 with sharing timeslice: the device plugin may hand out replicas of the "
            "same physical GPU, so each replica requests 1 nvidia.com/gpu.shared and runs with "
            "tensor parallel size 1",
        ),
    ],
    ids=["mig", "timeslice"],
)
def test_more_than_one_slice_per_replica_is_one_slice_and_a_warning(
    gpu: dict[str, Any], warning: str
) -> None:
    placed = place(GPU(**gpu))
    assert (placed.devices, placed.usable_gpus, placed.warnings) == (1, 1, (warning,))


@pytest.mark.parametrize(
    ("gpu", "message"),
    [
        (
            {"type": "nvidia-a100-40gb", "sharing": "mig", "migProfile": "3g.40gb"},
            "spec.gpu.migProfile: 3g.40gb does not exist on nvidia-a100-40gb; profiles there: "
            "1g.10gb, 1g.5gb, 1g.5gb+me, 2g.10gb, 3g.20gb, 4g.20gb, 7g.40gb",
        ),
        (
            {"type": "nvidia-l4", "sharing": "mig", "migProfile": "1g.10gb"},
            "spec.gpu.migProfile: 1g.10gb does not exist on nvidia-l4; profiles there: none (not "
            "MIG-capable)",
        ),
    ],
)
def test_a_profile_the_gpu_type_lacks_names_the_field_and_what_exists(
    gpu: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        place(GPU(**gpu))


def test_node_affinity_adds_the_pools_selector_to_the_products() -> None:
    placed = Placement("nvidia.com/gpu", 1, 1, ("NVIDIA-L4",), node_selector=(("pool", "l4"),))
    assert placed.node_affinity() == {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [
                {
                    "matchExpressions": [
                        {
                            "key": "nvidia.com/gpu.product",
                            "operator": "In",
                            "values": ["NVIDIA-L4"],
                        },
                        {"key": "pool", "operator": "In", "values": ["l4"]},
                    ]
                }
            ]
        }
    }
