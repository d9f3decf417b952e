"""Routing (functions/inferenceservice/routing.py, picker.py): a Service, or an InferencePool
whose endpoint picker routes by prefix and load, published on a Gateway."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from crossplane.function.proto.v1 import run_function_pb2 as fnv1

from functions.inferenceservice.routing import gateway_endpoint
from tests.fnharness import example, run, with_spec

ROUTED = example("llama-8b-prefix-aware.yaml")
GATEWAY = {
    "apiVersion": "gateway.networking.k8s.io/v1",
    "kind": "Gateway",
    "metadata": {"name": "inference-gateway", "namespace": "gateways"},
    "spec": {"listeners": [{"name": "http", "protocol": "HTTP", "port": 80}]},
    "status": {"addresses": [{"type": "IPAddress", "value": "10.0.0.20"}]},
}
POOL = {
    "apiVersion": "inference.ai/v1alpha1",
    "kind": "GPUPool",
    "metadata": {"name": "h100"},
    "spec": {"nodeSelector": {"gpu": "h100"}},
    "status": {"gpuProducts": ["NVIDIA-H100-80GB-HBM3"]},
}


def routed(doc: dict[str, Any] = ROUTED, gateways: list[dict[str, Any]] | None = None) -> Any:
    required = {"gpupools": [POOL]}
    if gateways is not None:
        required["gateway"] = gateways
    return run(doc, required=required, capabilities=(fnv1.CAPABILITY_CONDITIONS,))


def conditions(res: Any) -> dict[str, tuple[str, str]]:
    return {c.type: (c.reason, c.message) for c in res.raw.conditions}


def test_prefix_aware_routing_renders_the_pool_its_picker_and_a_route() -> None:
    res = routed(gateways=[GATEWAY])
    assert res.fatal == []
    objs = res.resources
    pool = objs["inference-pool"]
    engine = objs["deployment"]["spec"]["template"]
    # The pool selects exactly the engine pods, on the engine's port.
    assert pool["spec"] == {
        "selector": {"matchLabels": objs["deployment"]["spec"]["selector"]["matchLabels"]},
        "targetPorts": [{"number": 8000}],
        "endpointPickerRef": {
            "name": "llama-8b-routed-epp",
            "port": {"number": 9002},
            "failureMode": "FailClose",
        },
    }
    assert engine["metadata"]["labels"]["inference.networking.k8s.io/engine-type"] == "vllm"
    # The engine's block size is what the picker's prefix index falls back to.
    assert "--block-size=16" in engine["spec"]["containers"][0]["args"]
    picker = objs["picker"]["spec"]["template"]["spec"]
    assert picker["serviceAccountName"] == "llama-8b-routed-epp"
    assert picker["containers"][0]["args"][:4] == [
        "--pool-name=llama-8b-routed",
        "--pool-namespace=team-a",
        "--pool-group=inference.networking.k8s.io",
        "--config-file=/config/epp.yaml",
    ]
    assert objs["picker-service"]["spec"]["ports"][0]["port"] == 9002
    assert objs["route"]["spec"]["parentRefs"] == [
        {
            "group": "gateway.networking.k8s.io",
            "kind": "Gateway",
            "name": "inference-gateway",
            "namespace": "gateways",
        }
    ]
    assert objs["route"]["spec"]["rules"][0]["backendRefs"] == [
        {"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": "llama-8b-routed"}
    ]
    assert res.status["routing"] == {
        "mode": "prefix-aware",
        "inferencePool": "llama-8b-routed",
        "endpointPicker": "llama-8b-routed-epp",
        "httpRoute": "llama-8b-routed",
        "gateway": "gateways/inference-gateway",
        "gatewayFound": True,
        "endpoint": "http://10.0.0.20/v1",
    }
    assert res.warnings == []


def test_the_picker_reads_only_its_pool_and_pods_in_its_namespace() -> None:
    objs = routed().resources
    assert objs["picker-role"]["rules"] == [
        {
            "apiGroups": ["inference.networking.k8s.io"],
            "resources": ["inferencepools"],
            "verbs": ["get", "list", "watch"],
        },
        {
            "apiGroups": ["inference.networking.x-k8s.io"],
            "resources": ["inferenceobjectives", "inferencemodelrewrites"],
            "verbs": ["get", "list", "watch"],
        },
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
    ]
    assert objs["picker-role-binding"]["subjects"] == [
        {"kind": "ServiceAccount", "name": "llama-8b-routed-epp", "namespace": "team-a"}
    ]
    container = objs["picker"]["spec"]["template"]["spec"]["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["readinessProbe"]["grpc"] == {"port": 9003, "service": "inference-extension"}


@pytest.mark.parametrize(
    ("scorers", "weights"),
    [
        (None, {"prefix-cache-scorer": 3, "queue-scorer": 2, "kv-cache-utilization-scorer": 2}),
        # A zero weight leaves the scorer out rather than running it for nothing.
        (
            {"prefixCache": 5, "queue": 1, "kvCacheUtilization": 0},
            {"prefix-cache-scorer": 5, "queue-scorer": 1},
        ),
    ],
)
def test_scorer_weights_become_the_pickers_scheduling_profile(
    scorers: dict[str, int] | None, weights: dict[str, int]
) -> None:
    doc = with_spec(ROUTED, **{"routing.scorers": scorers})
    cm = routed(doc).resources["picker-config"]
    config = yaml.safe_load(cm["data"]["epp.yaml"])
    (profile,) = config["schedulingProfiles"]
    assert {p["pluginRef"]: p.get("weight") for p in profile["plugins"]} == {
        **weights,
        "max-score-picker": None,
    }
    assert [p["type"] for p in config["plugins"]] == [*weights, "max-score-picker"]


def test_a_changed_picker_config_rolls_the_picker() -> None:
    first = routed().resources["picker"]["spec"]["template"]["metadata"]["annotations"]
    doc = with_spec(ROUTED, **{"routing.scorers": {"prefixCache": 5}})
    second = routed(doc).resources["picker"]["spec"]["template"]["metadata"]["annotations"]
    assert first != second


@pytest.mark.parametrize("backend", ["triton", "tensorrt-llm"])
def test_an_engine_without_the_pickers_metrics_is_routed_through_the_service(
    backend: str,
) -> None:
    res = routed(with_spec(ROUTED, backend=backend), gateways=[GATEWAY])
    assert "inference-pool" not in res.resources
    assert "picker" not in res.resources
    assert res.resources["route"]["spec"]["rules"][0]["backendRefs"] == [
        {"kind": "Service", "name": "llama-8b-routed", "port": 8000}
    ]
    assert res.status["routing"]["mode"] == "service"
    assert any(
        w.startswith("routing.mode prefix-aware: the endpoint picker scores replicas on vLLM's")
        and f"backend {backend} does not export" in w
        for w in res.warnings
    )


def test_a_missing_gateway_is_reported_and_the_route_waits_for_it() -> None:
    res = routed(gateways=[])
    assert "route" in res.resources
    assert res.status["routing"]["gatewayFound"] is False
    assert "endpoint" not in res.status["routing"]
    assert conditions(res)["RoutingReady"] == (
        "GatewayNotFound",
        "Gateway gateways/inference-gateway not found",
    )
    assert (
        "routing.gatewayRef: Gateway gateways/inference-gateway does not exist; the HTTPRoute "
        "attaches once it does" in res.warnings
    )


def test_the_gateway_is_required_in_its_namespace_or_the_services() -> None:
    req = routed().raw.requirements.resources["gateway"]
    assert (req.kind, req.match_name, req.namespace) == ("Gateway", "inference-gateway", "gateways")
    doc = with_spec(ROUTED, **{"routing.gatewayRef": {"name": "gw"}})
    req = routed(doc).raw.requirements.resources["gateway"]
    assert (req.match_name, req.namespace) == ("gw", "team-a")


def test_service_mode_publishes_the_service_on_a_gateway() -> None:
    doc = with_spec(ROUTED, routing={"mode": "service", "gatewayRef": {"name": "gw"}})
    res = routed(doc, gateways=[{**GATEWAY, "metadata": {"name": "gw", "namespace": "team-a"}}])
    assert {"inference-pool", "picker"}.isdisjoint(res.resources)
    assert res.resources["route"]["spec"]["rules"][0]["backendRefs"] == [
        {"kind": "Service", "name": "llama-8b-routed", "port": 8000}
    ]
    assert conditions(res)["RoutingReady"] == (
        "Routed",
        "through the Service and Gateway team-a/gw",
    )


def test_without_routing_nothing_changes_but_the_status_says_service() -> None:
    doc = with_spec(ROUTED, routing=None)
    res = routed(doc)
    assert {"inference-pool", "picker", "route"}.isdisjoint(res.resources)
    assert (
        "--block-size=16"
        not in res.resources["deployment"]["spec"]["template"]["spec"]["containers"][0]["args"]
    )
    assert res.status["routing"] == {"mode": "service"}
    assert "gateway" not in res.raw.requirements.resources


@pytest.mark.parametrize(
    ("listeners", "addresses", "section", "url"),
    [
        (
            [{"name": "http", "protocol": "HTTP", "port": 80}],
            ["10.0.0.20"],
            None,
            "http://10.0.0.20/v1",
        ),
        (
            [
                {"name": "web", "protocol": "HTTP", "port": 8080},
                {"name": "tls", "protocol": "HTTPS", "port": 443},
            ],
            ["gw.example.com"],
            "tls",
            "https://gw.example.com/v1",
        ),
        (
            [{"name": "http", "protocol": "HTTP", "port": 8080}],
            ["fd00::1"],
            None,
            "http://[fd00::1]:8080/v1",
        ),
        # No address reported yet, or no HTTP listener: no endpoint.
        ([{"name": "http", "protocol": "HTTP", "port": 80}], [], None, None),
        ([{"name": "grpc", "protocol": "TCP", "port": 9000}], ["10.0.0.20"], None, None),
    ],
)
def test_the_endpoint_through_a_gateway(
    listeners: list[dict[str, Any]], addresses: list[str], section: str | None, url: str | None
) -> None:
    gateway = {
        "spec": {"listeners": listeners},
        "status": {"addresses": [{"value": a} for a in addresses]},
    }
    assert gateway_endpoint(gateway, section, "/v1") == url


@pytest.mark.parametrize(
    "gateway",
    [
        {"spec": "x", "status": {"addresses": [{"value": "10.0.0.20"}]}},
        {"spec": {"listeners": [{"protocol": "HTTP", "port": 80}]}, "status": []},
        {"spec": {"listeners": "x"}, "status": {"addresses": "x"}},
        {
            "spec": {"listeners": [{"protocol": "HTTP", "port": 0}]},
            "status": {"addresses": [{"value": "gw"}]},
        },
        {
            "spec": {"listeners": [{"protocol": "HTTP", "port": 70000}]},
            "status": {"addresses": [{"value": "gw"}]},
        },
        {
            "spec": {"listeners": [{"protocol": "HTTP", "port": "80"}]},
            "status": {"addresses": [{"value": "gw"}]},
        },
        {
            "spec": {"listeners": [{"protocol": "HTTP", "port": 1e400}]},
            "status": {"addresses": [{"value": "gw"}]},
        },
        {
            "spec": {"listeners": [{"protocol": "HTTP", "port": 80}]},
            "status": {"addresses": [{"value": "a/b c"}]},
        },
        {
            "spec": {"listeners": [{"protocol": "HTTP", "port": 80}]},
            "status": {"addresses": [{"value": 5}]},
        },
        {
            "spec": {"listeners": [{"protocol": "HTTP", "port": 80}]},
            "status": {"addresses": [{"value": "x" * 300}]},
        },
    ],
)
def test_a_gateway_of_unexpected_shape_has_no_endpoint_yet(gateway: dict[str, Any]) -> None:
    assert gateway_endpoint(gateway, None, "/v1") is None
