"""The local control plane runs the pinned Kubernetes and schedules pods onto fake GPU nodes."""

from __future__ import annotations

import json

import pytest
import yaml

from hack.e2e.controlplane import DEFAULT_NODES, ControlPlane, FakeGPUNode, pinned_versions
from tests.e2e import requires_e2e

pytestmark = [pytest.mark.e2e, requires_e2e]


def test_api_server_is_ready_and_runs_the_pinned_version(cluster: ControlPlane) -> None:
    assert cluster.get("/readyz")[0] == 200
    version = json.loads(cluster.kubectl("version", "-o", "json").stdout)
    pinned = pinned_versions()["KUBERNETES_VERSION"]
    assert version["serverVersion"]["gitVersion"] == pinned
    assert version["clientVersion"]["gitVersion"] == pinned


@pytest.mark.parametrize("node", DEFAULT_NODES, ids=lambda n: n.name)
def test_fake_gpu_node_is_ready_with_nvidia_labels_and_capacity(
    cluster: ControlPlane, node: FakeGPUNode
) -> None:
    got = json.loads(cluster.kubectl("get", "node", node.name, "-o", "json").stdout)
    labels = got["metadata"]["labels"]
    assert labels["nvidia.com/gpu.product"] == node.product
    assert labels["nvidia.com/gpu.count"] == str(node.gpus)
    ready = {c["type"]: c["status"] for c in got["status"]["conditions"]}["Ready"]
    assert ready == "True"
    allocatable = got["status"]["allocatable"]
    for name, count in node.resource_names().items():
        assert allocatable[name] == count
    # A node advertises whole GPUs or their shared/MIG replacements, never both.
    assert ("nvidia.com/gpu" in allocatable) == (not node.mig)


POD_CASES = [
    # (name, product selector, extended resource, count, the nodes it can only fit on)
    # The example claims (tests/e2e/test_claims.py) hold 10 of the two whole-H100 nodes' 16 GPUs.
    ("whole-h100", "NVIDIA-H100-80GB-HBM3", "nvidia.com/gpu", 2, {"gpu-h100-0", "gpu-h100-1"}),
    ("mig-slice", "NVIDIA-H100-80GB-HBM3", "nvidia.com/mig-3g.40gb", 1, {"gpu-h100-mig-0"}),
    ("shared-l4", "NVIDIA-L4", "nvidia.com/gpu.shared", 2, {"gpu-l4-0"}),
    (
        "oversubscribed-mig",
        "NVIDIA-A100-SXM4-80GB",
        "nvidia.com/mig-3g.40gb.shared",
        2,
        {"gpu-a100-0"},
    ),
]


@pytest.mark.parametrize(("name", "product", "resource", "count", "expected_nodes"), POD_CASES)
def test_gpu_pod_is_scheduled_onto_the_matching_fake_node_and_runs(
    cluster: ControlPlane,
    name: str,
    product: str,
    resource: str,
    count: int,
    expected_nodes: set[str],
) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"e2e-{name}", "namespace": "default"},
        "spec": {
            "nodeSelector": {"nvidia.com/gpu.product": product},
            "containers": [
                {
                    "name": "engine",
                    "image": "registry.invalid/never-pulled:0",  # kwok runs no containers
                    "resources": {"limits": {resource: str(count)}},
                }
            ],
        },
    }
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(pod))
    try:
        cluster.kubectl(
            "wait", "--for=jsonpath={.status.phase}=Running", "--timeout=60s", f"pod/e2e-{name}"
        )
        got = json.loads(cluster.kubectl("get", "pod", f"e2e-{name}", "-o", "json").stdout)
        assert got["spec"]["nodeName"] in expected_nodes
    finally:
        cluster.kubectl("delete", "pod", f"e2e-{name}", "--wait=false", check=False)
