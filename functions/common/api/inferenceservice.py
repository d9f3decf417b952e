"""InferenceService: a Hugging Face model served by vLLM, Triton or TensorRT-LLM."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from functions.common.api.base import (
    DNS_LABEL,
    DNS_SUBDOMAIN,
    NamedRef,
    Rule,
    SecretKeyRef,
    SpecModel,
)
from functions.common.gpus import ALL_MIG_PROFILE_NAMES, GPU_TYPES
from functions.common.quantity import Duration, Quantity, duration_seconds

Backend = Literal["vllm", "triton", "tensorrt-llm"]
Sharing = Literal["exclusive", "mig", "mps", "timeslice"]
CacheStrategy = Literal["prefix", "local", "distributed", "hybrid"]
MetricType = Literal["gpu-utilization", "queue-depth", "latency"]
AccessMode = Literal["ReadWriteMany", "ReadWriteOnce"]

# Hugging Face repository ids: "org/name" (or a bare legacy name), no "..", no leading "-".
HF_REPO_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$"


class ModelStorage(SpecModel):
    enabled: bool = True
    """Download the weights once into a PersistentVolumeClaim that every replica mounts."""
    size: Quantity = "100Gi"
    """Capacity of the model volume; leave room for the weights plus revisions."""
    storageClassName: Annotated[str | None, Field(max_length=253)] = None
    """Storage class of the volume; the cluster default when unset."""
    accessMode: AccessMode = "ReadWriteMany"
    """ReadWriteMany shares one copy across nodes; ReadWriteOnce suits a single replica."""


class Model(SpecModel):
    name: Annotated[str, Field(pattern=HF_REPO_PATTERN, max_length=200)]
    """Hugging Face repository id, e.g. meta-llama/Llama-2-70b."""
    source: Literal["huggingface"] = "huggingface"
    """Where the weights come from."""
    revision: Annotated[str | None, Field(max_length=100)] = None
    """Git revision (branch, tag or commit) of the model repository."""
    tokenSecretRef: SecretKeyRef | None = None
    """Secret holding a Hugging Face token, for gated models. Never put the token in the spec."""
    storage: ModelStorage = Field(default_factory=ModelStorage)
    """Where the weights are kept between restarts and shared between replicas."""


class GPU(SpecModel):
    type: Literal[GPU_TYPES] = "nvidia-a100"  # type: ignore[valid-type]
    """GPU family (nvidia-a100) or exact model (nvidia-a100-80gb) to place replicas on."""
    count: Annotated[int, Field(ge=1, le=16)] = 1
    """GPUs (or GPU slices, for mig/mps/timeslice) per replica."""
    sharing: Sharing = "exclusive"
    """How the replica gets its GPUs: whole devices, a MIG instance, an MPS or time-sliced share."""
    migProfile: Literal[ALL_MIG_PROFILE_NAMES] | None = None  # type: ignore[valid-type]
    """MIG profile (e.g. 3g.40gb) when sharing is mig."""
    poolRef: NamedRef | None = None
    """GPUPool to schedule onto; by default a pool whose sharing matches is chosen."""

    rules = (
        Rule(
            "self.sharing != 'mig' || has(self.migProfile)",
            "migProfile is required when sharing is mig",
            lambda s: s.sharing != "mig" or s.migProfile is not None,
        ),
        Rule(
            "!has(self.migProfile) || self.sharing == 'mig'",
            "migProfile is only allowed when sharing is mig",
            lambda s: s.migProfile is None or s.sharing == "mig",
        ),
    )


class Cache(SpecModel):
    enabled: bool = True
    """Reuse KV cache across requests that share a prefix."""
    strategy: CacheStrategy = "prefix"
    """prefix: GPU prefix cache only; local: plus node-local NVMe; distributed: plus Redis;
    hybrid: all tiers of the referenced TokenCache."""
    prefixCacheSize: Quantity | None = None
    """GPU memory reserved for the KV/prefix cache per GPU, e.g. 8Gi."""
    tokenCacheRef: NamedRef | None = None
    """TokenCache in the same namespace that provides the local and distributed tiers."""


class AutoscalingMetric(SpecModel):
    type: MetricType
    """gpu-utilization (percent), queue-depth (waiting requests per replica) or latency
    (p90 time to first token, milliseconds)."""
    target: Annotated[int, Field(ge=1, le=1_000_000)]
    """Target value per replica, in the metric's unit."""


MAX_STABILIZATION = "1h"  # HPA behavior stabilizationWindowSeconds: 0 to 3600


class Autoscaling(SpecModel):
    enabled: bool = True
    """Scale replicas between minReplicas and maxReplicas on the metrics below."""
    engine: Literal["keda", "hpa"] = "keda"
    """keda: a KEDA ScaledObject with Prometheus triggers; hpa: an autoscaling/v2
    HorizontalPodAutoscaler on external metrics served by prometheus-adapter."""
    prometheusAddress: Annotated[str, Field(pattern=r"^https?://[^\s]+$", max_length=512)] = (
        "http://prometheus-operated.monitoring.svc:9090"
    )
    """Prometheus that KEDA queries."""
    pollingInterval: Annotated[int, Field(ge=5, le=3600)] = 15
    """Seconds between KEDA's metric queries."""
    cooldownPeriod: Annotated[int, Field(ge=0, le=86400)] = 300
    """Seconds without activity before KEDA scales to zero (minReplicas 0 only)."""
    scaleDownStabilization: Duration = "5m"
    """How long a lower replica count must be recommended before replicas are removed."""
    minReplicas: Annotated[int, Field(ge=0, le=1000)] = 1
    """Fewest replicas; 0 allows scale to zero."""
    maxReplicas: Annotated[int, Field(ge=1, le=1000)] = 10
    """Most replicas."""
    metrics: Annotated[list[AutoscalingMetric], Field(min_length=1, max_length=8)] = Field(
        default_factory=lambda: [AutoscalingMetric(type="queue-depth", target=5)]
    )
    """Signals to scale on; the largest desired replica count wins."""

    rules = (
        Rule(
            f"duration(self.scaleDownStabilization) <= duration('{MAX_STABILIZATION}')",
            f"scaleDownStabilization must be at most {MAX_STABILIZATION} (the autoscaling/v2 "
            "limit on stabilizationWindowSeconds, 3600)",
            lambda s: duration_seconds(s.scaleDownStabilization) <= 3600,
        ),
        Rule(
            "self.minReplicas <= self.maxReplicas",
            "minReplicas must be less than or equal to maxReplicas",
            lambda s: s.minReplicas <= s.maxReplicas,
        ),
        Rule(
            "self.engine == 'keda' || self.minReplicas >= 1",
            "minReplicas 0 (scale to zero) needs engine keda; a HorizontalPodAutoscaler "
            "cannot scale to zero",
            lambda s: s.engine == "keda" or s.minReplicas >= 1,
        ),
        Rule(
            "self.metrics.all(m, self.metrics.exists_one(n, n.type == m.type))",
            "each metric type may be listed once",
            lambda s: len({m.type for m in s.metrics}) == len(s.metrics),
        ),
    )


RoutingMode = Literal["service", "prefix-aware"]
FailureMode = Literal["FailClose", "FailOpen"]


class GatewayRef(SpecModel):
    name: Annotated[str, Field(pattern=DNS_SUBDOMAIN, max_length=253)]
    """Name of an existing Gateway (gateway.networking.k8s.io/v1) to attach an HTTPRoute to."""
    namespace: Annotated[str | None, Field(pattern=DNS_LABEL, max_length=63)] = None
    """Namespace of the Gateway; default the InferenceService's. Its listener must allow routes
    from this namespace."""
    sectionName: Annotated[str | None, Field(pattern=DNS_SUBDOMAIN, max_length=253)] = None
    """Listener of the Gateway to attach to; default all listeners that allow the route."""


class Scorers(SpecModel):
    """Weights of the endpoint picker's scorers: each scores every replica from 0 to 1 and the
    replica with the highest weighted sum serves the request."""

    prefixCache: Annotated[int, Field(ge=0, le=100)] = 3
    """Prefers replicas that recently served the longest prefix of the prompt."""
    queue: Annotated[int, Field(ge=0, le=100)] = 2
    """Prefers replicas with fewer waiting requests (vllm:num_requests_waiting)."""
    kvCacheUtilization: Annotated[int, Field(ge=0, le=100)] = 2
    """Prefers replicas with more free KV cache (vllm:kv_cache_usage_perc)."""

    rules = (
        Rule(
            "self.prefixCache > 0",
            "prefixCache must be above 0: prefix-aware routing without the prefix scorer is "
            "load balancing only",
            lambda s: s.prefixCache > 0,
        ),
    )


class Routing(SpecModel):
    mode: RoutingMode = "service"
    """service: the replicas behind a Kubernetes Service (any replica may get any request);
    prefix-aware: an InferencePool whose endpoint picker sends a request to the replica most
    likely to hold its prefix in cache, weighed against load (Gateway API Inference Extension)."""
    gatewayRef: GatewayRef | None = None
    """Gateway to publish the service on through an HTTPRoute (to the InferencePool, or to the
    Service in mode service)."""
    scorers: Scorers | None = None
    """Scorer weights of the endpoint picker (prefix-aware only); default prefixCache 3,
    queue 2, kvCacheUtilization 2."""
    failureMode: FailureMode | None = None
    """What the gateway does when the endpoint picker does not answer (prefix-aware only):
    FailClose (default) rejects the request, FailOpen sends it to any replica."""

    rules = (
        Rule(
            "self.mode == 'prefix-aware' || (!has(self.scorers) && !has(self.failureMode))",
            "scorers and failureMode are only allowed when mode is prefix-aware",
            lambda s: s.mode == "prefix-aware" or (s.scorers is None and s.failureMode is None),
        ),
    )


SIDECAR_IMAGE = "ghcr.io/inference-platform/inference-sidecar:v0.1.0"


class MetricsSidecar(SpecModel):
    enabled: bool = True
    """Run the inference-sidecar beside the engine: cache metrics for Prometheus."""
    image: Annotated[str, Field(max_length=255)] = SIDECAR_IMAGE
    """Sidecar image (the Dockerfile's `sidecar` target)."""
    metricsPort: Annotated[int, Field(ge=1024, le=65535)] = 8080
    """Port of the sidecar's /metrics."""
    healthPort: Annotated[int, Field(ge=1024, le=65535)] = 8081
    """Port of the sidecar's /healthz and /readyz."""

    rules = (
        Rule(
            "self.metricsPort != self.healthPort",
            "metricsPort and healthPort must differ",
            lambda s: s.metricsPort != s.healthPort,
        ),
    )


class Resources(SpecModel):
    cpu: Quantity = "4"
    """CPU each replica requests (tokenization, scheduling, HTTP)."""
    memory: Quantity = "32Gi"
    """Memory each replica requests and is limited to (weights are staged through it)."""


class InferenceServiceSpec(SpecModel):
    model: Model
    """The model to serve."""
    backend: Backend = "vllm"
    """Serving engine: vllm, triton or tensorrt-llm."""
    image: Annotated[str | None, Field(max_length=255)] = None
    """Override the backend's pinned container image (repository:tag)."""
    replicas: Annotated[int, Field(ge=0, le=1000)] = 1
    """Replicas when autoscaling is off; the initial count otherwise."""
    gpu: GPU = Field(default_factory=GPU)
    """GPU placement of each replica."""
    cache: Cache = Field(default_factory=Cache)
    """KV/prefix cache."""
    resources: Resources = Field(default_factory=Resources)
    """CPU and memory per replica, besides the GPUs."""
    metricsSidecar: MetricsSidecar = Field(default_factory=MetricsSidecar)
    """The metrics sidecar container in every replica."""
    autoscaling: Autoscaling | None = None
    """Autoscaling on GPU utilization, queue depth or latency."""
    routing: Routing = Field(default_factory=Routing)
    """How requests reach the replicas: a Service, or prefix-aware through an InferencePool."""
