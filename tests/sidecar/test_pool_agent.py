"""The GPUPool's metrics agent as rendered, run against each example pool's nodes: what it
scrapes is what the pool's status says its InferenceServices requested.

For every example GPUPool (whole GPUs, MIG mixed, time-sliced and MPS `.shared` resources, MIG
`.shared`), the GPUPool function renders the pool with its example nodes and the
InferenceServices bound to it (examples/required; pools whose example binds none get one
InferenceService per advertised resource, made here). Then, per node the pool configures:

- a FAKE kubelet (tests/sidecar/kubelet.py: the PodResources gRPC service on a unix socket)
  reports the bound replicas' pods holding devices named as the NVIDIA device plugin names them
  (`GPU-<uuid>` whole GPUs, `MIG-<uuid>` MIG devices, `<id>::<n>` time-slicing/MPS replicas,
  k8s-device-plugin `AnnotatedID`), placed on the nodes in turn;
- the sidecar runs as a process with the environment of the rendered DaemonSet's container
  (`NODE_NAME` resolved as the downward API would), except what only a real node has: the
  socket path is the fake kubelet's, the bind addresses free loopback ports, and NVML answers
  come from the recorded fixtures in tests/fixtures/nvml (no GPU here).

The sum over the pool's agents of `inference_gpu_allocations_total{resource}` must equal
`status.capacity[resource].requested`, and every sample must carry the node and pool labels.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fnharness import ROOT, Result, example, run
from tests.sidecar import procs
from tests.sidecar.kubelet import FakeKubelet

# DRA pools run no agent (tests/unit/test_gpupool_metricsagent.py says so for them).
POOLS = sorted(
    p.stem
    for p in (ROOT / "examples" / "claims").glob("*-pool.yaml")
    if example(p.name)["spec"].get("allocation", "device-plugin") == "device-plugin"
)


def required(pool: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The example's Nodes and the InferenceServices bound to it, as a GPUPool (cluster-scoped,
    claims form when read bare) requires them: XInferenceService composites."""
    docs = list(yaml.safe_load_all((ROOT / "examples" / "required" / f"{pool}.yaml").read_text()))
    nodes = [d for d in docs if d and d["kind"] == "Node"]
    services = [d for d in docs if d and d["kind"] == "XInferenceService"]
    return nodes, services


def made_up_services(name: str, res: Result) -> list[dict[str, Any]]:
    """One InferenceService per resource the pool advertises, two replicas of one device."""
    return [
        {
            "apiVersion": "inference.ai/v1alpha1",
            "kind": "XInferenceService",
            "metadata": {
                "name": f"svc-{i}",
                "labels": {
                    "crossplane.io/claim-name": f"svc-{i}",
                    "crossplane.io/claim-namespace": "team-a",
                },
            },
            "spec": {"model": {"name": "org/m"}, "replicas": 2, "gpu": {"poolRef": {"name": name}}},
            "status": {"gpuResource": resource, "gpusPerReplica": 1},
        }
        for i, resource in enumerate(sorted(res.status["capacity"]))
    ]


def device_ids(resource: str, node: str, count: int, shares: int) -> list[str]:
    """`count` schedulable devices of `resource` on `node`, named as the device plugin does."""
    kind = "MIG" if "/mig-" in resource else "GPU"
    physical = count // shares
    bases = [f"{kind}-{node}-{resource.split('/')[1]}-{i:02d}" for i in range(physical)]
    if not resource.endswith(".shared"):
        return bases
    return [f"{base}::{n}" for base in bases for n in range(shares)]


def rendered_env(res: Result, node: str) -> dict[str, str]:
    """The agent container's environment on `node`, as the kubelet would give it."""
    ds = res.resources["metrics-agent"]["spec"]["forProvider"]["manifest"]
    (container,) = ds["spec"]["template"]["spec"]["containers"]
    out = {}
    for var in container["env"]:
        if "value" in var:
            out[var["name"]] = var["value"]
        else:
            assert var["valueFrom"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}, var
            out[var["name"]] = node
    return out


@pytest.mark.parametrize("pool", POOLS)
def test_scraped_allocations_equal_what_the_pool_says_is_requested(
    pool: str, tmp_path: Path
) -> None:
    doc = example(f"{pool}.yaml")
    name = doc["metadata"]["name"]
    nodes, services = required(pool)
    if not services:
        services = made_up_services(name, run(doc, required={"nodes": nodes}))
    res = run(doc, required={"nodes": nodes, "inferenceservices": services})
    assert res.fatal == []
    # Numbers come back through a protobuf Struct as floats.
    capacity = {r: {k: int(v) for k, v in c.items()} for r, c in res.status["capacity"].items()}
    requested = {r: c["requested"] for r, c in capacity.items() if c["requested"]}
    assert requested, "the pool's status must say something is requested"
    configured = sorted(
        o["spec"]["forProvider"]["manifest"]["metadata"]["name"]
        for k, o in res.resources.items()
        if k.startswith("node-")
    )
    assert configured, "the pool configures none of its nodes"

    # Each configured node advertises status.resources (the example nodes are alike).
    kubelets = {n: FakeKubelet(tmp_path / f"{n}.sock") for n in configured}
    free: dict[str, dict[str, list[str]]] = {}
    for node, kubelet in kubelets.items():
        kubelet.node = {
            r: device_ids(
                r, node, int(count), capacity[r]["schedulable"] // capacity[r]["physical"]
            )
            for r, count in res.status["resources"].items()
        }
        free[node] = {r: list(ids) for r, ids in kubelet.node.items()}
    # The bound replicas' pods, placed on the nodes in turn.
    turn = 0
    for svc in sorted(services, key=lambda s: s["metadata"]["name"]):
        resource, per_replica = svc["status"]["gpuResource"], svc["status"]["gpusPerReplica"]
        claim = svc["metadata"]["labels"]
        for replica in range(int(svc["spec"]["replicas"])):
            node = configured[turn % len(configured)]
            turn += 1
            ids, free[node][resource] = (
                free[node][resource][:per_replica],
                free[node][resource][per_replica:],
            )
            assert len(ids) == per_replica, f"{node} has no {per_replica} x {resource} left"
            kubelets[node].pods.append(
                (
                    claim["crossplane.io/claim-namespace"],
                    f"{claim['crossplane.io/claim-name']}-{replica}",
                    "engine",
                    resource,
                    ids,
                )
            )

    fixture = "a100-mig.json" if doc["spec"]["sharing"]["mode"] == "mig" else "h100-whole.json"
    scraped: Counter[str] = Counter()
    with contextlib.ExitStack() as stack:
        agents = {}
        for node, kubelet in kubelets.items():
            kubelet.start()
            stack.callback(kubelet.stop)
            env = rendered_env(res, node)
            assert env["POD_RESOURCES_SOCKET"] == "/var/lib/kubelet/pod-resources/kubelet.sock"
            env["POD_RESOURCES_SOCKET"] = str(kubelet.socket)
            env["NVML_FIXTURE"] = str(procs.FIXTURES / fixture)
            for bind in ("METRICS_BIND_ADDRESS", "HEALTH_PROBE_BIND_ADDRESS"):
                env.pop(bind)  # free loopback ports instead (procs.sidecar_proc)
            agents[node] = procs.sidecar_proc(tmp_path, env)
            stack.enter_context(procs.running(agents[node].proc))
        for node, agent in agents.items():
            procs.wait_sidecar(agent)
            m = agent.scrape()
            labels = {"node": node, "inference_ai_gpupool": name}
            assert m.get("inference_pod_resources_up", **labels) == 1
            assert m.get("inference_gpu_up", **labels) == 1
            assert m.all("inference_gpu_memory_total_bytes", **labels)
            for series, value in m.all("inference_gpu_allocations_total"):
                assert series.items() >= labels.items(), series
                scraped[series["resource"]] += int(value)
            for series, _ in m.all("inference_gpu_allocation_info", **labels):
                assert series["uuid"] == series["device_id"].split("::")[0]
    assert dict(scraped) == requested
