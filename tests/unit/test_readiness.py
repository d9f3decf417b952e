"""When an observed composed resource counts as ready (functions/common/readiness.py)."""

from __future__ import annotations

from typing import Any

import pytest

from functions.common.readiness import RULES, Cluster, is_ready, storage_classes


def ready_condition(status: str) -> dict[str, Any]:
    return {"conditions": [{"type": "Ready", "status": status}]}


OBJECT = {"apiVersion": "kubernetes.crossplane.io/v1alpha2", "kind": "Object"}

CASES: list[tuple[str, dict[str, Any] | None, bool]] = [
    ("not observed yet", None, False),
    (
        "deployment with all replicas available",
        {
            "kind": "Deployment",
            "spec": {"replicas": 2},
            "status": {
                "availableReplicas": 2,
                "conditions": [{"type": "Available", "status": "True"}],
            },
        },
        True,
    ),
    (
        "deployment short of replicas",
        {"kind": "Deployment", "spec": {"replicas": 2}, "status": {"availableReplicas": 1}},
        False,
    ),
    (
        "completed job",
        {"kind": "Job", "status": {"conditions": [{"type": "Complete", "status": "True"}]}},
        True,
    ),
    ("running job", {"kind": "Job", "status": {}}, False),
    ("provider-kubernetes object applied", {**OBJECT, "status": ready_condition("True")}, True),
    # Created but not yet applied by the provider: the node label or ConfigMap is not there yet.
    ("provider-kubernetes object just created", {**OBJECT}, False),
    ("provider-kubernetes object failing", {**OBJECT, "status": ready_condition("False")}, False),
    ("scaledobject ready", {"kind": "ScaledObject", "status": ready_condition("True")}, True),
    ("scaledobject without keda", {"kind": "ScaledObject"}, False),
    ("service exists", {"apiVersion": "v1", "kind": "Service"}, True),
    (
        "deployment scaled to zero",
        {"kind": "Deployment", "spec": {"replicas": 0}, "status": {}},
        True,
    ),
    (
        # The controller has not acted on the latest spec: its counts describe the old one.
        "deployment whose status is for an older generation",
        {
            "kind": "Deployment",
            "metadata": {"generation": 3},
            "spec": {"replicas": 2},
            "status": {
                "observedGeneration": 2,
                "availableReplicas": 2,
                "conditions": [{"type": "Available", "status": "True"}],
            },
        },
        False,
    ),
    (
        "daemonset ready on every selected node",
        {
            "kind": "DaemonSet",
            "metadata": {"generation": 2},
            "status": {
                "observedGeneration": 2,
                "desiredNumberScheduled": 3,
                "updatedNumberScheduled": 3,
                "numberReady": 3,
            },
        },
        True,
    ),
    (
        # Ready pods of the old template do not count as the new one rolled out.
        "daemonset still rolling out",
        {
            "kind": "DaemonSet",
            "status": {"desiredNumberScheduled": 3, "updatedNumberScheduled": 2, "numberReady": 3},
        },
        False,
    ),
    (
        "daemonset with a pod not ready",
        {
            "kind": "DaemonSet",
            "status": {"desiredNumberScheduled": 3, "updatedNumberScheduled": 3, "numberReady": 2},
        },
        False,
    ),
    (
        "daemonset selecting no node",
        {"kind": "DaemonSet", "status": {"desiredNumberScheduled": 0}},
        False,
    ),
    ("daemonset without status", {"kind": "DaemonSet", "status": "odd"}, False),
    (
        "statefulset with all replicas ready",
        {"kind": "StatefulSet", "spec": {"replicas": 3}, "status": {"readyReplicas": 3}},
        True,
    ),
    (
        "statefulset short of ready replicas",
        {"kind": "StatefulSet", "spec": {"replicas": 3}, "status": {"readyReplicas": 2}},
        False,
    ),
    (
        "statefulset whose status is for an older generation",
        {
            "kind": "StatefulSet",
            "metadata": {"generation": 2},
            "spec": {"replicas": 1},
            "status": {"observedGeneration": 1, "readyReplicas": 1},
        },
        False,
    ),
    (
        "failed job",
        {"kind": "Job", "status": {"conditions": [{"type": "Failed", "status": "True"}]}},
        False,
    ),
    ("bound claim", {"kind": "PersistentVolumeClaim", "status": {"phase": "Bound"}}, True),
    ("lost claim", {"kind": "PersistentVolumeClaim", "status": {"phase": "Lost"}}, False),
    (
        # Without the class's binding mode a pending claim may be stuck (no provisioner, no
        # matching volume): not ready.
        "pending claim of an unknown class",
        {"kind": "PersistentVolumeClaim", "spec": {}, "status": {"phase": "Pending"}},
        False,
    ),
    (
        "object with a malformed status",
        {"kind": "Deployment", "spec": {"replicas": "two"}, "status": ["not", "a", "map"]},
        False,
    ),
]


@pytest.mark.parametrize(("observed", "ready"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_composed_resource_readiness(observed: dict[str, Any] | None, ready: bool) -> None:
    assert is_ready(observed) is ready


def test_every_kind_with_a_status_to_wait_for_has_a_rule() -> None:
    assert sorted(RULES) == [
        "DaemonSet",
        "Deployment",
        "Job",
        "PersistentVolumeClaim",
        "ScaledObject",
        "StatefulSet",
    ]


LOCAL = {
    "apiVersion": "storage.k8s.io/v1",
    "kind": "StorageClass",
    "metadata": {"name": "local-nvme"},
    "volumeBindingMode": "WaitForFirstConsumer",
}
STANDARD = {
    "apiVersion": "storage.k8s.io/v1",
    "kind": "StorageClass",
    "metadata": {
        "name": "standard",
        "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
    },
    "volumeBindingMode": "Immediate",
}
DELAYED_DEFAULT = {
    **LOCAL,
    "metadata": {
        "name": "gp3",
        "creationTimestamp": "2026-02-01T00:00:00Z",
        "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
    },
}


def pending(storage_class: str | None = None) -> dict[str, Any]:
    spec = {"storageClassName": storage_class} if storage_class else {}
    return {"kind": "PersistentVolumeClaim", "spec": spec, "status": {"phase": "Pending"}}


@pytest.mark.parametrize(
    ("claim", "classes", "ready"),
    [
        # WaitForFirstConsumer: pending until the pod composed beside it is scheduled.
        (pending("local-nvme"), [LOCAL, STANDARD], True),
        # Immediate: a pending claim is waiting for a volume that may never come.
        (pending("standard"), [LOCAL, STANDARD], False),
        # No class named: the default class decides.
        (pending(), [LOCAL, STANDARD], False),
        (pending(), [LOCAL, STANDARD, DELAYED_DEFAULT], True),
        # StorageClasses not read yet.
        (pending("local-nvme"), [], False),
    ],
    ids=["delayed-class", "immediate-class", "immediate-default", "delayed-default", "unknown"],
)
def test_a_pending_claim_is_ready_only_when_its_class_binds_on_first_consumer(
    claim: dict[str, Any], classes: list[dict[str, Any]], ready: bool
) -> None:
    assert is_ready(claim, storage_classes(classes)) is ready


def test_the_newest_of_several_default_classes_is_the_default() -> None:
    newer = {**STANDARD, "metadata": {**STANDARD["metadata"], "creationTimestamp": "2026-03-01"}}
    assert storage_classes([DELAYED_DEFAULT, newer]) == Cluster(frozenset({"gp3"}), "standard")
