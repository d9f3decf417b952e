"""The real kube-scheduler allocates the DRA claims our functions compose, or refuses them.

function-inferenceservice composes each DRA example (bound to the example cluster's DRA pools,
through the SDK wire protocol) onto nodes of this test's own: kwok Nodes with the ResourceSlices
the NVIDIA DRA driver v25.12.0 would publish (hack/e2e/dra.py; no kubelet plugin runs here).
The composed ResourceClaimTemplate or ResourceClaim is applied as composed; the replicas are
Pods with the composed Deployment's pod template (affinity, tolerations, `resourceClaims`,
container `resources.claims`), less the model volume and its init container, which have nothing
to do with GPUs. kube-controller-manager creates the claims from templates, kube-scheduler
allocates them: the test reads `status.allocation` (node and devices) and, for a request no
node can satisfy, the scheduler's reason on the Pending pod.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml

from hack.e2e.controlplane import ControlPlane
from hack.e2e.dra import FakeDRANode, add_dra, h100, l4
from tests.e2e import requires_e2e
from tests.fnharness import example, run, with_spec

pytestmark = [pytest.mark.e2e, requires_e2e]

SELECTOR = "dra-e2e"  # pools' nodeSelector value: only this test's nodes
NODES = (
    h100("dra-e2e-h100-0", {SELECTOR: "h100"}, mig_gpus=(6, 7)),
    l4("dra-e2e-l4-0", {SELECTOR: "l4"}),
)


def pool(name: str, selector: str) -> dict[str, Any]:
    doc = with_spec(example(name), nodeSelector={SELECTOR: selector})
    return {**doc, "status": {"gpuProducts": ["NVIDIA-H100-80GB-HBM3", "NVIDIA-L4"]}}


POOLS = [
    pool("h100-exclusive-dra-pool.yaml", "h100"),
    pool("h100-mig-dra-pool.yaml", "h100"),
    pool("l4-timeslice-dra-pool.yaml", "l4"),
]


@pytest.fixture(scope="module")
def dra_cluster(cluster: ControlPlane) -> ControlPlane:
    add_dra(cluster, NODES)
    return cluster


def whole(value: Any) -> Any:
    """The function's output as the API server gets it from Crossplane: protobuf Struct numbers
    are doubles, whole ones are integers."""
    if isinstance(value, dict):
        return {k: whole(v) for k, v in value.items()}
    if isinstance(value, list):
        return [whole(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def composed(service: str, namespace: str, **changes: Any) -> dict[str, dict[str, Any]]:
    doc = with_spec(example(service), **changes)
    doc["metadata"]["namespace"] = namespace
    out = run(doc, required={"gpupools": POOLS})
    assert out.fatal == []
    return dict(whole(out.resources))


def replica_pods(deployment: dict[str, Any], replicas: int) -> list[dict[str, Any]]:
    template = copy.deepcopy(deployment["spec"]["template"])
    spec = template["spec"]
    spec.pop("initContainers", None)
    for volume in spec["volumes"]:
        if "persistentVolumeClaim" in volume:
            volume.pop("persistentVolumeClaim")
            volume["emptyDir"] = {}
    name = deployment["metadata"]["name"]
    return [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{name}-{i}",
                "namespace": deployment["metadata"]["namespace"],
                "labels": template["metadata"]["labels"],
            },
            "spec": spec,
        }
        for i in range(replicas)
    ]


def apply(cp: ControlPlane, namespace: str, docs: list[dict[str, Any]]) -> None:
    cp.namespace(namespace)
    for doc in docs:
        doc["metadata"].pop("ownerReferences", None)
    cp.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs, sort_keys=False))


def get(cp: ControlPlane, *args: str) -> dict[str, Any]:
    return dict(json.loads(cp.kubectl("get", *args, "-o", "json").stdout))


def allocations(cp: ControlPlane, namespace: str) -> dict[str, tuple[str, list[str]]]:
    """Per ResourceClaim: the node its allocation is pinned to and the devices it got."""
    out = {}
    for claim in get(cp, "resourceclaims", "-n", namespace)["items"]:
        allocation = claim["status"]["allocation"]
        (term,) = allocation["nodeSelector"]["nodeSelectorTerms"]
        (field,) = term["matchFields"]
        results = allocation["devices"]["results"]
        assert {(r["driver"], r["pool"]) for r in results} == {
            ("gpu.nvidia.com", field["values"][0])
        }
        out[claim["metadata"]["name"]] = (field["values"][0], sorted(r["device"] for r in results))
    return out


def mig_devices(node: FakeDRANode) -> list[str]:
    return sorted(d["name"] for d in node.devices() if d["attributes"]["type"]["string"] == "mig")


def whole_gpus(node: FakeDRANode) -> list[str]:
    return sorted(d["name"] for d in node.devices() if d["attributes"]["type"]["string"] == "gpu")


@pytest.mark.parametrize(
    ("service", "namespace", "shared"),
    [
        ("llama-8b-dra-exclusive.yaml", "dra-e2e-exclusive", False),
        ("qwen-dra-mig.yaml", "dra-e2e-mig", False),
        ("phi-dra-timeslice.yaml", "dra-e2e-timeslice", True),
    ],
    ids=["exclusive", "mig", "timeslice"],
)
def test_the_scheduler_allocates_each_replicas_claim_on_the_pools_node(
    dra_cluster: ControlPlane, service: str, namespace: str, shared: bool
) -> None:
    res = composed(service, namespace)
    claim, deployment = res["gpu-claim"], res["deployment"]
    replicas = deployment["spec"]["replicas"]
    pods = replica_pods(deployment, replicas)
    apply(dra_cluster, namespace, [claim, *pods])
    try:
        dra_cluster.kubectl(
            "wait",
            "-n",
            namespace,
            "--for=jsonpath={.status.phase}=Running",
            "--timeout=120s",
            *(f"pod/{p['metadata']['name']}" for p in pods),
        )
        got = allocations(dra_cluster, namespace)
        # A template gives each replica its own claim; a shared claim serves every replica.
        assert len(got) == (1 if shared else replicas), got
        nodes = {node for node, _ in got.values()}
        devices = [d for _, ds in got.values() for d in ds]
        assert len(devices) == len(set(devices)), "a device was allocated twice"
        if "mig" in service:
            assert nodes == {"dra-e2e-h100-0"}
            assert set(devices) <= set(mig_devices(NODES[0]))
            assert all("-mig-3g40gb-9-" in d for d in devices)
        elif "exclusive" in service:
            assert nodes == {"dra-e2e-h100-0"}
            assert len(devices) == replicas * 2  # gpu.count 2 per replica
            assert set(devices) <= set(whole_gpus(NODES[0]))
        else:
            assert nodes == {"dra-e2e-l4-0"}
            assert len(devices) == 1
            (shared_claim,) = get(dra_cluster, "resourceclaims", "-n", namespace)["items"]
            reserved = {r["name"] for r in shared_claim["status"]["reservedFor"]}
            assert reserved == {p["metadata"]["name"] for p in pods}
            # The driver's opaque config travels with the allocation request.
            (config,) = shared_claim["spec"]["devices"]["config"]
            assert config["opaque"]["parameters"]["sharing"]["strategy"] == "TimeSlicing"
        for p in pods:
            pod = get(dra_cluster, "pod", "-n", namespace, p["metadata"]["name"])
            assert pod["spec"]["nodeName"] in nodes
    finally:
        dra_cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_the_scheduler_refuses_a_claim_no_node_can_satisfy(dra_cluster: ControlPlane) -> None:
    namespace = "dra-e2e-too-large"
    # 16 whole H100s in one claim: the pool's node has six whole GPUs (two are in MIG mode).
    res = composed("llama-8b-dra-exclusive.yaml", namespace, **{"gpu.count": 16})
    pods = replica_pods(res["deployment"], 1)
    apply(dra_cluster, namespace, [res["gpu-claim"], *pods])
    name = pods[0]["metadata"]["name"]
    try:
        dra_cluster.kubectl(
            "wait",
            "-n",
            namespace,
            "--for=condition=PodScheduled=False",
            "--timeout=120s",
            f"pod/{name}",
        )
        pod = get(dra_cluster, "pod", "-n", namespace, name)
        assert pod["status"]["phase"] == "Pending"
        (scheduled,) = [c for c in pod["status"]["conditions"] if c["type"] == "PodScheduled"]
        assert scheduled["reason"] == "Unschedulable"
        assert "cannot allocate all claims" in scheduled["message"], scheduled["message"]
        (claim,) = get(dra_cluster, "resourceclaims", "-n", namespace)["items"]
        assert "allocation" not in claim.get("status", {})
    finally:
        dra_cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
