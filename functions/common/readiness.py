"""When is an observed composed resource ready? Crossplane never infers it for us."""

from __future__ import annotations

from typing import Any


def _condition(obj: dict[str, Any], typ: str) -> str | None:
    for cond in obj.get("status", {}).get("conditions", []) or []:
        if cond.get("type") == typ:
            return str(cond.get("status"))
    return None


def _current(obj: dict[str, Any]) -> bool:
    generation = obj.get("metadata", {}).get("generation")
    observed = obj.get("status", {}).get("observedGeneration")
    return generation is None or observed is None or observed >= generation


def is_ready(observed: dict[str, Any] | None) -> bool:
    """Ready means serving what was asked, not merely created."""
    if not observed:
        return False
    kind = observed.get("kind")
    spec = observed.get("spec", {})
    status = observed.get("status", {})
    if kind == "Deployment":
        want = spec.get("replicas", 1)
        return (
            _current(observed)
            and status.get("availableReplicas", 0) >= want
            and (want == 0 or _condition(observed, "Available") == "True")
        )
    if kind == "StatefulSet":
        want = spec.get("replicas", 1)
        return _current(observed) and status.get("readyReplicas", 0) >= want
    if kind == "ScaledObject" or _managed(observed):
        return _condition(observed, "Ready") == "True"
    if kind == "Job":
        return _condition(observed, "Complete") == "True"
    if kind == "PersistentVolumeClaim":
        return (
            status.get("phase") == "Bound" or "volumeName" in spec or _wait_for_consumer(observed)
        )
    # Objects with no status to wait for (Services, ConfigMaps, Secrets, PDBs, ...) are ready
    # once they exist.
    return True


def _managed(obj: dict[str, Any]) -> bool:
    # Crossplane managed resources (provider-kubernetes Objects) report Ready once the provider
    # has applied and observed them; until then they only exist as a request.
    return str(obj.get("apiVersion", "")).startswith("kubernetes.crossplane.io/")


def _wait_for_consumer(pvc: dict[str, Any]) -> bool:
    # WaitForFirstConsumer claims stay Pending until a pod uses them; that is not a fault.
    return bool(pvc.get("status", {}).get("phase") == "Pending")
