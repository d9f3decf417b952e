"""The warmup Job: the warmup program (sidecar/warmup.py) for the ready
InferenceServices bound to this cache.

The bound services are read as required resources (their status names the TokenCache, the
endpoint and the served model). The plan goes into a ConfigMap, and both the ConfigMap and the
Job are named after a hash of the plan: when the prefixes or the ready bound services change the
name changes, Crossplane deletes the old Job and creates the new one, which runs again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from functions.common import lmcache, peers
from functions.common.api.inferenceservice import SIDECAR_IMAGE
from functions.common.composer import Request
from functions.common.kinds import INFERENCE_SERVICE
from functions.common.meta import Owner
from functions.common.objects import config_map
from functions.common.peers import InferenceServicePeer, Requirement
from functions.common.security import restricted
from sidecar.contract import NONROOT_USER, WARMUP_COMMAND, Plan, Target

SERVICES = "inferenceservices"
COMPONENT = "warmup"
PLAN_DIR = "/etc/warmup"
DEADLINE_SECONDS = 600  # the program's own deadline; the Job's is a little longer


def requirement(req: Request[Any]) -> Requirement:
    """The InferenceServices of the cache's namespace."""
    return peers.composites(
        SERVICES, INFERENCE_SERVICE, req.form, namespace=req.owner.namespace or "default"
    )


def bound(owner: Owner, services: Iterable[InferenceServicePeer]) -> list[InferenceServicePeer]:
    """The services the InferenceService function bound to this cache (status.tokenCache)."""
    return [s for s in services if s.status.tokenCache == owner.name]


def routed_endpoint(svc: InferenceServicePeer) -> str | None:
    """The service's endpoint through its prefix-aware router, once its Gateway reports one.

    Warmup sent there reaches the replica later requests with the prefix go to: the endpoint
    picker remembers where it sent each prefix and prefers that replica (weighed against load).
    """
    routing = svc.status.routing
    if routing is not None and routing.mode == "prefix-aware":
        return routing.endpoint
    return None


def targets(
    owner: Owner, services: Iterable[InferenceServicePeer]
) -> tuple[list[Target], list[str]]:
    """Ready services bound to this cache, and those bound but not ready (by name)."""
    ready, waiting = [], []
    for svc in sorted(bound(owner, services), key=lambda s: s.name):
        status = svc.status
        endpoint = routed_endpoint(svc) or status.endpoint
        if endpoint and status.servedModel and status.readyReplicas:
            ready.append(Target(endpoint.rstrip("/"), status.servedModel))
        else:
            waiting.append(svc.name)
    return sorted(set(ready), key=lambda t: (t.url, t.model)), waiting


def one_replica_warned(svc: InferenceServicePeer) -> str | None:
    """Why only one of the service's replicas gets each prefix, when that is so."""
    replicas = svc.status.readyReplicas or 0
    if replicas <= 1 or routed_endpoint(svc):
        return None
    through = "Service"
    routing = svc.status.routing
    if routing is not None and routing.mode == "prefix-aware":
        through = "Service (its router is reached through a Gateway that reports no endpoint yet)"
    return (
        f"warmup: InferenceService {svc.name} has {replicas} replicas; each prefix warms the one "
        f"its {through} picks (the others reuse it through LMCache's shared tiers, if any, in "
        f"whole {lmcache.CHUNK_SIZE}-token chunks)"
    )


def resources(owner: Owner, plan: Plan) -> dict[str, dict[str, Any]]:
    text = plan.to_json()
    name = owner.child(f"warmup-{hashlib.sha256(text.encode()).hexdigest()[:6]}")
    container = {
        "name": "warmup",
        "image": SIDECAR_IMAGE,
        "command": [
            WARMUP_COMMAND,
            f"--plan={PLAN_DIR}/plan.json",
            f"--deadline-seconds={DEADLINE_SECONDS}",
        ],
        "resources": {
            "requests": {"cpu": "50m", "memory": "64Mi"},
            "limits": {"memory": "128Mi"},
        },
        "securityContext": restricted(NONROOT_USER, NONROOT_USER),
        "volumeMounts": [{"name": "plan", "mountPath": PLAN_DIR, "readOnly": True}],
    }
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": owner.metadata(name, COMPONENT),
        "spec": {
            "backoffLimit": 3,
            # Bounded even when every retry times out; no ttlSecondsAfterFinished, since a
            # deleted Job would be created (and run) again.
            "activeDeadlineSeconds": 4 * (DEADLINE_SECONDS + 60),
            "template": {
                "metadata": {"labels": owner.labels(COMPONENT)},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "containers": [container],
                    "volumes": [{"name": "plan", "configMap": {"name": name}}],
                },
            },
        },
    }
    return {
        "warmup-plan": config_map(owner, name, COMPONENT, {"plan.json": text}),
        "warmup": job,
    }
