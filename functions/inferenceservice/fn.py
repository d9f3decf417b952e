"""InferenceService composition: backend Deployment and Service."""

from __future__ import annotations

from typing import Any

from functions.common.api.inferenceservice import InferenceServiceSpec
from functions.common.composer import Composed, ComposeError, CompositionFunction, Request
from functions.common.kinds import INFERENCE_SERVICE
from functions.inferenceservice.backends import Backend, BackendInput, tensorrt_llm, triton, vllm
from functions.inferenceservice.placement import place

BACKENDS: dict[str, Backend] = {
    "vllm": vllm.plan,
    "triton": triton.plan,
    "tensorrt-llm": tensorrt_llm.plan,
}
COMPONENT = "inference-server"


def deployment(req: Request[InferenceServiceSpec], inp: BackendInput, plan: Any) -> dict[str, Any]:
    owner, spec, placement = req.owner, req.spec, inp.placement
    container = {
        **plan.container,
        "resources": {
            "requests": {"cpu": "4", "memory": "32Gi", placement.resource: placement.devices},
            "limits": {placement.resource: placement.devices},
        },
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": owner.metadata(owner.name, COMPONENT),
        "spec": {
            "replicas": spec.replicas,
            "selector": {"matchLabels": owner.selector(COMPONENT)},
            # A new replica needs GPUs the old one holds; surging could deadlock a full pool.
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1},
            },
            "template": {
                "metadata": {
                    "labels": owner.labels(COMPONENT),
                    **({"annotations": plan.pod_annotations} if plan.pod_annotations else {}),
                },
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": {"runAsNonRoot": True, "fsGroup": 0},
                    "terminationGracePeriodSeconds": 60,
                    "affinity": {"nodeAffinity": placement.node_affinity()},
                    "tolerations": [
                        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
                    ],
                    "containers": [container],
                    "volumes": plan.volumes,
                },
            },
        },
    }


def service(req: Request[InferenceServiceSpec], ports: list[dict[str, Any]]) -> dict[str, Any]:
    owner = req.owner
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": owner.metadata(owner.name, COMPONENT),
        "spec": {"type": "ClusterIP", "selector": owner.selector(COMPONENT), "ports": ports},
    }


def unsupported_yet(spec: InferenceServiceSpec) -> list[str]:
    """Requested features this release does not render yet: said out loud, never dropped."""
    out = []
    if spec.autoscaling is not None and spec.autoscaling.enabled:
        out.append(
            "autoscaling is not rendered yet: replicas stay at spec.replicas "
            f"({spec.replicas}); no HPA or KEDA ScaledObject is created"
        )
    if spec.cache.enabled and (spec.cache.strategy != "prefix" or spec.cache.tokenCacheRef):
        out.append(
            f"cache.strategy {spec.cache.strategy}: only the GPU prefix cache is configured; "
            "local and distributed TokenCache tiers are not wired to the engine yet"
        )
    return out


def compose(req: Request[InferenceServiceSpec]) -> Composed:
    spec, owner = req.spec, req.owner
    try:
        placement = place(spec.gpu)
    except ValueError as err:
        raise ComposeError(str(err)) from err
    inp = BackendInput(owner, spec, placement)
    plan = BACKENDS[spec.backend](inp)
    resources = {
        "deployment": deployment(req, inp, plan),
        "service": service(req, plan.service_ports),
        **plan.resources,
    }
    observed = req.observed.get("deployment", {})
    port = plan.service_ports[0]["port"]
    status = {
        "endpoint": f"http://{owner.name}.{owner.namespace}.svc.cluster.local:{port}{plan.api_path}",
        "servedModel": plan.served_model or spec.model.name,
        "backend": spec.backend,
        "gpuResource": placement.resource,
        "gpusPerReplica": placement.devices,
        "readyReplicas": observed.get("status", {}).get("availableReplicas", 0),
    }
    warnings = [*placement.warnings, *plan.warnings, *unsupported_yet(spec)]
    return Composed(resources=resources, status=status, warnings=warnings)


def runner() -> CompositionFunction[InferenceServiceSpec]:
    return CompositionFunction(INFERENCE_SERVICE, compose)
