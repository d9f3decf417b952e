"""GPUPool's node metrics agent (functions/gpupool/metricsagent.py): the DaemonSet, its
ServiceAccount and PodMonitor as provider-kubernetes Objects, one agent per node, and the
status and condition read back from the observed DaemonSet."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from crossplane.function.proto.v1 import run_function_pb2 as fnv1

from tests.fnharness import Result, example, run, with_spec
from tests.unit.test_gpupool import node

CONDITIONS = (fnv1.CAPABILITY_CONDITIONS,)
POOL = example("l4-timeslice-pool.yaml")
AGENT = ["metrics-agent", "metrics-agent-podmonitor", "metrics-agent-serviceaccount"]
OWNER_LABEL = "inference.ai/gpupool"
L4 = ("NVIDIA-L4", 4)  # product and GPU count of the example pool's nodes


L4_NODES = [
    node("l4-0", *L4, **{"gpu-type": "nvidia-l4"}),
    node("l4-1", *L4, **{"gpu-type": "nvidia-l4"}),
]


def manifest(res: Result, name: str) -> dict[str, Any]:
    obj = res.resources[name]
    assert obj["apiVersion"] == "kubernetes.crossplane.io/v1alpha2"
    assert obj["kind"] == "Object"
    return dict(obj["spec"]["forProvider"]["manifest"])


def pod_spec(res: Result) -> dict[str, Any]:
    return dict(manifest(res, "metrics-agent")["spec"]["template"]["spec"])


def env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def conditions(res: Result) -> dict[str, tuple[str, str, str]]:
    return {c.type: (fnv1.Status.Name(c.status), c.reason, c.message) for c in res.raw.conditions}


def test_an_enabled_pool_renders_daemonset_serviceaccount_and_podmonitor_in_gpu_operator() -> None:
    res = run(POOL, required={"nodes": L4_NODES})
    assert res.fatal == []
    assert sorted(k for k in res.resources if k.startswith("metrics-agent")) == AGENT
    kinds = {manifest(res, k)["kind"]: manifest(res, k)["metadata"] for k in AGENT}
    assert sorted(kinds) == ["DaemonSet", "PodMonitor", "ServiceAccount"]
    for meta in kinds.values():
        assert (meta["namespace"], meta["name"]) == ("gpu-operator", "l4-timeslice-gpu-metrics")
    for name in AGENT:
        # Created, updated and deleted with the pool (unlike the shared ConfigMaps).
        assert res.resources[name]["spec"]["managementPolicies"] == ["*"]
    account = manifest(res, "metrics-agent-serviceaccount")
    assert account["automountServiceAccountToken"] is False


def test_the_daemonset_runs_on_the_pools_nodes_that_carry_its_owner_label() -> None:
    res = run(POOL, required={"nodes": L4_NODES})
    pod = pod_spec(res)
    assert pod["nodeSelector"] == {"gpu-type": "nvidia-l4", OWNER_LABEL: "l4-timeslice"}
    # Every node the pool configures gets the owner label the DaemonSet selects.
    for name in ("node-l4-0", "node-l4-1"):
        labels = manifest(res, name)["metadata"]["labels"]
        assert labels[OWNER_LABEL] == "l4-timeslice"
    assert pod["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    # It leaves a node while mig-manager repartitions it, as the operator's own agents do.
    (term,) = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    assert term["matchExpressions"] == [
        {
            "key": "nvidia.com/gpu.deploy.dcgm-exporter",
            "operator": "NotIn",
            "values": ["paused-for-mig-change"],
        }
    ]
    ds = manifest(res, "metrics-agent")
    template_labels = ds["spec"]["template"]["metadata"]["labels"]
    assert ds["spec"]["selector"]["matchLabels"].items() <= template_labels.items()


def test_the_agent_reaches_nvml_and_the_kubelet_without_privilege() -> None:
    pod = pod_spec(run(POOL, required={"nodes": L4_NODES}))
    assert pod["runtimeClassName"] == "nvidia"
    assert pod["automountServiceAccountToken"] is False
    assert pod["serviceAccountName"] == "l4-timeslice-gpu-metrics"
    (container,) = pod["containers"]
    assert env(container) == {
        "METRICS_BIND_ADDRESS": ":8080",
        "HEALTH_PROBE_BIND_ADDRESS": ":8081",
        "SIDECAR_MODE": "node",
        "GPU_METRICS": "auto",
        "NVIDIA_VISIBLE_DEVICES": "all",
        "NVIDIA_DRIVER_CAPABILITIES": "utility",
        "POD_RESOURCES_SOCKET": "/var/lib/kubelet/pod-resources/kubelet.sock",
        "NODE_NAME": {"fieldRef": {"fieldPath": "spec.nodeName"}},
        "GPU_POOL": "l4-timeslice",
    }
    # No GPU resource: the agent must not take a device from the pool's capacity.
    assert not any(r.startswith("nvidia.com/") for r in container["resources"]["requests"])
    assert container["volumeMounts"] == [
        {
            "name": "pod-resources",
            "mountPath": "/var/lib/kubelet/pod-resources",
            "readOnly": True,
        }
    ]
    assert pod["volumes"] == [
        {
            "name": "pod-resources",
            "hostPath": {"path": "/var/lib/kubelet/pod-resources", "type": "Directory"},
        }
    ]
    assert container["securityContext"] == {
        "runAsNonRoot": False,
        "runAsUser": 0,
        "runAsGroup": 0,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert "privileged" not in container["securityContext"]
    assert not {"hostNetwork", "hostPID", "hostIPC"} & set(pod)


def test_the_agent_container_shares_probes_ports_and_limits_with_the_pod_sidecar() -> None:
    (agent,) = pod_spec(run(POOL, required={"nodes": L4_NODES}))["containers"]
    service = run(example("phi-timeslice.yaml"))
    containers = service.resources["deployment"]["spec"]["template"]["spec"]["containers"]
    (sidecar,) = [c for c in containers if c["name"] == "metrics-sidecar"]
    for key in ("ports", "readinessProbe", "livenessProbe"):
        assert agent[key] == sidecar[key], key
    # The same CPU request and memory limit; each mode requests the memory it was measured at.
    assert agent["resources"] == {
        "requests": {"cpu": "10m", "memory": "64Mi"},
        "limits": {"memory": "128Mi"},
    }
    assert sidecar["resources"] == {
        "requests": {"cpu": "10m", "memory": "48Mi"},
        "limits": {"memory": "128Mi"},
    }
    assert agent["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "sidecar-health"}
    assert agent["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "sidecar-health"}
    # The pod sidecar stays non-root; only the node agent needs uid 0 (the kubelet socket).
    assert sidecar["securityContext"]["runAsNonRoot"] is True


def test_the_podmonitor_scrapes_the_agents_and_keeps_their_pod_labels() -> None:
    res = run(POOL, required={"nodes": L4_NODES})
    monitor = manifest(res, "metrics-agent-podmonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    template = manifest(res, "metrics-agent")["spec"]["template"]["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= template.items()
    assert monitor["spec"]["podMetricsEndpoints"] == [
        {"port": "sidecar-metrics", "path": "/metrics", "interval": "15s", "honorLabels": True}
    ]


@pytest.mark.parametrize(
    ("agent", "expected"),
    [
        pytest.param({"runtimeClassName": ""}, None, id="node-default-runtime"),
        pytest.param({"runtimeClassName": "nvidia-cdi"}, "nvidia-cdi", id="own-runtime-class"),
    ],
)
def test_runtime_class_can_be_changed_or_left_to_the_node(
    agent: dict[str, Any], expected: str | None
) -> None:
    pod = pod_spec(run(with_spec(POOL, metricsAgent=agent), required={"nodes": L4_NODES}))
    assert pod.get("runtimeClassName") == expected


def test_image_comes_from_the_spec() -> None:
    doc = with_spec(POOL, metricsAgent={"image": "registry.example/inference-sidecar:v9"})
    (container,) = pod_spec(run(doc, required={"nodes": L4_NODES}))["containers"]
    assert container["image"] == "registry.example/inference-sidecar:v9"


@pytest.mark.parametrize(
    ("agent", "field"),
    [
        ({"runtimeClassName": "Not_A_Name"}, "runtimeClassName"),
        ({"enabled": "sometimes"}, "enabled"),
        ({"port": 9400}, "port"),
    ],
)
def test_bad_agent_settings_are_fatal_and_name_the_field(agent: dict[str, Any], field: str) -> None:
    res = run(with_spec(POOL, metricsAgent=agent))
    assert len(res.fatal) == 1
    assert f"metricsAgent.{field}" in res.fatal[0]
    assert res.resources == {}


def test_a_pool_can_turn_the_agent_off() -> None:
    res = run(
        with_spec(POOL, metricsAgent={"enabled": False}),
        required={"nodes": L4_NODES},
        capabilities=CONDITIONS,
    )
    assert res.fatal == []
    assert not [k for k in res.resources if k.startswith("metrics-agent")]
    assert "metricsAgent" not in res.status
    assert conditions(res)["MetricsAgentReady"] == (
        "STATUS_CONDITION_FALSE",
        "Disabled",
        "spec.metricsAgent.enabled is false",
    )


@pytest.mark.parametrize(
    ("agent", "reason", "warned"),
    [({}, "Unsupported", True), ({"enabled": False}, "Disabled", False)],
    ids=["enabled-by-default", "turned-off"],
)
def test_a_dra_pool_renders_no_agent_and_says_so_unless_turned_off(
    agent: dict[str, Any], reason: str, warned: bool
) -> None:
    pool = with_spec(example("h100-exclusive-dra-pool.yaml"), metricsAgent=agent)
    res = run(pool, capabilities=CONDITIONS)
    assert res.fatal == []
    assert not [k for k in res.resources if k.startswith("metrics-agent")]
    assert conditions(res)["MetricsAgentReady"][:2] == ("STATUS_CONDITION_FALSE", reason)
    said = [w for w in res.status["warnings"] if w.startswith("spec.metricsAgent")]
    assert bool(said) is warned
    assert (OWNER_LABEL in " ".join(said)) is warned


def observed_daemonset(status: Any, generation: int = 1) -> dict[str, Any]:
    """The agent's Object as Crossplane observes it: the provider's copy of the DaemonSet in
    status.atProvider.manifest."""
    return {
        "apiVersion": "kubernetes.crossplane.io/v1alpha2",
        "kind": "Object",
        "metadata": {"name": "l4-timeslice-gpu-metrics"},
        "status": {
            "atProvider": {
                "manifest": {
                    "apiVersion": "apps/v1",
                    "kind": "DaemonSet",
                    "metadata": {"name": "l4-timeslice-gpu-metrics", "generation": generation},
                    "status": status,
                }
            },
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


WHERE = "gpu-operator/l4-timeslice-gpu-metrics"
READY = {
    "observedGeneration": 1,
    "desiredNumberScheduled": 2,
    "currentNumberScheduled": 2,
    "updatedNumberScheduled": 2,
    "numberReady": 2,
    "numberAvailable": 2,
}


@pytest.mark.parametrize(
    ("observed", "ready", "nodes", "ready_nodes", "reason"),
    [
        pytest.param(None, False, 0, 0, "Pending", id="not-created-yet"),
        pytest.param(
            {"apiVersion": "kubernetes.crossplane.io/v1alpha2", "kind": "Object"},
            False,
            0,
            0,
            "Pending",
            id="object-without-status",
        ),
        pytest.param(observed_daemonset(READY), True, 2, 2, "Ready", id="ready-everywhere"),
        pytest.param(
            observed_daemonset({**READY, "numberReady": 1}),
            False,
            2,
            1,
            "NotReady",
            id="one-agent-not-ready",
        ),
        pytest.param(
            observed_daemonset({**READY, "observedGeneration": 1}, generation=2),
            False,
            2,
            2,
            "NotReady",
            id="new-template-not-seen-by-the-controller",
        ),
        pytest.param(
            observed_daemonset({"desiredNumberScheduled": 0, "numberReady": 0}),
            False,
            0,
            0,
            "NoNodes",
            id="selects-no-node",
        ),
        pytest.param(observed_daemonset({}), False, 0, 0, "NoNodes", id="status-not-filled-yet"),
        pytest.param(
            observed_daemonset({"desiredNumberScheduled": "2", "numberReady": True}),
            False,
            0,
            0,
            "NoNodes",
            id="numbers-of-the-wrong-type",
        ),
        pytest.param(observed_daemonset("odd"), False, 0, 0, "NoNodes", id="status-not-a-map"),
        pytest.param(
            {"kind": "Object", "status": {"atProvider": ["not", "a", "map"]}},
            False,
            0,
            0,
            "Pending",
            id="at-provider-not-a-map",
        ),
    ],
)
def test_status_reports_whether_the_agent_is_ready_on_every_node(
    observed: dict[str, Any] | None, ready: bool, nodes: int, ready_nodes: int, reason: str
) -> None:
    res = run(
        POOL,
        observed={"metrics-agent": observed} if observed is not None else None,
        required={"nodes": L4_NODES},
        capabilities=CONDITIONS,
    )
    assert res.fatal == []
    assert res.status["metricsAgent"] == {
        "daemonSet": WHERE,
        "ready": ready,
        "nodes": nodes,
        "readyNodes": ready_nodes,
    }
    status, got_reason, message = conditions(res)["MetricsAgentReady"]
    assert (status, got_reason) == (
        "STATUS_CONDITION_TRUE" if ready else "STATUS_CONDITION_FALSE",
        reason,
    )
    assert WHERE in message


def test_the_agents_readiness_does_not_gate_the_pools() -> None:
    """An agent that is not ready (e.g. an image the nodes cannot pull) leaves its Object ready
    once the provider applied it: the pool's GPUs are configured all the same."""
    observed = observed_daemonset({**READY, "numberReady": 0})
    res = run(POOL, observed={"metrics-agent": observed}, required={"nodes": L4_NODES})
    assert res.ready["metrics-agent"] is True
    assert res.status["metricsAgent"]["ready"] is False


def pool_doc(name: str, created: str, selector: dict[str, str]) -> dict[str, Any]:
    doc = copy.deepcopy(POOL)
    doc["metadata"] = {"name": name, "creationTimestamp": created}
    doc["spec"]["nodeSelector"] = selector
    return doc


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_a_node_two_pools_select_runs_only_the_oldest_pools_agent() -> None:
    """Both pools' renders, their node Objects' labels applied to the Nodes, then each
    DaemonSet's nodeSelector evaluated against the labelled Nodes: every node has exactly one
    agent, and the shared node its owner's."""
    nodes = [
        node("only-old", *L4, **{"gpu-type": "nvidia-l4"}),
        node("shared", *L4, **{"gpu-type": "nvidia-l4", "team": "x"}),
        node("only-young", *L4, **{"gpu-type": "other", "team": "x"}),
    ]
    old = pool_doc("old", "2026-01-01T00:00:00Z", {"gpu-type": "nvidia-l4"})
    young = pool_doc("young", "2026-02-01T00:00:00Z", {"team": "x"})
    selected = {
        "old": [n for n in nodes if n["metadata"]["labels"].get("gpu-type") == "nvidia-l4"],
        "young": [n for n in nodes if n["metadata"]["labels"].get("team") == "x"],
    }
    renders = {
        doc["metadata"]["name"]: run(
            doc, required={"nodes": selected[doc["metadata"]["name"]], "gpupools": [old, young]}
        )
        for doc in (old, young)
    }
    labels = {n["metadata"]["name"]: dict(n["metadata"]["labels"]) for n in nodes}
    for res in renders.values():
        for name, obj in res.resources.items():
            if name.startswith("node-"):
                applied = obj["spec"]["forProvider"]["manifest"]["metadata"]
                labels[applied["name"]].update(applied["labels"])
    agents = {
        node_name: [
            pool for pool, res in renders.items() if matches(pod_spec(res)["nodeSelector"], lab)
        ]
        for node_name, lab in labels.items()
    }
    assert agents == {"only-old": ["old"], "shared": ["old"], "only-young": ["young"]}
