"""The metrics sidecar container (sidecar/, image target `sidecar`) in every backend pod.

It runs without a GPU of its own (a second container cannot share the engine's device), so it
exports the engine's prefix-cache counters and cache sizes; GPU metrics come from the same
program in node mode (sidecar/README.md).
"""

from __future__ import annotations

from typing import Any

from functions.common import exporter
from functions.common.api.inferenceservice import InferenceServiceSpec
from functions.common.composer import ComposeError
from functions.common.quantity import to_bytes
from functions.common.security import restricted
from functions.inferenceservice.backends.base import BackendPlan
from sidecar.contract import NONROOT_USER

METRICS_PORT_NAME = exporter.METRICS_PORT_NAME


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
        {"name": "GPU_METRICS", "value": "off"},
        {"name": "ENGINE_METRICS_URL", "value": engine_metrics_url(plan)},
    ]
    if spec.cache.enabled and spec.cache.prefixCacheSize is not None:
        env.append(
            {"name": "PREFIX_CACHE_CAPACITY", "value": str(to_bytes(spec.cache.prefixCacheSize))}
        )
    return exporter.container(
        name="metrics-sidecar",
        image=sidecar.image,
        metrics_port=sidecar.metricsPort,
        health_port=sidecar.healthPort,
        env=env,
        # Measured (sidecar/BENCHMARK.md): 26-30 MiB RSS as rendered here, 37-40 MiB with every
        # pod-mode source, 2-4 ms CPU per scrape.
        memory_request="48Mi",
        security_context=restricted(NONROOT_USER, NONROOT_USER),
    )


def scraped(spec: InferenceServiceSpec) -> list[tuple[str, str]]:
    """The sidecar's (port name, path) for the PodMonitor, when it runs."""
    return [(METRICS_PORT_NAME, exporter.METRICS_PATH)] if spec.metricsSidecar.enabled else []
