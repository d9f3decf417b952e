"""How requests reach the replicas: a Service, or an InferencePool with an endpoint picker.

`spec.routing.mode: prefix-aware` renders the Gateway API Inference Extension's InferencePool
(inference.networking.k8s.io/v1) over the engine pods and its endpoint picker (picker.py); with
`gatewayRef` an HTTPRoute attaches the pool (or, in mode service, the Service) to an existing
Gateway, which the function reads (required resource) to report the endpoint through it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from crossplane.function import resource

from functions.common.api.inferenceservice import InferenceServiceSpec, Scorers
from functions.common.meta import Owner
from functions.common.peers import Requirement
from functions.common.readiness import is_ready
from functions.inferenceservice import picker
from functions.inferenceservice.backends import vllm
from functions.inferenceservice.backends.base import BackendPlan

GATEWAYS = "gateway"
GATEWAY_API = "gateway.networking.k8s.io/v1"
POOL_API = "inference.networking.k8s.io/v1"
ENGINE_TYPE_LABEL = "inference.networking.k8s.io/engine-type"
# A Gateway address (gateway-api AddressType: IPAddress or Hostname), as it may go into a URL.
HOST = re.compile(r"[A-Za-z0-9][-A-Za-z0-9.:]{0,252}")
ROUTE_TIMEOUT = "300s"  # a long generation must not be cut at the gateway's default 15s
# Engines whose metrics the picker's scorers read on the serving port (its `vllm` mapping).
PICKER_ENGINES = frozenset({"vllm"})


@dataclass
class RoutingPlan:
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    status: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    requirements: list[Requirement] = field(default_factory=list)
    condition: resource.Condition | None = None
    pod_labels: dict[str, str] = field(default_factory=dict)
    """Labels the engine pods carry for the picker."""


def prefix_aware(spec: InferenceServiceSpec) -> bool:
    """Whether the service is routed through an InferencePool (the engine supports it)."""
    return spec.routing.mode == "prefix-aware" and spec.backend in PICKER_ENGINES


def gateway_requirement(owner: Owner, spec: InferenceServiceSpec) -> Requirement | None:
    ref = spec.routing.gatewayRef
    if ref is None:
        return None
    namespace = ref.namespace or owner.namespace
    return Requirement(GATEWAYS, GATEWAY_API, "Gateway", match_name=ref.name, namespace=namespace)


def inference_pool(
    owner: Owner,
    name: str,
    selector: Mapping[str, str],
    port: int,
    picker_name: str,
    failure_mode: str,
) -> dict[str, Any]:
    return {
        "apiVersion": POOL_API,
        "kind": "InferencePool",
        "metadata": owner.metadata(name, "inference-pool"),
        "spec": {
            "selector": {"matchLabels": dict(selector)},
            "targetPorts": [{"number": port}],
            "endpointPickerRef": {
                "name": picker_name,
                "port": {"number": picker.GRPC_PORT},
                "failureMode": failure_mode,
            },
        },
    }


def http_route(owner: Owner, spec: InferenceServiceSpec, backend: dict[str, Any]) -> dict[str, Any]:
    ref = spec.routing.gatewayRef
    assert ref is not None
    parent: dict[str, Any] = {"group": "gateway.networking.k8s.io", "kind": "Gateway"}
    parent["name"] = ref.name
    if ref.namespace:
        parent["namespace"] = ref.namespace
    if ref.sectionName:
        parent["sectionName"] = ref.sectionName
    return {
        "apiVersion": GATEWAY_API,
        "kind": "HTTPRoute",
        "metadata": owner.metadata(owner.child(), "route"),
        "spec": {
            "parentRefs": [parent],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                    "backendRefs": [backend],
                    "timeouts": {"request": ROUTE_TIMEOUT},
                }
            ],
        },
    }


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def gateway_endpoint(gateway: Mapping[str, Any], section: str | None, path: str) -> str | None:
    """The URL of the Gateway's listener (the named one, else the first HTTP(S) one) at its
    first reported address; None until the Gateway reports an address. Fields of another shape
    than the Gateway API's (an address that is not a host name or IP, a port outside 1-65535)
    read as not reported."""
    addresses = [
        a.get("value")
        for a in _list(_mapping(gateway.get("status")).get("addresses"))
        if isinstance(a, Mapping)
    ]
    listeners = [
        item
        for item in _list(_mapping(gateway.get("spec")).get("listeners"))
        if isinstance(item, Mapping)
        and item.get("protocol") in ("HTTP", "HTTPS")
        and (section is None or item.get("name") == section)
    ]
    if not addresses or not listeners:
        return None
    host, listener = addresses[0], listeners[0]
    port = listener.get("port")
    if not (isinstance(host, str) and HOST.fullmatch(host)) or not (
        isinstance(port, int | float) and not isinstance(port, bool) and port in range(1, 65536)
    ):
        return None
    scheme = "https" if listener["protocol"] == "HTTPS" else "http"
    host = f"[{host}]" if ":" in host else host
    default = 443 if scheme == "https" else 80
    return f"{scheme}://{host}{'' if port == default else f':{int(port)}'}{path}"


def plan(
    owner: Owner,
    spec: InferenceServiceSpec,
    engine: BackendPlan,
    selector: Mapping[str, str],
    required: Mapping[str, list[dict[str, Any]]],
    observed: Mapping[str, dict[str, Any]],
) -> RoutingPlan:
    """What routing adds beside the engine's Deployment and Service."""
    routing = spec.routing
    out = RoutingPlan()
    port = engine.service_ports[0]["port"]
    status: dict[str, Any] = {"mode": "service"}
    if routing.mode == "prefix-aware" and not prefix_aware(spec):
        out.warnings.append(
            f"routing.mode prefix-aware: the endpoint picker scores replicas on vLLM's metrics "
            f"(vllm:num_requests_waiting, vllm:kv_cache_usage_perc, vllm:cache_config_info) "
            f"on the serving port, which backend {spec.backend} does not export there; "
            "requests go through the Service instead"
        )
    backend: dict[str, Any] = {"kind": "Service", "name": owner.child(), "port": port}
    picker_ready = True
    if prefix_aware(spec):
        if not spec.cache.enabled:
            out.warnings.append(
                "routing.mode prefix-aware with cache.enabled false: the engines keep no prefix "
                "cache, so the endpoint picker balances load only"
            )
        pool, picker_name = owner.child(), owner.child("epp")
        scorers = routing.scorers or Scorers()
        out.resources.update(picker.resources(owner, picker_name, pool, scorers, vllm.BLOCK_SIZE))
        out.resources["inference-pool"] = inference_pool(
            owner, pool, selector, port, picker_name, routing.failureMode or "FailClose"
        )
        out.pod_labels[ENGINE_TYPE_LABEL] = spec.backend
        backend = {"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": pool}
        picker_ready = is_ready(observed.get("picker"))
        status.update(mode="prefix-aware", inferencePool=pool, endpointPicker=picker_name)
    gateway_found: bool | None = None
    requirement = gateway_requirement(owner, spec)
    if requirement is not None:
        assert routing.gatewayRef is not None
        out.requirements.append(requirement)
        out.resources["route"] = http_route(owner, spec, backend)
        where = f"{requirement.namespace}/{routing.gatewayRef.name}"
        status.update(httpRoute=owner.child(), gateway=where)
        if GATEWAYS in required:
            gateways = required[GATEWAYS]
            gateway_found = bool(gateways)
            status["gatewayFound"] = gateway_found
            if gateways:
                url = gateway_endpoint(gateways[0], routing.gatewayRef.sectionName, engine.api_path)
                if url:
                    status["endpoint"] = url
            else:
                out.warnings.append(
                    f"routing.gatewayRef: Gateway {where} does not exist; the HTTPRoute attaches "
                    "once it does"
                )
    out.status = status
    out.condition = condition(status, picker_ready, gateway_found)
    return out


def condition(
    status: Mapping[str, Any], picker_ready: bool, gateway_found: bool | None
) -> resource.Condition:
    # A missing Gateway first: it needs the user, a starting picker only time.
    if gateway_found is False:
        return resource.Condition(
            "RoutingReady", "False", "GatewayNotFound", f"Gateway {status['gateway']} not found"
        )
    if status["mode"] == "prefix-aware" and not picker_ready:
        return resource.Condition(
            "RoutingReady",
            "False",
            "PickerUnavailable",
            f"endpoint picker {status['endpointPicker']} is not available yet",
        )
    via = (
        f"InferencePool {status['inferencePool']}"
        if status["mode"] == "prefix-aware"
        else "the Service"
    )
    gateway = f" and Gateway {status['gateway']}" if "gateway" in status else ""
    return resource.Condition("RoutingReady", "True", "Routed", f"through {via}{gateway}")
