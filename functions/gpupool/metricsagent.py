"""The node metrics agent: the inference-sidecar in node mode on every node the pool owns.

A DaemonSet in gpu-operator (beside the GPU Operator's own node agents), its ServiceAccount and
a PodMonitor, each applied through a provider-kubernetes Object like the rest of the pool's
wiring. The DaemonSet selects the pool's nodeSelector plus `inference.ai/gpupool=<pool>`, the
label the pool's node Objects apply to the nodes it owns (the oldest pool owns a node several
select, nodes.owned): a node runs one agent, its owner's, never two pools'.

NVML reaches the agent as it reaches dcgm-exporter under the GPU Operator: the `nvidia`
RuntimeClass with `NVIDIA_VISIBLE_DEVICES=all` (utility capability only), without a GPU
resource request; the kubelet's PodResources socket is mounted read-only. It is not privileged
but runs as uid 0 with no capabilities (security.root_without_capabilities: the socket is
root's). It leaves a node while mig-manager reconfigures MIG there, as the operator's own
monitoring agent does, so as not to hold NVML open through the repartitioning.

Its readiness is reported (status.metricsAgent, condition MetricsAgentReady) but does not gate
the pool's: metrics are not what the pool serves, and an image the nodes cannot pull must not
make every pool unready. The Objects are ready once applied.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from crossplane.function import resource

from functions.common import exporter
from functions.common.api.gpupool import GPUPoolSpec
from functions.common.meta import Owner, child_name
from functions.common.readiness import daemon_set
from functions.common.security import root_without_capabilities
from functions.gpupool.wiring import GPU_OPERATOR_NAMESPACE, provider_object
from sidecar.contract import NODE_NAME_ENV, POOL_ENV

COMPONENT = "gpu-metrics"
POOL_LABEL = "inference.ai/gpupool"
"""Node label naming the pool that owns (configures) the node; the agent selects it."""
DAEMONSET = "metrics-agent"
SERVICE_ACCOUNT = "metrics-agent-serviceaccount"
POD_MONITOR = "metrics-agent-podmonitor"
CONDITION = "MetricsAgentReady"
POD_RESOURCES_DIR = "/var/lib/kubelet/pod-resources"
METRICS_PORT = 8080
HEALTH_PORT = 8081
# mig-manager sets the GPU Operator's nvidia.com/gpu.deploy.<agent> labels to this value while
# it repartitions a node, so the operator's agents let go of the GPUs (nvidia-sharing ref 6.2).
MIG_PAUSE_LABEL = "nvidia.com/gpu.deploy.dcgm-exporter"
MIG_PAUSED = "paused-for-mig-change"
GPU_TAINT = "nvidia.com/gpu"
MEMORY_REQUEST = "64Mi"


def agent_name(owner: Owner) -> str:
    """The DaemonSet, ServiceAccount and PodMonitor name in gpu-operator."""
    return owner.child(COMPONENT)


def _metadata(owner: Owner, name: str) -> dict[str, Any]:
    return {"name": name, "namespace": GPU_OPERATOR_NAMESPACE, "labels": owner.labels(COMPONENT)}


def node_selector(owner: Owner, spec: GPUPoolSpec) -> dict[str, str]:
    return {**dict(sorted(spec.nodeSelector.items())), POOL_LABEL: owner.child()}


def container(owner: Owner, spec: GPUPoolSpec) -> dict[str, Any]:
    agent = spec.metricsAgent
    env: list[dict[str, Any]] = [
        {"name": "SIDECAR_MODE", "value": "node"},
        {"name": "GPU_METRICS", "value": "auto"},
        {"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"},
        {"name": "NVIDIA_DRIVER_CAPABILITIES", "value": "utility"},
        {"name": "POD_RESOURCES_SOCKET", "value": f"{POD_RESOURCES_DIR}/kubelet.sock"},
        {"name": NODE_NAME_ENV, "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": POOL_ENV, "value": owner.name},
    ]
    return exporter.container(
        name=COMPONENT,
        image=agent.image,
        metrics_port=METRICS_PORT,
        health_port=HEALTH_PORT,
        env=env,
        # Node mode measured at 56 MiB RSS (NVML fixture, fake kubelet, 200 scrapes).
        memory_request=MEMORY_REQUEST,
        security_context=root_without_capabilities(),
        volume_mounts=[{"name": "pod-resources", "mountPath": POD_RESOURCES_DIR, "readOnly": True}],
    )


def daemonset_manifest(owner: Owner, spec: GPUPoolSpec) -> dict[str, Any]:
    name = agent_name(owner)
    pod: dict[str, Any] = {
        "serviceAccountName": name,
        # It never calls the API server.
        "automountServiceAccountToken": False,
        "nodeSelector": node_selector(owner, spec),
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {
                                    "key": MIG_PAUSE_LABEL,
                                    "operator": "NotIn",
                                    "values": [MIG_PAUSED],
                                }
                            ]
                        }
                    ]
                }
            }
        },
        "tolerations": [{"key": GPU_TAINT, "operator": "Exists", "effect": "NoSchedule"}],
        "containers": [container(owner, spec)],
        "volumes": [
            {
                "name": "pod-resources",
                "hostPath": {"path": POD_RESOURCES_DIR, "type": "Directory"},
            }
        ],
    }
    if spec.metricsAgent.runtimeClassName:
        pod["runtimeClassName"] = spec.metricsAgent.runtimeClassName
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": _metadata(owner, name),
        "spec": {
            "selector": {"matchLabels": owner.selector(COMPONENT)},
            "template": {"metadata": {"labels": owner.labels(COMPONENT)}, "spec": pod},
        },
    }


def resources(owner: Owner, spec: GPUPoolSpec) -> dict[str, dict[str, Any]]:
    """The agent's Objects by composition resource name; none when it is turned off."""
    if not spec.metricsAgent.enabled:
        return {}
    name = agent_name(owner)
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _metadata(owner, name),
        "automountServiceAccountToken": False,
    }
    # honorLabels: the agent's own pod/namespace labels (inference_gpu_allocation_info) name
    # the pods holding the devices, not the agent's pod.
    monitor = exporter.pod_monitor(
        _metadata(owner, name),
        owner.selector(COMPONENT),
        [exporter.endpoint(exporter.METRICS_PORT_NAME, exporter.METRICS_PATH, honorLabels=True)],
    )
    every = ["*"]  # created, updated and deleted with the pool
    return {
        SERVICE_ACCOUNT: provider_object(
            owner, child_name(name, "sa"), account, every, component=COMPONENT
        ),
        DAEMONSET: provider_object(
            owner, name, daemonset_manifest(owner, spec), every, component=COMPONENT
        ),
        POD_MONITOR: provider_object(
            owner, child_name(name, "monitor"), monitor, every, component=COMPONENT
        ),
    }


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _count(value: Any) -> int:
    """A non-negative whole number (numbers arrive as floats through protobuf Structs); else 0."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return 0
    return int(value) if value > 0 and value == int(value) else 0


@dataclass(frozen=True)
class Report:
    status: dict[str, Any] | None
    condition: resource.Condition

    def fields(self) -> dict[str, Any]:
        """The pool's status.metricsAgent, where there is one."""
        return {} if self.status is None else {"metricsAgent": self.status}


DRA_UNSUPPORTED = (
    "spec.metricsAgent: no metrics agent runs on an allocation dra pool yet (the agent follows "
    f"the {POOL_LABEL} node label, which only device-plugin pools apply); set "
    "metricsAgent.enabled: false, or scrape these GPUs with dcgm-exporter"
)


def report_dra(spec: GPUPoolSpec) -> tuple[list[str], resource.Condition]:
    """An enabled agent on a DRA pool is said not to run, in a warning and the condition."""
    if not spec.metricsAgent.enabled:
        return [], resource.Condition(
            CONDITION, "False", "Disabled", "spec.metricsAgent.enabled is false"
        )
    return [DRA_UNSUPPORTED], resource.Condition(CONDITION, "False", "Unsupported", DRA_UNSUPPORTED)


def report(owner: Owner, spec: GPUPoolSpec, observed: Mapping[str, Any] | None) -> Report:
    """status.metricsAgent and the MetricsAgentReady condition from the DaemonSet the provider
    observed (the Object's status.atProvider.manifest), whatever shape it arrives in."""
    if not spec.metricsAgent.enabled:
        return Report(
            None,
            resource.Condition(
                CONDITION, "False", "Disabled", "spec.metricsAgent.enabled is false"
            ),
        )
    where = f"{GPU_OPERATOR_NAMESPACE}/{agent_name(owner)}"
    manifest = _dict(_dict(_dict(_dict(observed).get("status")).get("atProvider")).get("manifest"))
    status = _dict(manifest.get("status"))
    nodes, ready_nodes = (
        _count(status.get("desiredNumberScheduled")),
        _count(status.get("numberReady")),
    )
    out = {"daemonSet": where, "ready": False, "nodes": nodes, "readyNodes": ready_nodes}
    if not manifest:
        reason, message = "Pending", f"DaemonSet {where} not observed yet"
    elif daemon_set(manifest):
        out["ready"] = True
        reason, message = "Ready", f"DaemonSet {where}: ready on {nodes} node(s)"
    elif nodes == 0:
        reason, message = (
            "NoNodes",
            f"DaemonSet {where} selects no node: none of the pool's nodes carries "
            f"{POOL_LABEL}={owner.child()} yet (applied to the nodes the pool owns once GPU "
            "feature discovery has labelled them)",
        )
    else:
        reason, message = "NotReady", f"DaemonSet {where}: {ready_nodes} of {nodes} node(s) ready"
    return Report(
        out, resource.Condition(CONDITION, "True" if out["ready"] else "False", reason, message)
    )
