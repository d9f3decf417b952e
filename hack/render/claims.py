"""A claim, turned into the composite that Crossplane's claim controller (v1 XRD) creates for it."""

from __future__ import annotations

import hashlib
from typing import Any

from functions.common.meta import CLAIM_NAME, CLAIM_NAMESPACE
from hack.render.catalog import KindInfo

# Claim spec fields Crossplane does not copy to the composite (xcrd claim/XR machinery props,
# minus the propagated compositionRef/Selector/UpdatePolicy/RevisionSelector).
CLAIM_ONLY_SPEC_FIELDS = (
    "compositeDeletePolicy",
    "compositionRevisionRef",
    "resourceRef",
    "writeConnectionSecretToRef",
    "claimRef",
    "resourceRefs",
    "publishConnectionDetailsTo",
    "environmentConfigRefs",
)
# Kubernetes' name-suffix alphabet (k8s.io/apimachinery/pkg/util/rand), for a stable XR name.
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def xr_name_for_claim(name: str, namespace: str) -> str:
    """Crossplane names a claim's composite `<claim-name>-<5 random chars>`; make it stable."""
    digest = hashlib.sha256(f"{namespace}/{name}".encode()).digest()
    suffix = "".join(_SUFFIX_ALPHABET[b % len(_SUFFIX_ALPHABET)] for b in digest[:5])
    return f"{name[:57]}-{suffix}"


def _without_k8s_keys(m: Any) -> dict[str, str]:
    """Drop *kubernetes.io / *k8s.io keys, as the claim syncer does."""
    if not isinstance(m, dict):
        return {}
    out = {}
    for k, v in m.items():
        prefix = str(k).split("/")[0]
        if prefix.endswith(("kubernetes.io", "k8s.io")):
            continue
        out[str(k)] = v
    return out


def claim_to_composite(claim: dict[str, Any], info: KindInfo) -> dict[str, Any]:
    """The composite the claim controller (LegacyCluster XRD) creates for a claim."""
    meta = claim["metadata"]
    name, namespace = str(meta["name"]), str(meta["namespace"])
    labels = _without_k8s_keys(meta.get("labels"))
    labels.update({CLAIM_NAME: name, CLAIM_NAMESPACE: namespace})
    xr_meta: dict[str, Any] = {"name": xr_name_for_claim(name, namespace)}
    annotations = _without_k8s_keys(meta.get("annotations"))
    if annotations:
        xr_meta["annotations"] = annotations
    xr_meta["labels"] = labels
    spec = {k: v for k, v in (claim.get("spec") or {}).items() if k not in CLAIM_ONLY_SPEC_FIELDS}
    spec["claimRef"] = {
        "apiVersion": claim["apiVersion"],
        "kind": claim["kind"],
        "name": name,
        "namespace": namespace,
    }
    return {
        "apiVersion": info.xr_api_version,
        "kind": info.xr_kind,
        "metadata": xr_meta,
        "spec": spec,
    }
