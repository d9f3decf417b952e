"""When is an observed composed resource ready? Crossplane never infers it for us.

One rule per kind (`RULES`): ready means serving what was asked, not merely created. A kind
without a rule (Service, ConfigMap, Secret, PodDisruptionBudget, ...) has no status to wait for
and is ready once it exists. Crossplane managed resources (provider-kubernetes Objects) follow
their provider's Ready condition.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"


@dataclass(frozen=True)
class Cluster:
    """What an object's readiness may depend on besides the object itself."""

    delayed_binding: frozenset[str] = frozenset()
    """StorageClasses with volumeBindingMode WaitForFirstConsumer."""
    default_class: str | None = None
    """The StorageClass a claim without storageClassName gets."""


def storage_classes(objs: Iterable[Mapping[str, Any]]) -> Cluster:
    """The binding facts of the cluster's StorageClasses (as required resources)."""
    delayed, defaults = set(), []
    for sc in objs:
        meta = _dict(sc.get("metadata"))
        name = str(meta.get("name") or "")
        if sc.get("volumeBindingMode") == "WaitForFirstConsumer":
            delayed.add(name)
        if _dict(meta.get("annotations")).get(DEFAULT_CLASS_ANNOTATION) == "true":
            defaults.append((str(meta.get("creationTimestamp") or ""), name))
    # With several default classes the API server gives new claims the newest.
    return Cluster(frozenset(delayed), max(defaults)[1] if defaults else None)


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


MAX_COUNT = 2**31 - 1  # replicas and generations are int32/int64 in the API; int32 bounds both


def count(value: Any) -> int | None:
    """A replica count or generation as the API server writes it (a whole number from 0 to
    2**31-1; Struct numbers arrive as floats), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        return None
    number = int(value)
    return number if 0 <= number <= MAX_COUNT else None


def _number(value: Any, default: int = 0) -> int:
    found = count(value)
    return default if found is None else found


def replica_count(observed: Mapping[str, Any] | None, part: str, key: str) -> int | None:
    """`observed[part][key]` as a count (see `count`), None when absent or not a count."""
    return count(_dict(_dict(observed).get(part)).get(key))


COUNTS = (
    ("metadata", "generation"),
    ("spec", "replicas"),
    ("status", "observedGeneration"),
    ("status", "replicas"),
    ("status", "availableReplicas"),
    ("status", "readyReplicas"),
)


def problem(observed: Mapping[str, Any] | None) -> str | None:
    """Why an observed object does not have the shape its kind's API gives it (the fields the
    readiness rules and the functions read), or None. Such an object is never ready."""
    if not observed:
        return None
    for part in ("metadata", "spec", "status"):
        if part in observed and not isinstance(observed[part], Mapping):
            return f"{part} is not an object"
    conditions = _dict(observed.get("status")).get("conditions")
    if conditions is not None and not (
        isinstance(conditions, list) and all(isinstance(c, Mapping) for c in conditions)
    ):
        return "status.conditions is not a list of conditions"
    for part, key in COUNTS:
        value = _dict(observed.get(part)).get(key)
        if value is not None and count(value) is None:
            return f"{part}.{key} is not a count from 0 to {MAX_COUNT}"
    return None


def condition(obj: Mapping[str, Any], typ: str) -> str | None:
    conditions = _dict(obj.get("status")).get("conditions")
    for cond in conditions if isinstance(conditions, list) else []:
        if isinstance(cond, Mapping) and cond.get("type") == typ:
            return str(cond.get("status"))
    return None


def current(obj: Mapping[str, Any]) -> bool:
    """Whether the controller has seen the latest spec (status.observedGeneration)."""
    generation = _dict(obj.get("metadata")).get("generation")
    observed = _dict(obj.get("status")).get("observedGeneration")
    if generation is None or observed is None:
        return True
    return _number(observed) >= _number(generation)


def deployment(obj: Mapping[str, Any], _: Cluster) -> bool:
    want = _number(_dict(obj.get("spec")).get("replicas"), 1)
    return (
        current(obj)
        and _number(_dict(obj.get("status")).get("availableReplicas")) >= want
        and (want == 0 or condition(obj, "Available") == "True")
    )


def stateful_set(obj: Mapping[str, Any], _: Cluster) -> bool:
    want = _number(_dict(obj.get("spec")).get("replicas"), 1)
    return current(obj) and _number(_dict(obj.get("status")).get("readyReplicas")) >= want


def daemon_set(obj: Mapping[str, Any], _: Cluster = Cluster()) -> bool:
    """The current pod template runs and is ready on every node the DaemonSet selects; a
    DaemonSet that selects no node is not ready (it serves nothing)."""
    status = _dict(obj.get("status"))
    want = _number(status.get("desiredNumberScheduled"))
    return (
        current(obj)
        and want > 0
        and _number(status.get("updatedNumberScheduled")) >= want
        and _number(status.get("numberReady")) >= want
    )


def job(obj: Mapping[str, Any], _: Cluster) -> bool:
    return condition(obj, "Complete") == "True"


def ready_condition(obj: Mapping[str, Any], _: Cluster) -> bool:
    return condition(obj, "Ready") == "True"


def persistent_volume_claim(obj: Mapping[str, Any], cluster: Cluster) -> bool:
    """Bound; or Pending on a class that binds only once a pod uses the claim (that is not a
    fault: the pod that will use it is composed beside it)."""
    phase = _dict(obj.get("status")).get("phase")
    if phase == "Bound":
        return True
    if phase != "Pending":
        return False
    storage_class = _dict(obj.get("spec")).get("storageClassName") or cluster.default_class
    return storage_class in cluster.delayed_binding


Rule = Callable[[Mapping[str, Any], Cluster], bool]
RULES: Mapping[str, Rule] = {
    "Deployment": deployment,
    "StatefulSet": stateful_set,
    "DaemonSet": daemon_set,
    "Job": job,
    "PersistentVolumeClaim": persistent_volume_claim,
    "ScaledObject": ready_condition,
}
MANAGED_API_GROUPS = ("kubernetes.crossplane.io/",)
"""Crossplane managed resources (provider-kubernetes Objects) report Ready once the provider has
applied and observed them; until then they only exist as a request."""


def is_ready(observed: Mapping[str, Any] | None, cluster: Cluster = Cluster()) -> bool:
    if not observed or problem(observed):
        return False
    if str(observed.get("apiVersion", "")).startswith(MANAGED_API_GROUPS):
        return ready_condition(observed, cluster)
    rule = RULES.get(str(observed.get("kind")))
    return rule(observed, cluster) if rule else True
