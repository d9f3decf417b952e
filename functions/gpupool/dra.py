"""A GPUPool that allocates through DRA: no GPU Operator configs, the driver's claims instead.

With `allocation: dra` the NVIDIA DRA driver announces the nodes' GPUs (and MIG devices) in
ResourceSlices and the InferenceServices bound to the pool claim them (functions/common/dra.py).
The pool therefore renders no device-plugin or mig-parted configuration and labels no node; it
reports its nodes, the DeviceClasses its services claim from and what the driver needs.
Capacity from the nodes' ResourceSlices is not read yet: `status.capacity` stays empty.
"""

from __future__ import annotations

from typing import Any

from functions.common import dra
from functions.common.api.gpupool import GPUPoolSpec
from functions.common.gpus import base_product
from functions.gpupool.nodes import Node


def status(spec: GPUPoolSpec, nodes: list[Node] | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "mode": spec.sharing.mode,
        "allocation": "dra",
        "deviceClasses": dra.device_classes(spec),
    }
    if nodes is not None:
        out["nodes"] = len(nodes)
        out["gpuProducts"] = sorted({base_product(x.product) for x in nodes if x.product})
    return out


def warnings(spec: GPUPoolSpec, nodes: list[Node] | None) -> list[str]:
    out = dra.pool_warnings(spec)
    out.append(
        "allocation dra: capacity is not read from the nodes' ResourceSlices yet, so "
        "status.capacity is not reported; the scheduler allocates what the driver announces"
    )
    if nodes is not None and not nodes:
        selector = dict(sorted(spec.nodeSelector.items()))
        out.append(f"no Node matches spec.nodeSelector {selector}")
    return out
