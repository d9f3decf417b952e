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
# Measured 51 MiB RSS with every pod-mode source connected (sidecar/BENCHMARK.md) and 56 MiB in
# node mode (NVML fixture, a fake kubelet, 200 scrapes): the request covers either, the limit
# leaves room for a slow scrape.
REQUESTS = {"cpu": "10m", "memory": "64Mi"}
LIMITS = {"memory": "128Mi"}


def container(
    *,
    name: str,
    image: str,
    metrics_port: int,
    health_port: int,
    env: list[dict[str, Any]],
    security_context: dict[str, Any],
    volume_mounts: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The sidecar container serving /metrics and /healthz, /readyz on their own ports; `env`
    picks its sources after the bind addresses.

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
        "resources": {"requests": dict(REQUESTS), "limits": dict(LIMITS)},
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
