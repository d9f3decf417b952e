"""Binding an InferenceService to a GPUPool (functions/inferenceservice/pools.py)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from functions.common import peers
from functions.common.api.inferenceservice import GPU
from functions.common.composer import ComposeError
from functions.common.peers import GPUPoolPeer
from functions.inferenceservice.placement import place
from functions.inferenceservice.pools import bind


def pool(name: str, products: list[str] | None = None, **spec: Any) -> GPUPoolPeer:
    doc = {
        "metadata": {"name": name},
        "spec": {"nodeSelector": {"pool": name}, **spec},
        "status": {"gpuProducts": products or []},
    }
    (found,) = peers.gpu_pools([doc]).found
    return found


MIG = {"mode": "mig", "profiles": [{"name": "3g.40gb", "count": 2}]}
A100 = ["NVIDIA-A100-SXM4-80GB"]
POOLS = (
    pool("a-mig", A100, sharing=MIG),
    pool("b-mig-shared", A100, sharing=MIG, oversubscription={"enabled": True}),
    pool("c-exclusive", ["NVIDIA-H100-80GB-HBM3"]),
    pool("d-exclusive", A100),
    pool("e-new-exclusive"),  # has not reported its nodes yet
    pool("f-timeslice", ["NVIDIA-L4"], sharing={"mode": "timeslice"}),
)
MIG_SERVICE = {"type": "nvidia-a100", "sharing": "mig", "migProfile": "3g.40gb"}


@pytest.mark.parametrize(
    ("gpu", "pool_name", "resource", "warnings"),
    [
        # The first pool by name among those that host the request.
        (MIG_SERVICE, "a-mig", "nvidia.com/mig-3g.40gb", ()),
        # An oversubscribed MIG pool advertises its instances as .shared.
        (
            {**MIG_SERVICE, "poolRef": {"name": "b-mig-shared"}},
            "b-mig-shared",
            "nvidia.com/mig-3g.40gb.shared",
            (),
        ),
        # A pool whose nodes carry the GPU beats one that has not reported yet.
        ({"type": "nvidia-a100"}, "d-exclusive", "nvidia.com/gpu", ()),
        (
            {"type": "nvidia-a100", "poolRef": {"name": "e-new-exclusive"}},
            "e-new-exclusive",
            "nvidia.com/gpu",
            (
                "GPUPool e-new-exclusive has not reported its nodes' GPU products "
                "yet; nvidia-a100 on its nodes is assumed, not verified",
            ),
        ),
        ({"type": "nvidia-l4", "sharing": "timeslice"}, "f-timeslice", "nvidia.com/gpu.shared", ()),
    ],
    ids=["mig", "mig-oversubscribed", "reported-wins", "unreported-named", "timeslice"],
)
def test_the_hosting_pool_decides_resource_name_and_nodes(
    gpu: dict[str, Any], pool_name: str, resource: str, warnings: tuple[str, ...]
) -> None:
    spec = GPU(**gpu)
    binding = bind(spec, place(spec), POOLS)
    assert (binding.pool, binding.placement.resource, binding.warnings) == (
        pool_name,
        resource,
        warnings,
    )
    assert binding.placement.node_selector == (("pool", pool_name),)


@pytest.mark.parametrize(
    ("gpu", "message"),
    [
        (
            {"type": "nvidia-a100", "poolRef": {"name": "nope"}},
            "spec.gpu.poolRef: GPUPool nope does not exist; pools: a-mig (mig: 3g.40gb), "
            "b-mig-shared (mig: 3g.40gb), c-exclusive (exclusive), d-exclusive (exclusive), "
            "e-new-exclusive (exclusive), f-timeslice (timeslice)",
        ),
        (
            {"type": "nvidia-a100", "poolRef": {"name": "c-exclusive"}},
            "spec.gpu.poolRef: GPUPool c-exclusive cannot host this service: its nodes have "
            "NVIDIA-H100-80GB-HBM3, not nvidia-a100",
        ),
        (
            {**MIG_SERVICE, "poolRef": {"name": "f-timeslice"}},
            "spec.gpu.poolRef: GPUPool f-timeslice cannot host this service: it shares GPUs as "
            "timeslice, the service asks for mig",
        ),
        (
            {"type": "nvidia-a100", "sharing": "mig", "migProfile": "1g.10gb"},
            "spec.gpu: no GPUPool hosts sharing mig with MIG profile 1g.10gb on nvidia-a100; "
            "pools: a-mig (mig: 3g.40gb), b-mig-shared (mig: 3g.40gb), c-exclusive (exclusive), "
            "d-exclusive (exclusive), e-new-exclusive (exclusive), f-timeslice (timeslice)",
        ),
    ],
    ids=["missing", "other-gpu", "other-mode", "no-host"],
)
def test_no_host_is_an_error_naming_the_field_and_the_pools(
    gpu: dict[str, Any], message: str
) -> None:
    spec = GPU(**gpu)
    with pytest.raises(ComposeError, match=f"^{re.escape(message)}$"):
        bind(spec, place(spec), POOLS)


def test_no_pools_at_all() -> None:
    spec = GPU(type="nvidia-a100")
    with pytest.raises(ComposeError, match=r"pools: none$"):
        bind(spec, place(spec), ())
