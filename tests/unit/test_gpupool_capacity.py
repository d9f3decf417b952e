"""GPUPool's node ownership, MIG planning and capacity modules, each on its own
(functions/gpupool/nodes.py, planning.py, capacity.py)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from functions.common import peers
from functions.common.api.gpupool import GPUPoolSpec
from functions.common.peers import GPUPoolPeer, InferenceServicePeer
from functions.gpupool import capacity
from functions.gpupool.nodes import Node, owned, read_nodes
from functions.gpupool.planning import plan_mig

A100 = "NVIDIA-A100-SXM4-80GB"


def node(name: str, gpus: int = 8, product: str = A100, **labels: str) -> Node:
    meta = {"nvidia.com/gpu.product": product, "nvidia.com/gpu.count": str(gpus), **labels}
    (found,) = read_nodes([{"metadata": {"name": name, "labels": meta}}])
    return found


def pool(name: str, created: str, selector: dict[str, str]) -> GPUPoolPeer:
    doc = {
        "metadata": {"name": name, "creationTimestamp": created},
        "spec": {"nodeSelector": selector},
    }
    (found,) = peers.gpu_pools([doc]).found
    return found


def service(name: str, status: dict[str, Any], **spec: Any) -> InferenceServicePeer:
    doc = {
        "kind": "InferenceService",
        "metadata": {"name": name, "namespace": "team-a"},
        "spec": {"model": {"name": "org/m"}, **spec},
        "status": status,
    }
    (found,) = peers.inference_services([doc]).found
    return found


def spec(**fields: Any) -> GPUPoolSpec:
    return GPUPoolSpec.model_validate({"nodeSelector": {"gpu": "a100"}, **fields})


MIG = spec(
    sharing={"mode": "mig", "profiles": [{"name": "3g.40gb", "count": 2}]},
    oversubscription={"enabled": True, "ratio": "2"},
)


def test_a_node_several_pools_select_belongs_to_the_oldest() -> None:
    nodes = [node("shared", gpu="a100", team="x"), node("mine", gpu="a100")]
    older = pool("older", "2026-01-01T00:00:00Z", {"team": "x"})
    mine, warnings = owned("young", "2026-02-01T00:00:00Z", nodes, [older])
    assert [n.name for n in mine] == ["mine"]
    assert warnings == [
        "node shared is also selected by GPUPool older; it is left to the oldest, older, and "
        "not configured here; make the pools' nodeSelectors disjoint"
    ]
    young = pool("young", "2026-02-01T00:00:00Z", {"gpu": "a100"})
    mine, warnings = owned("older", "2026-01-01T00:00:00Z", nodes[:1], [older, young])
    assert [n.name for n in mine] == ["shared"]
    assert warnings == [
        "node shared is also selected by GPUPool young; it stays with this pool, the oldest; "
        "make the pools' nodeSelectors disjoint"
    ]


def test_unlabelled_nodes_are_read_but_not_wired() -> None:
    (bare,) = read_nodes([{"metadata": {"name": "n", "labels": {"nvidia.com/gpu.count": "x"}}}])
    assert (bare.model, bare.gpus, bare.wired, bare.mig_state) == (None, None, False, "unknown")


def test_services_bound_to_the_pool_request_replicas_times_devices() -> None:
    services = [
        # Bound by the InferenceService function (status.pool) and scaled by its autoscaler.
        service(
            "a",
            {
                "pool": "p",
                "gpuResource": "nvidia.com/gpu",
                "gpusPerReplica": 2,
                "desiredReplicas": 3,
            },
            replicas=1,
        ),
        # Named in its spec, not bound yet: the spec's replicas.
        service("b", {"gpuResource": "nvidia.com/gpu"}, replicas=2, gpu={"poolRef": {"name": "p"}}),
        service("c", {"pool": "other", "gpuResource": "nvidia.com/gpu"}),
        service("d", {"pool": "p"}),  # no resource reported yet: nothing counted
    ]
    assert capacity.bound_requests("p", services) == Counter({"nvidia.com/gpu": 8})


def test_capacity_multiplies_shared_devices_and_subtracts_requests() -> None:
    nodes = [node("a", gpus=4)]
    plan = plan_mig(MIG, "p", nodes)
    requested = Counter({"nvidia.com/mig-3g.40gb.shared": 5, "nvidia.com/mig-7g.80gb": 1})
    assert capacity.capacity(MIG, nodes, plan.models, 2, requested) == {
        "nvidia.com/gpu": {"physical": 3, "schedulable": 3, "requested": 0, "available": 3},
        "nvidia.com/mig-3g.40gb.shared": {
            "physical": 2,
            "schedulable": 4,
            "requested": 5,
            "available": -1,
        },
        # Requested but not offered: zero capacity, so the shortfall shows.
        "nvidia.com/mig-7g.80gb": {
            "physical": 0,
            "schedulable": 0,
            "requested": 1,
            "available": -1,
        },
    }


def test_before_any_node_is_known_a_mig_pool_reports_what_one_node_must_expose() -> None:
    plan = plan_mig(MIG, "p", [])
    assert capacity.per_node_resources(MIG, [], plan, 2) == {"nvidia.com/mig-3g.40gb.shared": 4}
    assert capacity.per_node_resources(spec(), [], None, 2) == {}


@pytest.mark.parametrize(
    ("states", "status", "reason", "message"),
    [
        ({"a": "success", "b": "success"}, "True", "Success", "2 node(s) report success"),
        ({"a": "success", "b": "pending"}, "False", "Pending", "waiting for mig-manager on b"),
        (
            {"a": "failed", "b": "pending"},
            "False",
            "Failed",
            "mig-manager failed on a (nvidia.com/mig.config.state=failed); see the "
            "nvidia-mig-manager logs on those nodes",
        ),
    ],
)
def test_mig_condition_follows_mig_managers_state_labels(
    states: dict[str, str], status: str, reason: str, message: str
) -> None:
    nodes = [
        node(n, **{"nvidia.com/mig.config.state": s, "nvidia.com/mig.config": "cfg"})
        for n, s in states.items()
    ]
    cond = capacity.mig_condition(nodes, dict.fromkeys(states, "cfg"))
    assert (cond.status, cond.reason, cond.message) == (status, reason, message)


def test_a_node_still_on_an_older_config_is_pending_even_when_it_reports_success() -> None:
    nodes = [
        node("a", **{"nvidia.com/mig.config.state": "success", "nvidia.com/mig.config": "old"})
    ]
    assert capacity.mig_condition(nodes, {"a": "new"}).reason == "Pending"
