"""When an observed composed resource counts as ready (functions/common/readiness.py)."""

from __future__ import annotations

from typing import Any

import pytest

from functions.common.readiness import is_ready


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
]


@pytest.mark.parametrize(("observed", "ready"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_composed_resource_readiness(observed: dict[str, Any] | None, ready: bool) -> None:
    assert is_ready(observed) is ready
