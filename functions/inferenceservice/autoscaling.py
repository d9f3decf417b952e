"""Autoscaling: a KEDA ScaledObject (default) or an autoscaling/v2 HPA on the engine's metrics.

Signals and their PromQL:
  queue-depth      requests waiting for a batch slot, per replica (the engine's own gauge)
  latency          the engine's p90 time to first token (Triton: average queue time), ms
  gpu-utilization  DCGM exporter's GPU utilization of the replicas' pods, percent
Engine series are selected by namespace and the `inference_ai_service` label our PodMonitor
adds; DCGM series (dcgm-exporter's pod mapping) by namespace and pod name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from functions.common.api.inferenceservice import Autoscaling
from functions.common.meta import Owner
from functions.common.quantity import duration_seconds
from functions.common.readiness import replica_count
from functions.inferenceservice.backends.base import EngineMetrics
from functions.inferenceservice.monitoring import SERVICE_LABEL
from functions.inferenceservice.placement import Placement

KEDA_API = "keda.sh/v1alpha1"
# External metric names the HPA asks prometheus-adapter for (rules: docs/prometheus-adapter.yaml).
HPA_METRIC = {
    "queue-depth": "inference_ai_queue_depth",
    "latency": "inference_ai_latency_milliseconds",
}


@dataclass(frozen=True)
class Signal:
    type: str
    query: str
    target: int
    per_replica: bool  # KEDA AverageValue (divide by replicas) vs Value


def service_selector(owner: Owner, deployment: str) -> str:
    return f'namespace="{owner.namespace}",{SERVICE_LABEL}="{deployment}"'


def pod_selector(owner: Owner, deployment: str) -> str:
    # Pods of a Deployment are named <deployment>-<replicaset hash>-<5 chars>. Names hold only
    # [a-z0-9.-]; a dot is the one regex metacharacter, escaped for the regex inside a PromQL
    # string (where the backslash itself must be doubled).
    pattern = deployment.replace(".", "\\\\.")
    return f'namespace="{owner.namespace}",pod=~"{pattern}-[a-z0-9]+-[a-z0-9]+"'


def gpu_utilization_query(sel: str, placement: Placement) -> tuple[str, list[str]]:
    if placement.resource.startswith("nvidia.com/mig-"):
        # DCGM_FI_DEV_GPU_UTIL is not reported per MIG instance; graphics-engine activity is.
        return f"100 * avg(DCGM_FI_PROF_GR_ENGINE_ACTIVE{{{sel}}})", [
            "autoscaling on gpu-utilization with MIG: DCGM has no per-instance GPU_UTIL, so the "
            "query uses DCGM_FI_PROF_GR_ENGINE_ACTIVE (needs DCGM profiling metrics enabled)"
        ]
    warnings = []
    if placement.shared:
        warnings.append(
            "autoscaling on gpu-utilization with a shared GPU: DCGM reports the whole GPU, "
            "including other pods' work, so utilization overstates this service's load"
        )
    return f"avg(DCGM_FI_DEV_GPU_UTIL{{{sel}}})", warnings


def signals(
    spec: Autoscaling, metrics: EngineMetrics, placement: Placement, owner: Owner, name: str
) -> tuple[list[Signal], list[str]]:
    out: list[Signal] = []
    warnings: list[str] = []
    engine_sel, pod_sel = service_selector(owner, name), pod_selector(owner, name)
    for metric in spec.metrics:
        if metric.type == "queue-depth":
            query = metrics.queue_depth.format(sel=engine_sel)
            out.append(Signal(metric.type, query, metric.target, True))
        elif metric.type == "latency":
            if not metrics.latency_is_ttft:
                warnings.append(f"autoscaling on latency uses {metrics.latency_meaning}")
            query = metrics.latency_ms.format(sel=engine_sel)
            out.append(Signal(metric.type, query, metric.target, False))
        elif spec.engine == "hpa":
            # DCGM series carry pod names, not our service label, and an external-metric
            # selector cannot match pod names by pattern.
            warnings.append(
                "autoscaling on gpu-utilization needs engine keda; the HorizontalPodAutoscaler "
                "leaves it out"
            )
        else:
            query, more = gpu_utilization_query(pod_sel, placement)
            warnings.extend(more)
            out.append(Signal(metric.type, query, metric.target, False))
    return out, warnings


def scaled_object(
    owner: Owner, deployment: str, spec: Autoscaling, sigs: list[Signal], component: str
) -> dict[str, Any]:
    stabilization = int(duration_seconds(spec.scaleDownStabilization))
    body: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment},
        "pollingInterval": spec.pollingInterval,
        "cooldownPeriod": spec.cooldownPeriod,
        "minReplicaCount": spec.minReplicas,
        "maxReplicaCount": spec.maxReplicas,
        "advanced": {
            "horizontalPodAutoscalerConfig": {
                "behavior": {"scaleDown": {"stabilizationWindowSeconds": stabilization}}
            }
        },
        "triggers": [keda_trigger(spec, s) for s in sigs],
    }
    if spec.minReplicas == 0:
        # A fresh replica loads weights for minutes; don't scale it away before it served.
        body["initialCooldownPeriod"] = 600
    return {
        "apiVersion": KEDA_API,
        "kind": "ScaledObject",
        "metadata": owner.metadata(deployment, component),
        "spec": body,
    }


def keda_trigger(spec: Autoscaling, s: Signal) -> dict[str, Any]:
    metadata = {
        "serverAddress": spec.prometheusAddress,
        "query": s.query,
        "threshold": str(s.target),
    }
    if s.type == "queue-depth":
        # From zero replicas, one waiting request is enough to start a replica.
        metadata["activationThreshold"] = "0"
    return {
        "type": "prometheus",
        "name": s.type,
        "metricType": "AverageValue" if s.per_replica else "Value",
        "metadata": metadata,
    }


def horizontal_pod_autoscaler(
    owner: Owner, deployment: str, spec: Autoscaling, sigs: list[Signal], component: str
) -> dict[str, Any]:
    selector = {SERVICE_LABEL: deployment}
    metrics = []
    for s in sigs:
        target: dict[str, Any] = (
            {"type": "AverageValue", "averageValue": str(s.target)}
            if s.per_replica
            else {"type": "Value", "value": str(s.target)}
        )
        metrics.append(
            {
                "type": "External",
                "external": {
                    "metric": {
                        "name": HPA_METRIC[s.type],
                        "selector": {"matchLabels": selector},
                    },
                    "target": target,
                },
            }
        )
    stabilization = int(duration_seconds(spec.scaleDownStabilization))
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": owner.metadata(deployment, component),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment},
            "minReplicas": spec.minReplicas,
            "maxReplicas": spec.maxReplicas,
            "metrics": metrics,
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": stabilization}},
        },
    }


def replicas(
    spec_replicas: int, spec: Autoscaling | None, observed: Mapping[str, Any] | None
) -> int:
    """Replicas the function writes into the Deployment.

    With an autoscaler, the autoscaler owns the count: the function echoes what it observes so
    it never undoes a scaling decision, and only picks the first count (clamped to the bounds).
    """
    if spec is None or not spec.enabled:
        return spec_replicas
    current = replica_count(observed, "spec", "replicas")
    if current is not None:
        return current
    return min(max(spec_replicas, spec.minReplicas, 1 if spec.minReplicas else 0), spec.maxReplicas)
