"""Binding an InferenceService to the GPUPool that hosts it.

The function reads every GPUPool (cluster-scoped, the same kind in both XRD forms) as a required
resource. A pool hosts the request when its sharing mode matches and, for MIG, it partitions the
requested profile; the pool then decides the extended resource name (oversubscribed pools
advertise `<name>.shared`) and adds its node selector to the replicas' node affinity.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from functions.common import sharing
from functions.common.api.inferenceservice import GPU
from functions.common.composer import ComposeError, Requirement
from functions.common.kinds import API_VERSION, GPU_POOL
from functions.inferenceservice.placement import Placement

POOLS = "gpupools"
REQUIREMENT = Requirement(POOLS, API_VERSION, GPU_POOL.kind)


@dataclass(frozen=True)
class Binding:
    pool: str
    placement: Placement
    warnings: tuple[str, ...] = ()
    capacity: dict[str, dict[str, Any]] = field(default_factory=dict)  # pool status.capacity


def describe(pool: dict[str, Any]) -> str:
    sharing = pool.get("spec", {}).get("sharing", {})
    mode = sharing.get("mode", "exclusive")
    if mode == "mig":
        profiles = ", ".join(sorted(p.get("name", "?") for p in sharing.get("profiles", [])))
        return f"{pool['metadata']['name']} (mig: {profiles})"
    return f"{pool['metadata']['name']} ({mode})"


def mismatch(pool: dict[str, Any], gpu: GPU, products: tuple[str, ...]) -> str | None:
    """Why `pool` cannot host `gpu`, or None when it can."""
    spec = pool.get("spec", {})
    sharing = spec.get("sharing", {})
    mode = sharing.get("mode", "exclusive")
    if mode != gpu.sharing:
        return f"it shares GPUs as {mode}, the service asks for {gpu.sharing}"
    if mode == "mig" and gpu.migProfile not in {p.get("name") for p in sharing.get("profiles", [])}:
        return f"it does not partition {gpu.migProfile}"
    known = pool.get("status", {}).get("gpuProducts") or []
    if known and not set(known) & set(products):
        return f"its nodes have {', '.join(sorted(known))}, not {gpu.type}"
    return None


def _reported(pool: dict[str, Any]) -> bool:
    return bool(pool.get("status", {}).get("gpuProducts"))


def resource_name(pool: dict[str, Any], placement: Placement) -> str:
    """The pool's name for the requested device (a time-sliced MIG instance is `<name>.shared`)."""
    if placement.shared:  # already the advertised name of an MPS or time-sliced GPU
        return placement.resource
    spec = pool.get("spec", {})
    mode = spec.get("sharing", {}).get("mode", "exclusive")
    oversubscribed = bool(spec.get("oversubscription", {}).get("enabled", False))
    return sharing.advertised(placement.resource, mode, oversubscribed)


def bind(gpu: GPU, placement: Placement, pools: list[dict[str, Any]]) -> Binding:
    """The pool that hosts the request; ComposeError naming the field when none can."""
    pools = sorted(pools, key=lambda p: p["metadata"]["name"])
    if gpu.poolRef is not None:
        named = [p for p in pools if p["metadata"]["name"] == gpu.poolRef.name]
        if not named:
            raise ComposeError(
                f"spec.gpu.poolRef: GPUPool {gpu.poolRef.name} does not exist; pools: "
                + (", ".join(describe(p) for p in pools) or "none")
            )
        why = mismatch(named[0], gpu, placement.products)
        if why:
            raise ComposeError(f"spec.gpu.poolRef: GPUPool {gpu.poolRef.name} cannot host this "
                               f"service: {why}")  # fmt: skip
        pools = named
    hosts = [p for p in pools if mismatch(p, gpu, placement.products) is None]
    if not hosts:
        wanted = f"sharing {gpu.sharing}" + (
            f" with MIG profile {gpu.migProfile}" if gpu.sharing == "mig" else ""
        )
        raise ComposeError(
            f"spec.gpu: no GPUPool hosts {wanted} on {gpu.type}; pools: "
            + (", ".join(describe(p) for p in pools) or "none")
        )
    # A pool whose nodes were seen to carry the GPU beats one that has not reported yet (a pool
    # created a moment ago); among equals, the first by name, so the choice is deterministic.
    pool = min(hosts, key=lambda p: (not _reported(p), p["metadata"]["name"]))
    name = pool["metadata"]["name"]
    selector = pool.get("spec", {}).get("nodeSelector", {})
    warnings = []
    if not _reported(pool):
        warnings.append(
            f"GPUPool {name} has not reported its nodes' GPU products yet; {gpu.type} on its "
            "nodes is assumed, not verified"
        )
    bound = replace(
        placement,
        resource=resource_name(pool, placement),
        node_selector=tuple(sorted(selector.items())),
    )
    capacity = pool.get("status", {}).get("capacity", {}) or {}
    return Binding(name, bound, tuple(warnings), dict(capacity))
