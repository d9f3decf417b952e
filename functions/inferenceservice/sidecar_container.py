"""The metrics sidecar container (sidecar/, image target `sidecar`) in every backend pod.

It runs without a GPU of its own (a second container cannot share the engine's device), so it
exports the engine's prefix-cache counters and cache sizes; GPU metrics come from the same
program in node mode (sidecar/README.md).
"""

from __future__ import annotations

from typing import Any

from functions.common.api.inferenceservice import InferenceServiceSpec
from functions.common.composer import ComposeError
from functions.common.probes import http_get
from functions.common.quantity import to_bytes
from functions.common.security import restricted
from functions.inferenceservice.backends.base import BackendPlan
from sidecar.contract import NONROOT_USER

METRICS_PORT_NAME = "sidecar-metrics"
HEALTH_PORT_NAME = "sidecar-health"


def engine_metrics_url(plan: BackendPlan) -> str:
    port = next(
        p["containerPort"] for p in plan.container["ports"] if p["name"] == plan.metrics_port
    )
    return f"http://127.0.0.1:{port}{plan.metrics_path}"


def container(spec: InferenceServiceSpec, plan: BackendPlan) -> dict[str, Any] | None:
    sidecar = spec.metricsSidecar
    if not sidecar.enabled:
        return None
    taken = {p["containerPort"] for p in plan.container["ports"]}
    for field, port in (("metricsPort", sidecar.metricsPort), ("healthPort", sidecar.healthPort)):
        if port in taken:
            raise ComposeError(
                f"spec.metricsSidecar.{field}: {port} is the {spec.backend} engine's port; "
                f"the engine uses {', '.join(map(str, sorted(taken)))}"
            )
    env = [
        {"name": "METRICS_BIND_ADDRESS", "value": f":{sidecar.metricsPort}"},
        {"name": "HEALTH_PROBE_BIND_ADDRESS", "value": f":{sidecar.healthPort}"},
        {"name": "GPU_METRICS", "value": "off"},
        {"name": "ENGINE_METRICS_URL", "value": engine_metrics_url(plan)},
    ]
    if spec.cache.enabled and spec.cache.prefixCacheSize is not None:
        env.append(
            {"name": "PREFIX_CACHE_CAPACITY", "value": str(to_bytes(spec.cache.prefixCacheSize))}
        )
    return {
        "name": "metrics-sidecar",
        "image": sidecar.image,
        "env": env,
        "ports": [
            {"name": METRICS_PORT_NAME, "containerPort": sidecar.metricsPort, "protocol": "TCP"},
            {"name": HEALTH_PORT_NAME, "containerPort": sidecar.healthPort, "protocol": "TCP"},
        ],
        "readinessProbe": http_get("/readyz", HEALTH_PORT_NAME, periodSeconds=10),
        "livenessProbe": http_get("/healthz", HEALTH_PORT_NAME, periodSeconds=20),
        # Measured (sidecar/BENCHMARK.md): 26-30 MiB RSS as rendered here, 37-40 MiB with every
        # pod-mode source, 2-4 ms CPU per scrape. The limit leaves room for a large engine
        # exposition.
        "resources": {"requests": {"cpu": "10m", "memory": "48Mi"}, "limits": {"memory": "128Mi"}},
        "securityContext": restricted(NONROOT_USER, NONROOT_USER),
    }


def scraped(spec: InferenceServiceSpec) -> list[tuple[str, str]]:
    """The sidecar's (port name, path) for the PodMonitor, when it runs."""
    return [(METRICS_PORT_NAME, "/metrics")] if spec.metricsSidecar.enabled else []
