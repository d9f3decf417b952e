"""The inference-sidecar exporter (sidecar/, image target `sidecar`) as composed workloads run
it: one container for the InferenceService's pod sidecar and the GPUPool's node agent, and the
PodMonitor that scrapes either."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from functions.common.probes import http_get

METRICS_PORT_NAME = "sidecar-metrics"
HEALTH_PORT_NAME = "sidecar-health"
METRICS_PATH = "/metrics"
CPU_REQUEST = "10m"
# One limit for both modes: room for a large engine exposition or a long allocation list.
MEMORY_LIMIT = "128Mi"


def container(
    *,
    name: str,
    image: str,
    metrics_port: int,
    health_port: int,
    env: list[dict[str, Any]],
    memory_request: str,
    security_context: dict[str, Any],
    volume_mounts: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The sidecar container serving /metrics and /healthz, /readyz on their own ports; `env`
    picks its sources after the bind addresses; the memory request is the caller's, from what
    its mode measured.

    Readiness is start-up finished, liveness the process serving: neither depends on a source
    (sidecar/README.md), so no startup probe is needed (ready in well under a second).
    """
    out: dict[str, Any] = {
        "name": name,
        "image": image,
        "env": [
            {"name": "METRICS_BIND_ADDRESS", "value": f":{metrics_port}"},
            {"name": "HEALTH_PROBE_BIND_ADDRESS", "value": f":{health_port}"},
            *env,
        ],
        "ports": [
            {"name": METRICS_PORT_NAME, "containerPort": metrics_port, "protocol": "TCP"},
            {"name": HEALTH_PORT_NAME, "containerPort": health_port, "protocol": "TCP"},
        ],
        "readinessProbe": http_get("/readyz", HEALTH_PORT_NAME, periodSeconds=10),
        "livenessProbe": http_get("/healthz", HEALTH_PORT_NAME, periodSeconds=20),
        "resources": {
            "requests": {"cpu": CPU_REQUEST, "memory": memory_request},
            "limits": {"memory": MEMORY_LIMIT},
        },
        "securityContext": security_context,
    }
    if volume_mounts:
        out["volumeMounts"] = volume_mounts
    return out


def pod_monitor(
    metadata: dict[str, Any],
    selector: Mapping[str, str],
    endpoints: list[dict[str, Any]],
) -> dict[str, Any]:
    """A prometheus-operator PodMonitor for the pods `selector` matches."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": metadata,
        "spec": {
            "selector": {"matchLabels": dict(selector)},
            "podMetricsEndpoints": endpoints,
        },
    }


def endpoint(port: str, path: str, **options: Any) -> dict[str, Any]:
    """One podMetricsEndpoint, scraped every 15 s."""
    return {"port": port, "path": path, "interval": "15s", **options}
