"""A GPUPool that allocates through DRA: no GPU Operator configs, the driver's claims instead.

With `allocation: dra` the NVIDIA DRA driver announces the nodes' GPUs (and MIG devices) in
ResourceSlices and the InferenceServices bound to the pool claim them (functions/common/dra.py).
The pool therefore renders no device-plugin or mig-parted configuration and labels no node; it
reports its nodes, the DeviceClasses its services claim from, what the driver needs, and
capacity read from the ResourceSlices of its nodes (required resources): devices per DeviceClass
(`gpu.nvidia.com`, `mig.nvidia.com/<profile>`) against what bound services claim.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from crossplane.function import resource

from functions.common import dra
from functions.common.api.gpupool import GPUPoolSpec
from functions.common.gpus import base_product
from functions.common.peers import InferenceServicePeer, Requirement
from functions.gpupool.capacity import capacity_condition
from functions.gpupool.nodes import Node

SLICES = "resourceslices"
REQUIREMENT = Requirement(SLICES, dra.RESOURCE_API, "ResourceSlice")


def _string(attributes: Mapping[str, Any], name: str) -> str | None:
    value = attributes.get(name)
    return str(value["string"]) if isinstance(value, Mapping) and "string" in value else None


def announced(slices: Iterable[Any], nodes: set[str]) -> Counter[str]:
    """Devices the driver announces on `nodes`, keyed `gpu.nvidia.com` (whole GPUs) or
    `mig.nvidia.com/<profile>`. Only each pool's newest generation counts: the driver replaces
    a pool's slices by publishing a higher generation, and older ones linger until removed."""
    ours = []
    for obj in slices:
        spec = obj.get("spec") if isinstance(obj, Mapping) else None
        if not isinstance(spec, Mapping) or spec.get("driver") != dra.DRIVER:
            continue
        if spec.get("nodeName") not in nodes:
            continue
        pool = spec.get("pool") or {}
        ours.append((str(pool.get("name", "")), int(pool.get("generation", 0)), spec))
    newest: dict[str, int] = {}
    for name, generation, _ in ours:
        newest[name] = max(generation, newest.get(name, generation))
    out: Counter[str] = Counter()
    for name, generation, spec in ours:
        if generation != newest[name]:
            continue
        for device in spec.get("devices") or []:
            attributes = device.get("attributes") or {}
            kind = _string(attributes, "type")
            if kind == "gpu":
                out[dra.GPU_CLASS] += 1
            elif kind == "mig" and (profile := _string(attributes, "profile")):
                out[f"{dra.MIG_CLASS}/{profile}"] += 1
    return out


def claimed(pool: str, services: Iterable[InferenceServicePeer]) -> Counter[str]:
    """Devices the InferenceServices bound to `pool` claim: replicas x devices per replica from
    a template, one claim's devices for all replicas of a shared (MPS, time-sliced) service."""
    out: Counter[str] = Counter()
    for svc in services:
        spec, status = svc.spec, svc.status
        pool_ref = status.pool or (spec.gpu.poolRef.name if spec.gpu.poolRef else None)
        if pool_ref != pool or status.gpuResource not in (dra.GPU_CLASS, dra.MIG_CLASS):
            continue
        key = status.gpuResource
        if key == dra.MIG_CLASS:
            key = f"{key}/{spec.gpu.migProfile}"
        replicas = status.desiredReplicas if status.desiredReplicas is not None else spec.replicas
        per_replica = status.gpusPerReplica or 1
        shared = spec.gpu.sharing in ("mps", "timeslice")
        out[key] += per_replica if shared else replicas * per_replica
    return out


def capacity(devices: Counter[str], requested: Counter[str]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for name in sorted(set(devices) | set(requested)):
        have, want = devices.get(name, 0), requested.get(name, 0)
        out[name] = {"physical": have, "schedulable": have, "requested": want}
        out[name]["available"] = have - want
    return out


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


def report(
    pool: str,
    spec: GPUPoolSpec,
    nodes: list[Node] | None,
    slices: list[Any] | None,
    services: Iterable[InferenceServicePeer],
) -> tuple[dict[str, Any], list[str], list[resource.Condition]]:
    """Status, warnings and conditions of a DRA pool."""
    out = status(spec, nodes)
    warnings = dra.pool_warnings(spec)
    conditions = []
    if nodes is not None and not nodes:
        selector = dict(sorted(spec.nodeSelector.items()))
        warnings.append(f"no Node matches spec.nodeSelector {selector}")
    dynamic = spec.sharing.mode == "mig" and spec.dra is not None and spec.dra.dynamicMig
    if nodes is None or slices is None:
        warnings.append(
            "the pool's Nodes and ResourceSlices have not been read yet (required resources): "
            "capacity is not reported"
        )
    elif dynamic:
        warnings.append(
            "dra.dynamicMig: capacity is not reported, since the driver announces every "
            "possible MIG placement (partitionable devices), not devices that exist"
        )
    else:
        # Only the devices this pool's services claim: a node may also announce others.
        offered = {dra.GPU_CLASS}
        if spec.sharing.mode == "mig":
            offered = {f"{dra.MIG_CLASS}/{p.name}" for p in spec.sharing.profiles}
        devices = announced(slices, {x.name for x in nodes})
        ours = Counter({k: v for k, v in devices.items() if k in offered})
        cap = capacity(ours, claimed(pool, services))
        out["capacity"] = cap
        conditions.append(capacity_condition(cap))
        if nodes and not any(c["physical"] for c in cap.values()):
            warnings.append(
                f"no ResourceSlice of driver {dra.DRIVER} announces a device on the pool's "
                "nodes: is the NVIDIA DRA driver's kubelet plugin running there?"
            )
    return out, warnings, conditions
