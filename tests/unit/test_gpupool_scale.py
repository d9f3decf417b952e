"""A GPUPool reads of its Nodes only what it needs, whatever else a real Node carries.

Nodes of a GPU Operator cluster's size (tests/gpupool/realnodes.py: NFD and GFD labels, status
with images and conditions, managedFields) and the Objects provider-kubernetes observes (the
whole Node in status.atProvider.manifest) must compose exactly what their names and labels
alone compose; the ceiling on a pool's size is tests/unit/test_untrusted_input.py's.
"""

from __future__ import annotations

import copy
from typing import Any

from crossplane.function import resource
from crossplane.function.proto.v1 import run_function_pb2 as fnv1

from functions.common.composer import CompositionFunction
from functions.common.kinds import GPU_POOL
from functions.gpupool.fn import compose
from tests import fnharness
from tests.fnharness import Result, run
from tests.gpupool import realnodes

SELECTOR = {"inference.ai/pool": "big"}


def pool(name: str = "big", created: str = "2026-01-02T00:00:00Z", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "inference.ai/v1alpha1",
        "kind": "GPUPool",
        "metadata": {"name": name, "creationTimestamp": created},
        "spec": {
            "nodeSelector": SELECTOR,
            "sharing": {"mode": "mig", "profiles": [{"name": "1g.10gb", "count": 4}]},
            **spec,
        },
    }


def bare(node: dict[str, Any]) -> dict[str, Any]:
    """A Node as only its name and labels."""
    meta = node["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": meta["name"], "labels": dict(meta["labels"])},
    }


def composed(res: Result) -> tuple[Any, ...]:
    return (res.resources, res.status, res.warnings, res.fatal, res.ready)


def test_a_pool_composes_the_same_from_real_nodes_as_from_their_names_and_labels() -> None:
    nodes = realnodes.pool_nodes(12, SELECTOR, seed=3)
    assert len(nodes[0]["metadata"]["labels"]) > 100  # NFD's and GFD's
    for node in nodes[::2]:  # mig-manager still busy on half of them, with an older config
        node["metadata"]["labels"] |= {
            "nvidia.com/mig.config": "big-a100-80gb-000000",
            "nvidia.com/mig.config.state": "pending",
        }
    real = run(pool(), required={"nodes": nodes})
    assert real.fatal == []
    assert len([n for n in real.resources if n.startswith("node-")]) == 12
    assert real.status["nodeStates"] == {"pending": 6, "unknown": 6}
    # The reference reads every label of the bare Nodes: the composer without the pool's trim.
    whole = CompositionFunction(GPU_POOL, compose)
    req = fnharness.request(pool(), required={"nodes": [bare(n) for n in nodes]})
    assert composed(real) == composed(Result(whole.run(req)))


def test_an_older_pool_selecting_by_an_nfd_label_keeps_its_nodes() -> None:
    # The label the rival selects on is none the pool itself reads: it must still be seen.
    nodes = realnodes.pool_nodes(3, SELECTOR, seed=3)
    rival = pool("rival", "2026-01-01T00:00:00Z")
    rival["spec"]["nodeSelector"] = {"feature.node.kubernetes.io/pci-10de.present": "true"}
    res = run(pool(), required={"nodes": nodes, "gpupools": [rival]})
    assert [n for n in res.resources if n.startswith("node-")] == []
    assert res.status["nodes"] == 0
    assert len([w for w in res.warnings if "left to the oldest, rival" in w]) == 3


def observed_objects(res: Result, nodes: list[dict[str, Any]], ready: str) -> dict[str, Any]:
    """The per-node Objects as Crossplane observes them, their Ready condition `ready`."""
    by_name = {n["metadata"]["name"]: n for n in nodes}
    out = {}
    for name, obj in res.resources.items():
        if not name.startswith("node-"):
            continue
        node = by_name[obj["spec"]["forProvider"]["manifest"]["metadata"]["name"]]
        seen = realnodes.observed_object(obj, node, pool(), name)
        seen["status"]["conditions"][1]["status"] = ready
        out[name] = seen
    return out


def test_a_node_object_is_ready_from_its_ready_condition_not_the_node_it_holds() -> None:
    nodes = realnodes.pool_nodes(4, SELECTOR, seed=5)
    first = run(pool(), required={"nodes": nodes})
    for ready, want in (("True", True), ("False", False)):
        observed = observed_objects(first, nodes, ready)
        res = run(pool(), observed=copy.deepcopy(observed), required={"nodes": nodes})
        flags = {n: r for n, r in res.ready.items() if n.startswith("node-")}
        assert len(flags) == 4
        assert set(flags.values()) == {want}


def test_a_malformed_node_object_status_is_still_reported() -> None:
    nodes = realnodes.pool_nodes(1, SELECTOR, seed=5)
    first = run(pool(), required={"nodes": nodes})
    ((name, seen),) = observed_objects(first, nodes, "True").items()
    seen["status"]["conditions"] = "not a list"
    res = run(pool(), observed={name: seen}, required={"nodes": nodes})
    assert res.ready[name] is False
    assert any("status.conditions is not a list of conditions" in w for w in res.warnings)


def test_what_the_pool_does_not_read_of_a_request_passes_through_unchanged() -> None:
    # Desired state of earlier pipeline steps and the pipeline context reach the response.
    nodes = realnodes.pool_nodes(1, SELECTOR, seed=5)
    req = fnharness.request(pool(), required={"nodes": nodes})
    earlier = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "earlier"}}
    req.desired.resources["earlier"].resource.update(earlier)
    req.context.update({"apiextensions.crossplane.io/environment": {"zone": "a"}})
    rsp = fnharness.RUNNERS["GPUPool"].run(req)
    assert [r.message for r in rsp.results if r.severity == fnv1.SEVERITY_FATAL] == []
    assert resource.struct_to_dict(rsp.desired.resources["earlier"].resource) == earlier
    assert rsp.context == req.context
