"""Binding an InferenceService to the GPUPool that hosts it.

The function reads every GPUPool (cluster-scoped, the same kind in both XRD forms) as a required
resource. A pool hosts the request when its sharing mode matches and, for MIG, it partitions the
requested profile; the pool then decides the extended resource name (oversubscribed pools
advertise `<name>.shared`) and adds its node selector to the replicas' node affinity.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from functions.common import dra, sharing
from functions.common.api.inferenceservice import GPU
from functions.common.api.status import ResourceCapacity
from functions.common.composer import ComposeError
from functions.common.peers import GPUPoolPeer
from functions.inferenceservice.placement import Placement

POOLS = "gpupools"


@dataclass(frozen=True)
class Binding:
    pool: str
    placement: Placement
    warnings: tuple[str, ...] = ()
    capacity: dict[str, ResourceCapacity] = field(default_factory=dict)  # pool status.capacity


def describe(pool: GPUPoolPeer) -> str:
    sharing = pool.spec.sharing
    if sharing.mode == "mig":
        return f"{pool.name} (mig: {', '.join(sorted(p.name for p in sharing.profiles))})"
    return f"{pool.name} ({sharing.mode})"


def mismatch(pool: GPUPoolPeer, gpu: GPU, products: tuple[str, ...]) -> str | None:
    """Why `pool` cannot host `gpu`, or None when it can."""
    sharing = pool.spec.sharing
    if sharing.mode != gpu.sharing:
        return f"it shares GPUs as {sharing.mode}, the service asks for {gpu.sharing}"
    if sharing.mode == "mig" and gpu.migProfile not in {p.name for p in sharing.profiles}:
        return f"it does not partition {gpu.migProfile}"
    known = pool.status.gpuProducts
    if known and not set(known) & set(products):
        return f"its nodes have {', '.join(sorted(known))}, not {gpu.type}"
    return None


def _reported(pool: GPUPoolPeer) -> bool:
    return bool(pool.status.gpuProducts)


def resource_name(pool: GPUPoolPeer, placement: Placement) -> str:
    """The pool's name for the requested device (a time-sliced MIG instance is `<name>.shared`)."""
    if placement.shared:  # already the advertised name of an MPS or time-sliced GPU
        return placement.resource
    spec = pool.spec
    return sharing.advertised(placement.resource, spec.sharing.mode, spec.oversubscription.enabled)


def bind(gpu: GPU, placement: Placement, pools: tuple[GPUPoolPeer, ...]) -> Binding:
    """The pool that hosts the request; ComposeError naming the field when none can."""
    candidates = sorted(pools, key=lambda p: p.name)
    if gpu.poolRef is not None:
        named = [p for p in candidates if p.name == gpu.poolRef.name]
        if not named:
            raise ComposeError(
                f"spec.gpu.poolRef: GPUPool {gpu.poolRef.name} does not exist; pools: "
                + (", ".join(describe(p) for p in candidates) or "none")
            )
        why = mismatch(named[0], gpu, placement.products)
        if why:
            raise ComposeError(
                f"spec.gpu.poolRef: GPUPool {gpu.poolRef.name} cannot host this service: {why}"
            )
        candidates = named
    hosts = [p for p in candidates if mismatch(p, gpu, placement.products) is None]
    if not hosts:
        wanted = f"sharing {gpu.sharing}" + (
            f" with MIG profile {gpu.migProfile}" if gpu.sharing == "mig" else ""
        )
        raise ComposeError(
            f"spec.gpu: no GPUPool hosts {wanted} on {gpu.type}; pools: "
            + (", ".join(describe(p) for p in candidates) or "none")
        )
    # A pool whose nodes were seen to carry the GPU beats one that has not reported yet (a pool
    # created a moment ago); among equals, the first by name, so the choice is deterministic.
    pool = min(hosts, key=lambda p: (not _reported(p), p.name))
    warnings = []
    if not _reported(pool):
        warnings.append(
            f"GPUPool {pool.name} has not reported its nodes' GPU products yet; {gpu.type} on "
            "its nodes is assumed, not verified"
        )
    bound = replace(
        placement,
        resource=resource_name(pool, placement),
        node_selector=tuple(sorted(pool.spec.nodeSelector.items())),
    )
    if pool.spec.allocation == "dra":
        claim = dra.claim(pool.spec, gpu.sharing, bound.devices, bound.products, gpu.migProfile)
        bound = replace(bound, resource=claim.device_class, claim=claim)
        warnings += claim.warnings
    return Binding(pool.name, bound, tuple(warnings), dict(pool.status.capacity))
