"""InferenceService composition: the backend Deployment and everything around it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from crossplane.function import resource

from functions.common import peers
from functions.common.api.inferenceservice import InferenceServiceSpec
from functions.common.composer import Composed, ComposeError, CompositionFunction, Request
from functions.common.kinds import GPU_POOL, INFERENCE_SERVICE
from functions.common.readiness import Cluster, is_ready, replica_count, storage_classes
from functions.inferenceservice import (
    autoscaling,
    dra,
    modelstore,
    monitoring,
    pools,
    routing,
    sidecar_container,
    tokencache,
)
from functions.inferenceservice.backends import ENGINES
from functions.inferenceservice.backends.base import BackendInput, BackendPlan, TierPlan
from functions.inferenceservice.placement import Placement, place

COMPONENT = "inference-server"


def deployment(
    req: Request[InferenceServiceSpec],
    placement: Placement,
    plan: BackendPlan,
    store: modelstore.ModelStore | None,
    tiers: TierPlan,
    pod_labels: dict[str, str],
) -> dict[str, Any]:
    owner, spec = req.owner, req.spec
    memory = spec.resources.memory
    container = {
        **plan.container,
        "args": [*plan.container["args"], *tiers.args],
        "env": [*plan.container["env"], *tiers.env],
        "volumeMounts": [*plan.container["volumeMounts"], *tiers.mounts],
        "resources": {
            "requests": {
                "cpu": spec.resources.cpu,
                "memory": memory,
                placement.resource: placement.devices,
            },
            "limits": {"memory": memory, placement.resource: placement.devices},
        },
    }
    if placement.claim is not None:  # DRA: the GPU comes from the pod's claim
        container["resources"] = {
            "requests": {"cpu": spec.resources.cpu, "memory": memory},
            "limits": {"memory": memory},
            "claims": dra.container_claims(),
        }
    if tiers.command is not None:
        container["command"] = tiers.command
    volumes = [*plan.volumes, *tiers.volumes]
    pod_spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {"runAsNonRoot": True, "fsGroup": 0},
        "terminationGracePeriodSeconds": 60,
        "affinity": {"nodeAffinity": placement.node_affinity()},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    }
    if store is not None:
        # Replicas read the weights the download Job put on the shared volume, never the hub.
        container["env"] = [*container["env"], {"name": "HF_HUB_OFFLINE", "value": "1"}]
        volumes = [
            modelstore.model_volume(store) if v["name"] == "model-cache" else v for v in volumes
        ]
        pod_spec["initContainers"] = [modelstore.wait_for_weights(store, plan.container)]
    metrics = sidecar_container.container(spec, plan)
    pod_spec["containers"] = [container, *([metrics] if metrics else [])]
    pod_spec["volumes"] = volumes
    if placement.claim is not None:
        pod_spec["resourceClaims"] = dra.pod_claims(owner, placement.claim)
    template_meta: dict[str, Any] = {"labels": {**owner.labels(COMPONENT), **pod_labels}}
    annotations = {**plan.pod_annotations, **tiers.pod_annotations}
    if annotations:
        template_meta["annotations"] = dict(sorted(annotations.items()))
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": owner.metadata(owner.child(), COMPONENT),
        "spec": {
            "replicas": autoscaling.replicas(
                spec.replicas, spec.autoscaling, req.observed.get("deployment", {})
            ),
            "selector": {"matchLabels": owner.selector(COMPONENT)},
            # A new replica needs GPUs the old one holds; surging could deadlock a full pool.
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1},
            },
            "template": {"metadata": template_meta, "spec": pod_spec},
        },
    }


def service(req: Request[InferenceServiceSpec], ports: list[dict[str, Any]]) -> dict[str, Any]:
    owner = req.owner
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": owner.metadata(owner.child(), COMPONENT),
        "spec": {"type": "ClusterIP", "selector": owner.selector(COMPONENT), "ports": ports},
    }


def autoscaler(
    req: Request[InferenceServiceSpec], placement: Placement, plan: BackendPlan
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    spec, owner = req.spec.autoscaling, req.owner
    if spec is None or not spec.enabled or plan.metrics is None:
        return {}, []
    name = owner.child()
    sigs, warnings = autoscaling.signals(spec, plan.metrics, placement, owner, name)
    if spec.engine == "keda":
        return {
            "autoscaler": autoscaling.scaled_object(owner, name, spec, sigs, COMPONENT)
        }, warnings
    hpa = autoscaling.horizontal_pod_autoscaler(owner, name, spec, sigs, COMPONENT)
    return {"autoscaler": hpa}, warnings


def cache_ready(
    spec: InferenceServiceSpec, bound: tokencache.BoundCache | None
) -> resource.Condition:
    if not tokencache.wanted(spec):
        detail = "GPU prefix cache only" if spec.cache.enabled else "caching disabled"
        return resource.Condition("CacheReady", "True", "EngineCacheOnly", detail)
    if bound is None:
        return resource.Condition(
            "CacheReady", "Unknown", "WaitingForTokenCache", "TokenCache not read yet"
        )
    if bound.waiting:
        return resource.Condition("CacheReady", "False", "WaitingForTokenCache", bound.waiting)
    tiers = [t for t, on in (("local", bound.local), ("redis", bound.redis)) if on]
    return resource.Condition(
        "CacheReady",
        "True",
        "Bound",
        f"TokenCache {bound.name}: " + (", ".join(tiers) + " tiers" if tiers else "prefix budget"),
    )


def backend_ready(
    req: Request[InferenceServiceSpec], store: modelstore.ModelStore | None
) -> resource.Condition:
    observed = req.observed.get("deployment")
    if store is not None and not is_ready(req.observed.get("model-download")):
        return resource.Condition(
            "BackendReady",
            "False",
            "DownloadingModel",
            f"waiting for Job {store.job} to download {req.spec.model.name}",
        )
    if observed is None:
        return resource.Condition("BackendReady", "False", "Creating", "Deployment not created yet")
    want = replica_count(observed, "spec", "replicas") or 0
    available = replica_count(observed, "status", "availableReplicas") or 0
    message = f"{available}/{want} replicas available"
    if is_ready(observed):
        return resource.Condition("BackendReady", "True", "Available", message)
    return resource.Condition("BackendReady", "False", "ReplicasUnavailable", message)


def gpu_allocated(binding: pools.Binding | None) -> resource.Condition:
    if binding is None:
        return resource.Condition(
            "GPUAllocated", "Unknown", "WaitingForPools", "GPUPools not read yet"
        )
    resource_name = binding.placement.resource
    capacity = binding.capacity.get(resource_name)
    if capacity is not None and capacity.available < 0:
        return resource.Condition(
            "GPUAllocated",
            "False",
            "PoolOvercommitted",
            f"GPUPool {binding.pool} has {capacity.schedulable} {resource_name}; "
            f"its services request {capacity.requested}",
        )
    return resource.Condition(
        "GPUAllocated",
        "True",
        "Bound",
        f"{binding.placement.devices} {resource_name} per replica from GPUPool {binding.pool}",
    )


def compose(req: Request[InferenceServiceSpec]) -> Composed:
    spec, owner = req.spec, req.owner
    try:
        placement = place(spec.gpu)
    except ValueError as err:
        raise ComposeError(str(err)) from err
    # Until Crossplane has fetched the pools (first call of a reconcile) the placement is
    # provisional; Crossplane calls again with them before it applies anything.
    binding = None
    peer_warnings: list[str] = []
    if pools.POOLS in req.required:
        found = peers.gpu_pools(req.required[pools.POOLS])
        peer_warnings += found.warnings
        binding = pools.bind(spec.gpu, placement, found.found)
        placement = binding.placement
    requirements = [peers.composites(pools.POOLS, GPU_POOL, req.form)]
    bound = None
    cache_requirement = tokencache.requirement(req)
    if cache_requirement is not None:
        requirements.append(cache_requirement)
        if tokencache.TOKEN_CACHES in req.required:
            caches = peers.token_caches(req.required[tokencache.TOKEN_CACHES])
            peer_warnings += caches.warnings
            bound = tokencache.bind(spec, owner.namespace, caches.found)
    inp = BackendInput(owner, spec, placement, bound)
    engine = ENGINES[spec.backend]
    plan = engine.plan(inp)
    store = modelstore.store(owner, spec)
    tiers = engine.tiers(inp, bound) if bound else TierPlan()
    routed = routing.plan(
        owner,
        spec,
        plan,
        owner.selector(COMPONENT),
        req.required,
        req.observed,
    )
    requirements += routed.requirements
    resources: dict[str, dict[str, Any]] = {
        "deployment": deployment(req, placement, plan, store, tiers, routed.pod_labels),
        "service": service(req, plan.service_ports),
        "disruption-budget": monitoring.disruption_budget(owner, owner.child(), COMPONENT),
        "pod-monitor": monitoring.pod_monitor(
            owner,
            owner.child(),
            COMPONENT,
            [(plan.metrics_port, plan.metrics_path), *sidecar_container.scraped(spec)],
        ),
        **plan.resources,
        **routed.resources,
    }
    if placement.claim is not None:
        resources["gpu-claim"] = dra.claim_object(owner, placement.claim, COMPONENT)
    cluster = Cluster()
    if store is not None:
        requirements.append(modelstore.STORAGE_CLASS_REQUIREMENT)
        cluster = storage_classes(req.required.get(modelstore.STORAGE_CLASSES, []))
        resources["model-volume"] = modelstore.claim(owner, spec, store)
        resources["model-download"] = modelstore.download_job(owner, spec, store, plan.container)
    scaling, scaling_warnings = autoscaler(req, placement, plan)
    resources.update(scaling)

    observed = req.observed.get("deployment", {})
    port = plan.service_ports[0]["port"]
    status = {
        "endpoint": f"http://{owner.child()}.{owner.namespace}.svc.cluster.local:{port}{plan.api_path}",
        "servedModel": plan.served_model or spec.model.name,
        "backend": spec.backend,
        "gpuResource": placement.resource,
        "gpusPerReplica": placement.devices,
        "pool": binding.pool if binding else None,
        "tokenCache": bound.name if bound else None,
        "desiredReplicas": replica_count(observed, "spec", "replicas"),
        "readyReplicas": replica_count(observed, "status", "availableReplicas") or 0,
        "routing": routed.status,
    }
    warnings = [
        *peer_warnings,
        *placement.warnings,
        *(binding.warnings if binding else ()),
        *plan.warnings,
        *scaling_warnings,
        *modelstore.warnings(spec),
        *(bound.warnings if bound else ()),
        *tiers.warnings,
        *routed.warnings,
    ]
    return Composed(
        resources=resources,
        status={k: v for k, v in status.items() if v is not None},
        warnings=warnings,
        conditions=[
            backend_ready(req, store),
            gpu_allocated(binding),
            cache_ready(spec, bound),
            *([routed.condition] if routed.condition else []),
        ],
        requirements=requirements,
        cluster=cluster,
    )


TTL = timedelta(minutes=5)
"""Response TTL: the numerous kind reads only watched objects that are in Crossplane's cache key
(pools, caches); its quiet-time reconciles are services / TTL (docs/performance.md)."""


def runner() -> CompositionFunction[InferenceServiceSpec]:
    return CompositionFunction(INFERENCE_SERVICE, compose, ttl=TTL)
