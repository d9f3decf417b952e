"""DRA placement: the ResourceClaim(Template) a replica's GPU comes from, and the pod's claims.

When the bound GPUPool allocates through DRA (functions/common/dra.py) the engine container
requests no `nvidia.com/*` extended resource; it names the pod's claim instead. Exclusive GPUs
and MIG devices come from a ResourceClaimTemplate (one claim, and so one device set, per
replica); MPS and time-slicing from one ResourceClaim that every replica shares, because the
NVIDIA driver shares a device only among the pods of one claim.

The API server keeps a claim's and a template's spec immutable, so their name ends in a digest
of the spec: a changed request (another pool setting, GPU count or profile) is a new object, and
the Deployment rolls to it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from functions.common.dra import REQUEST, RESOURCE_API, Claim
from functions.common.meta import Owner

CLAIM_SUFFIX = "gpu"


def claim_name(owner: Owner, claim: Claim) -> str:
    spec = json.dumps([claim.shared, claim.devices()], sort_keys=True).encode()
    return owner.child(f"{CLAIM_SUFFIX}-{hashlib.sha256(spec).hexdigest()[:8]}")


def claim_object(owner: Owner, claim: Claim, component: str) -> dict[str, Any]:
    """A ResourceClaim (shared by all replicas) or a ResourceClaimTemplate (one per replica)."""
    metadata = owner.metadata(claim_name(owner, claim), component)
    devices = {"devices": claim.devices()}
    if claim.shared:
        return {
            "apiVersion": RESOURCE_API,
            "kind": "ResourceClaim",
            "metadata": metadata,
            "spec": devices,
        }
    return {
        "apiVersion": RESOURCE_API,
        "kind": "ResourceClaimTemplate",
        "metadata": metadata,
        "spec": {"spec": devices},
    }


def pod_claims(owner: Owner, claim: Claim) -> list[dict[str, Any]]:
    """`spec.resourceClaims` of the engine pods."""
    key = "resourceClaimName" if claim.shared else "resourceClaimTemplateName"
    return [{"name": CLAIM_SUFFIX, key: claim_name(owner, claim)}]


def container_claims() -> list[dict[str, Any]]:
    """`resources.claims` of the engine container: the claim's one request."""
    return [{"name": CLAIM_SUFFIX, "request": REQUEST}]
