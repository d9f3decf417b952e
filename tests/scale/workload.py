"""The scale benchmark's objects: GPU nodes, two GPUPools, one TokenCache per namespace and N
InferenceServices, each bound to a pool (by `poolRef`) and to its namespace's cache.

The same manifests serve both XRD forms (a claim or a v2 XR are both `InferenceService` in
`inference.ai/v1alpha1`). Every service asks for one whole H100; the pools' nodes carry eight
each, so every service can be scheduled (kwok runs its pod) and become Ready. Model storage is
off (no PersistentVolume per service: the claims under test, not the volume binder) and so is
autoscaling (no KEDA operator runs here, so a ScaledObject would never be Ready).

The pool change: every node also carries `REV_LABEL`; the change adds it to pool `CHANGED`'s
`spec.nodeSelector`, which the InferenceService function copies into the node affinity of each
bound service's Deployment. A Deployment whose affinity carries that key has been re-rendered
with the changed pool.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hack.e2e.controlplane import FakeGPUNode

API = "inference.ai/v1alpha1"
PRODUCT = "NVIDIA-H100-80GB-HBM3"
GPUS_PER_NODE = 8
POOLS = ("bench-a", "bench-b")
CHANGED = POOLS[0]
POOL_LABEL = "bench.inference.ai/pool"
REV_LABEL = "bench.inference.ai/rev"
SERVICES_PER_NAMESPACE = 50
CACHE = "bench-cache"
SERVICE_LABEL = "inference.ai/inferenceservice"  # on every object an InferenceService composes


@dataclass(frozen=True)
class Workload:
    """N services spread over namespaces of at most SERVICES_PER_NAMESPACE, alternately bound to
    the two pools."""

    services: int

    def __post_init__(self) -> None:
        if self.services < 1:
            raise ValueError(f"services: at least 1, got {self.services}")

    @property
    def namespaces(self) -> list[str]:
        count = math.ceil(self.services / SERVICES_PER_NAMESPACE)
        return [f"bench-{i:02d}" for i in range(count)]

    def pool_of(self, index: int) -> str:
        return POOLS[index % len(POOLS)]

    def bound(self, pool: str) -> int:
        """How many services `pool` hosts."""
        return sum(1 for i in range(self.services) if self.pool_of(i) == pool)

    def nodes(self) -> list[FakeGPUNode]:
        """Enough eight-GPU nodes for each pool's services, plus one spare per pool."""
        out = []
        for pool in POOLS:
            for i in range(math.ceil(self.bound(pool) / GPUS_PER_NODE) + 1):
                out.append(
                    FakeGPUNode(
                        f"{pool}-{i:03d}",
                        PRODUCT,
                        GPUS_PER_NODE,
                        81559,
                        labels={POOL_LABEL: pool, REV_LABEL: "2"},
                    )
                )
        return out

    def pools(self) -> list[dict[str, Any]]:
        return [pool(name) for name in POOLS]

    def caches(self) -> list[dict[str, Any]]:
        return [cache(ns) for ns in self.namespaces]

    def services_manifests(self) -> list[dict[str, Any]]:
        return [
            service(
                f"svc-{i:04d}",
                self.namespaces[i // SERVICES_PER_NAMESPACE],
                self.pool_of(i),
            )
            for i in range(self.services)
        ]


def pool(name: str, selector: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "GPUPool",
        "metadata": {"name": name},
        "spec": {
            "nodeSelector": {
                "nvidia.com/gpu.product": PRODUCT,
                POOL_LABEL: name,
                **(selector or {}),
            },
            "sharing": {"mode": "exclusive"},
        },
    }


def pool_change() -> dict[str, Any]:
    """Merge patch for pool CHANGED: select its nodes by REV_LABEL too (they all carry it, so
    the pool keeps its nodes; its services' Deployments gain the label in their affinity)."""
    return {"spec": {"nodeSelector": {REV_LABEL: "2"}}}


def cache(namespace: str) -> dict[str, Any]:
    """A GPU prefix budget the services read from status, and a one-replica Redis tier."""
    return {
        "apiVersion": API,
        "kind": "TokenCache",
        "metadata": {"name": CACHE, "namespace": namespace},
        "spec": {
            "tiers": [
                {"name": "gpu", "type": "prefix", "size": "8Gi"},
                {
                    "name": "distributed",
                    "type": "redis",
                    "replicas": 1,
                    "size": "16Gi",
                    "ttl": "1h",
                },
            ]
        },
    }


def service(name: str, namespace: str, pool_name: str) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "InferenceService",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "model": {"name": "meta-llama/Llama-3.1-8B-Instruct", "storage": {"enabled": False}},
            "backend": "vllm",
            "replicas": 1,
            "gpu": {
                "type": "nvidia-h100",
                "count": 1,
                "sharing": "exclusive",
                "poolRef": {"name": pool_name},
            },
            "cache": {"enabled": True, "strategy": "prefix", "tokenCacheRef": {"name": CACHE}},
        },
    }


def condition_true(obj: Mapping[str, Any], kind: str) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == kind and c.get("status") == "True" for c in conditions)


def condition_false(obj: Mapping[str, Any], kind: str) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == kind and c.get("status") == "False" for c in conditions)


def ready_and_synced(objects: Sequence[Mapping[str, Any]]) -> int:
    """How many of `objects` are Ready and Synced."""
    return sum(1 for o in objects if condition_true(o, "Ready") and condition_true(o, "Synced"))


def rerendered(deployment: Mapping[str, Any]) -> bool:
    """Whether a Deployment's pod affinity carries the changed pool's REV_LABEL."""
    affinity = (
        ((deployment.get("spec") or {}).get("template") or {}).get("spec", {}).get("affinity")
    )
    terms = (
        ((affinity or {}).get("nodeAffinity") or {})
        .get("requiredDuringSchedulingIgnoredDuringExecution", {})
        .get("nodeSelectorTerms", [])
    )
    return any(
        expr.get("key") == REV_LABEL for term in terms for expr in term.get("matchExpressions", [])
    )
